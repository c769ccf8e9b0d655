"""Search-labelled data: deterministic per seed, the same observations the training env
builds, stored and read back whole, and never from an evaluation seed."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from worker.contracts.search import SearchOptions
from worker.rl.config import TRAINING_SEED_OFFSET, TrainingEnv, env_config
from worker.rl.labels import (
    LabelRequest,
    TargetOptions,
    check_training_seeds,
    distill_data,
    label,
    label_episode,
    label_seeds,
    metadata_of,
    read_labels,
    soft_target,
    write_labels,
)
from worker.settings import WorkerSettings
from worker.sim.evaluate import episode_seeds
from worker.sim.heuristics.tuned import tuning_spec
from worker.sim.workloads import WorkloadSpec, make_scenario

pytestmark = pytest.mark.rl

SPEC = WorkloadSpec("deadline-tight", nodes=4, jobs=40)
REQUEST = LabelRequest(
    SPEC,
    search="search:edf+fastest",
    options=SearchOptions(candidates=4, depth=1, budget_ms=60_000),  # never binds: reproducible
    window=8,
)


@pytest.fixture(scope="module")
def settings() -> Iterator[WorkerSettings]:
    import ray

    from worker.rl.runtime import ensure_ray

    started_here = not ray.is_initialized()
    root = Path(tempfile.mkdtemp(prefix="rll-", dir="/tmp"))
    settings = WorkerSettings(data_dir=root)
    ensure_ray(settings)
    yield settings
    if started_here:
        ray.shutdown()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def episode() -> tuple[int, object]:
    seed = label_seeds(3, 1)[0]
    return seed, label_episode(REQUEST, seed)


def test_an_episode_is_labelled_the_same_way_twice(episode: tuple) -> None:
    seed, table = episode
    again = label_episode(REQUEST, seed)
    assert table.num_rows > 20
    assert again.equals(table)


def test_search_departs_from_its_base_and_targets_favour_its_choice(episode: tuple) -> None:
    _, table = episode
    actions = table.column("action").to_numpy()
    assert (actions != table.column("base_action").to_numpy()).any(), "the search never changed a decision"
    data = distill_data(table)
    waited = actions == data.obs["action_mask"].shape[1] - 1
    imitated = ~waited | REQUEST.target.imitate_wait
    assert np.allclose(data.target_probs.sum(axis=1), imitated.astype(np.float32), atol=1e-5)
    best = data.target_actions[np.arange(len(actions)), data.target_probs.argmax(axis=1)]
    # A WAIT without evidence is labelled with a placement instead (wait_needs_evidence).
    assert (best == actions)[~waited].mean() > 0.9


def test_observations_are_what_the_training_env_builds(episode: tuple) -> None:
    """Replaying the chosen actions in RLlib's env (same config as a training round)
    gives, decision by decision, the recorded observation and mask."""
    seed, table = episode
    env = TrainingEnv(env_config(SPEC, REQUEST.window, objective=REQUEST.objective))
    obs, _ = env.reset(options={"scenario": make_scenario(tuning_spec(SPEC), seed), "sim_seed": seed})
    for row in range(table.num_rows):
        for key, value in obs.items():
            recorded = np.asarray(table.column(f"obs.{key}")[row].values.to_numpy())
            np.testing.assert_array_equal(recorded, value.reshape(-1), err_msg=f"decision {row}, {key}")
        obs, *_ = env.step(int(table.column("action")[row].as_py()))


def test_labels_from_ray_tasks_round_trip_through_parquet(settings: WorkerSettings, episode: tuple) -> None:
    seeds = label_seeds(3, 2)
    done: list[tuple[int, int]] = []
    table = label(REQUEST, seeds, on_episode=lambda d, t: done.append((d, t)))
    assert done[-1] == (2, 2)
    first = table.filter(np.asarray(table.column("episode_seed").to_numpy() == seeds[0]))
    assert first.equals(episode[1], check_metadata=False)
    path = write_labels(table, settings.data_dir / "labels-round-1")
    back = read_labels(path.parent)
    assert back.equals(table)
    meta = metadata_of(back)
    assert meta["seeds"] == seeds
    assert meta["search"] == "search:edf+fastest"
    assert SearchOptions(**meta["options"]) == REQUEST.options
    data = distill_data(back)
    assert len(data) == table.num_rows
    assert data.obs["pairs"].shape == (len(data), REQUEST.window, SPEC.nodes, data.obs["pairs"].shape[-1])
    mask = data.obs["action_mask"]
    chosen = table.column("action").to_numpy()
    assert (mask[np.arange(len(data)), chosen] == 1).all(), "only actions the env allows"
    assert (np.take_along_axis(mask, data.target_actions, axis=1)[data.target_probs > 0] == 1).all()


def test_no_evaluation_seed_can_be_labelled() -> None:
    assert min(label_seeds(0, 5)) >= TRAINING_SEED_OFFSET
    check_training_seeds(label_seeds(7, 3))
    with pytest.raises(ValueError, match="training seeds"):
        check_training_seeds(episode_seeds(0, 3))
    with pytest.raises(ValueError, match="training seeds"):
        label_episode(REQUEST, episode_seeds(0, 1)[0])


def test_soft_target_keeps_the_choice_first_and_the_mask() -> None:
    mask = np.array([1, 1, 0, 1, 1], dtype=np.float32)  # the last action is WAIT
    actions, probs = soft_target({0: 1.0, 1: 3.0, 2: 9.0, 3: 1.0}, 1, mask, TargetOptions())
    assert actions == [0, 1, 3]  # the masked candidate is left out
    assert probs[1] == max(probs) and sum(probs) == pytest.approx(1.0)
    assert probs[0] == pytest.approx(probs[2])
    assert soft_target({}, 3, mask, TargetOptions()) == ([3], [1.0])


def test_a_wait_is_the_target_only_where_it_beats_every_placement() -> None:
    """The search keeps its base's WAIT on a tie: such a WAIT is labelled with the best
    placement instead, so a policy that waits does not learn to wait more from itself."""
    mask = np.ones(4, dtype=np.float32)  # WAIT is action 3
    tied = {3: 2.0, 0: 1.0, 1: 2.0}
    actions, probs = soft_target(tied, 3, mask, TargetOptions())
    assert actions[int(np.argmax(probs))] == 1
    actions, probs = soft_target({3: 2.5, 0: 1.0, 1: 2.0}, 3, mask, TargetOptions())
    assert actions[int(np.argmax(probs))] == 3, "a WAIT with evidence stays the target"
    as_chosen = TargetOptions(wait_needs_evidence=False)
    actions, probs = soft_target(tied, 3, mask, as_chosen)
    assert actions[int(np.argmax(probs))] == 3


def test_the_search_s_waits_are_imitated_unless_turned_off() -> None:
    """By default a WAIT is an alternative of a placement's target and a target of its own;
    turned off (TargetOptions.imitate_wait says why one would), it is neither."""
    mask = np.ones(4, dtype=np.float32)  # WAIT is action 3
    values = {0: 1.0, 1: 2.0, 3: 5.0}
    assert soft_target(values, 0, mask, TargetOptions())[0] == [0, 1, 3]
    actions, probs = soft_target(values, 3, mask, TargetOptions())
    assert actions[int(np.argmax(probs))] == 3
    off = TargetOptions(imitate_wait=False)
    assert soft_target(values, 0, mask, off)[0] == [0, 1]
    assert soft_target(values, 3, mask, off) == ([], [])


def test_a_retried_labelling_labels_only_the_episodes_still_missing(
    settings: WorkerSettings, episode: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attempt killed after one episode's part was written (and while writing another):
    the retry labels the missing episode only, and ends with the same table as one go."""
    import pyarrow.fs as pafs

    from worker.rl import label_store

    filesystem = pafs.LocalFileSystem()
    directory = str(settings.data_dir / "resumed")
    seeds = label_seeds(3, 2)
    filesystem.create_dir(f"{directory}/parts", recursive=True)
    label_store._write(filesystem, f"{directory}/parts/{seeds[0]}.parquet", episode[1])
    filesystem.open_output_stream(f"{directory}/parts/{seeds[1]}.parquet.partial").close()
    labelled: list[int] = []
    real = label_store.labelled_episodes

    def counting(request: LabelRequest, todo: list[int]) -> object:
        labelled.extend(todo)
        return real(request, todo)

    monkeypatch.setattr(label_store, "labelled_episodes", counting)
    table = label_store.label_resumably(REQUEST, seeds, filesystem, directory)
    assert labelled == [seeds[1]]
    in_one_go = label(REQUEST, seeds)
    assert table.equals(in_one_go) and metadata_of(table) == metadata_of(in_one_go)
    assert not (Path(directory) / "parts").exists()
    assert label_store.label_resumably(REQUEST, seeds, filesystem, directory).equals(table)
    assert labelled == [seeds[1]], "a finished directory is read, not labelled again"
