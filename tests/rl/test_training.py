"""Real RLlib PPO, tiny budgets: train -> checkpoint -> resume -> load -> act -> evaluate.

One Ray session for the module (in a short /tmp dir: Ray's unix socket paths have a
108-byte limit) and one tiny trained checkpoint shared by the tests that only read it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from worker.rl.config import PPOHyperparams, TrainRoundConfig
from worker.settings import WorkerSettings
from worker.sim.workloads import WorkloadSpec

pytestmark = [pytest.mark.rl, pytest.mark.filterwarnings("ignore:.*Overriding environment:UserWarning")]

TINY = PPOHyperparams(
    train_batch_size=256,
    minibatch_size=128,
    num_epochs=1,
    num_envs_per_env_runner=4,
    num_env_runners=0,
    embed_dim=8,
    hidden=16,
)
"""Sampling in the driver: no runner actors to start for each of the small rounds."""


def tiny_config(
    output_dir: Path, iterations: int = 2, ppo: PPOHyperparams = TINY, **kwargs: object
) -> TrainRoundConfig:
    return TrainRoundConfig(
        workload=WorkloadSpec("steady", nodes=16, jobs=60),
        window=32,
        iterations=iterations,
        ppo=ppo,
        seed=1,
        output_dir=str(output_dir),
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def settings() -> Iterator[WorkerSettings]:
    import ray

    from worker.rl.runtime import ensure_ray

    started_here = not ray.is_initialized()
    root = Path(tempfile.mkdtemp(prefix="rlt-", dir="/tmp"))
    settings = WorkerSettings(data_dir=root)
    ensure_ray(settings)
    yield settings
    if started_here:
        ray.shutdown()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def trained(settings: WorkerSettings) -> tuple[object, list[object]]:
    from worker.rl.train import train_round

    progress: list[object] = []
    # The default sampling layout (remote env runners), so that path is exercised too.
    ppo = replace(TINY, num_env_runners=2, num_envs_per_env_runner=2)
    result = train_round(
        tiny_config(settings.data_dir / "trained", ppo=ppo),
        on_iteration=progress.append,
        settings=settings,
    )
    return result, progress


def test_round_reports_progress_and_checkpoints(trained: tuple) -> None:
    from worker.rl.train import read_metadata

    result, progress = trained
    assert [p.iteration for p in progress] == [1, 2]
    assert [p.iterations_in_round for p in progress] == [1, 2]
    assert progress[-1].env_steps == result.env_steps >= 512
    assert all(p.env_steps_per_second > 0 for p in progress)
    assert all(p.policy_loss is not None and p.entropy is not None for p in progress)
    assert result.iteration == 2
    assert Path(result.checkpoint).name == "iter-000002"
    assert progress[0].checkpoint is None  # no save_every: only the round's last one
    assert progress[-1].checkpoint == result.checkpoint  # saved before it was reported
    assert read_metadata(result.checkpoint)["iteration"] == 2


def test_trained_policy_plans_with_valid_actions_on_16_and_64_nodes(trained: tuple) -> None:
    from worker.rl.inference import PPOPolicy, load_module
    from worker.sim.plan import plan_schedule
    from worker.sim.workloads import make_scenario

    result, _ = trained
    module = load_module(result.checkpoint)

    class Checked(PPOPolicy):
        decisions = 0

        def act(self, view):  # type: ignore[no-untyped-def]
            action = super().act(view)
            assert view.obs["action_mask"][action] == 1.0
            self.decisions += 1
            return action

    for nodes in (16, 64):
        scenario = make_scenario(WorkloadSpec("steady", nodes=nodes, jobs=80), seed=9)
        policy = Checked(module)
        plan = plan_schedule(policy, list(scenario.nodes), list(scenario.jobs), window=32)
        assert policy.decisions > 0
        assert len(plan.placements) + len(plan.unplaced) == 80


def test_resume_continues_the_iteration_count(settings: WorkerSettings, trained: tuple) -> None:
    from worker.rl.train import train_round

    first, _ = trained
    progress: list[object] = []
    result = train_round(
        tiny_config(settings.data_dir / "resumed", iterations=1),
        resume_from=first.checkpoint,
        on_iteration=progress.append,
        settings=settings,
    )
    assert [p.iteration for p in progress] == [3]
    assert result.iteration == 3
    assert result.env_steps > first.env_steps
    assert Path(result.checkpoint).name == "iter-000003"


def test_should_stop_and_save_every_from_a_worker_thread(settings: WorkerSettings) -> None:
    """As the Temporal activity runs it: in a thread, checkpointing every iteration,
    told to stop after the second."""
    from worker.rl.train import train_round

    progress: list[object] = []
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["result"] = train_round(
                tiny_config(settings.data_dir / "stopped", iterations=5, save_every=1),
                on_iteration=progress.append,
                should_stop=lambda: len(progress) >= 2,
                settings=settings,
            )
        except BaseException as error:  # surfaced below
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=240)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert result.stopped_early
    assert result.iteration == 2
    assert progress[0].checkpoint.endswith("iter-000001")
    assert result.checkpoint.endswith("iter-000002")
    assert Path(progress[0].checkpoint, "rlsched.json").is_file()


def test_bad_resume_checkpoint_raises_checkpoint_error(settings: WorkerSettings, tmp_path: Path) -> None:
    from worker.rl.inference import CheckpointError
    from worker.rl.train import train_round

    with pytest.raises(CheckpointError, match="not found"):
        train_round(tiny_config(tmp_path), resume_from=str(tmp_path / "missing"), settings=settings)
    (tmp_path / "junk").mkdir()
    with pytest.raises(CheckpointError, match=r"missing rllib_checkpoint\.json"):
        train_round(tiny_config(tmp_path), resume_from=str(tmp_path / "junk"), settings=settings)


def test_evaluate_puts_ppo_first_and_computes_the_gain(trained: tuple) -> None:
    from worker.rl.evaluate import evaluate
    from worker.sim.league import STANDARD

    result, _ = trained
    report = evaluate(result.checkpoint, WorkloadSpec("steady", 16, jobs=40), 32, 2, seed=77)
    names = [r.policy for r in report.results]
    assert names[0] == "ppo"
    assert set(names[1:]) == set(STANDARD)  # the classic six, composed rules and `tuned`
    assert report.best_heuristic_score == max(r.metrics["score"] for r in report.heuristics)
    assert report.bound is not None and report.bound >= report.best_heuristic_score
    assert report.tuned_choice is not None
    assert report.gain == pytest.approx(report.ppo_score - report.best_heuristic_score)
    only = evaluate(result.checkpoint, WorkloadSpec("steady", 16, jobs=40), 32, 1, 1, ["fifo"])
    assert [r.policy for r in only.results] == ["ppo", "fifo"]


def test_nothing_is_written_under_the_home_directory(
    settings: WorkerSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RLlib's Algorithm makes a log folder per build under ~/ray_results; it must land
    under the data dir instead (and be removed when the round ends)."""
    from ray.train.constants import DEFAULT_STORAGE_PATH
    from ray.tune.trainable import trainable

    from worker.rl.train import train_round

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    real_default = Path(DEFAULT_STORAGE_PATH)  # fixed at import from the real home
    before = sorted(os.listdir(real_default)) if real_default.exists() else None

    train_round(tiny_config(tmp_path / "out", iterations=1), settings=settings)

    assert not (home / "ray_results").exists()
    after = sorted(os.listdir(real_default)) if real_default.exists() else None
    assert after == before
    redirected = Path(trainable.DEFAULT_STORAGE_PATH)
    assert redirected.is_relative_to(settings.data_dir.resolve())
    assert list(redirected.iterdir()) == []  # the round removed its own log folder
    assert list(home.iterdir()) == []


def test_a_residual_run_trains_and_serves_with_its_teacher(settings: WorkerSettings) -> None:
    """prior + warm start through real RLlib: the checkpoint's module names its teacher,
    its learned weight moved, and a plan from the checkpoint runs that teacher."""
    from worker.rl.inference import PPOPolicy
    from worker.rl.train import train_round
    from worker.sim.plan import plan_schedule
    from worker.sim.workloads import make_scenario

    ppo = replace(TINY, prior="edf+fastest", warm_start="edf+fastest", warm_start_episodes=2)
    config = tiny_config(settings.data_dir / "residual", iterations=1, ppo=ppo)
    result = train_round(config, settings=settings)
    policy = PPOPolicy.from_checkpoint(result.checkpoint)
    assert policy.module.prior == "edf+fastest"
    assert policy.env_options == {"prior": "edf+fastest"}
    assert float(policy.module.prior_weight) != pytest.approx(ppo.prior_weight)
    scenario = make_scenario(WorkloadSpec("steady", nodes=16, jobs=40), seed=3)
    plan = plan_schedule(policy, list(scenario.nodes), list(scenario.jobs))
    assert len(plan.placements) == 40


def test_a_learned_placement_starts_as_fgd_and_keeps_that_checkpoint(settings: WorkerSettings) -> None:
    """FGD's experiment as a training workload: with `save_start` the warm-started
    policy is checkpoint 0, and it places on a larger cluster exactly as its teacher."""
    from worker.rl.inference import PPOPolicy
    from worker.rl.train import train_round
    from worker.sim.allocation import allocation_curve, inflation_scenario, run_inflation
    from worker.sim.evaluate import run_episode
    from worker.sim.traces import OPENB_INFLATION, openb_cluster, openb_pod_shapes

    ppo = replace(TINY, prior="fifo+fgd", warm_start="fifo+fgd", warm_start_episodes=2)
    config = replace(
        tiny_config(settings.data_dir / "placement", iterations=1, ppo=ppo, save_start=True),
        workload=WorkloadSpec(OPENB_INFLATION, nodes=12),
        window=1,
        objective="allocation",
    )
    result = train_round(config, settings=settings)
    start = Path(config.output_dir).resolve() / "iter-000000"
    assert result.checkpoint == str(start.with_name("iter-000001"))
    policy = PPOPolicy.from_checkpoint(str(start))
    nodes, shapes = openb_cluster()[:40], openb_pod_shapes("default")[:400]
    env = run_episode(policy, inflation_scenario(nodes, shapes, 42), 1, 42)
    assert allocation_curve(env.sim, "start").allocated == run_inflation(nodes, shapes, "fgd", 42).allocated


def test_episode_means_hold_between_iterations_where_no_episode_ended() -> None:
    from worker.contracts import IterationProgress
    from worker.rl.train import _carry_smoothed

    smoothed: dict[str, float | None] = {"episode_score_mean": 0.8}  # from the resumed checkpoint
    reported = [None, 0.9, None, None, 0.95]
    seen = [
        _carry_smoothed(IterationProgress(iteration=i, episode_score_mean=s), smoothed).episode_score_mean
        for i, s in enumerate(reported)
    ]
    assert seen == [0.8, 0.9, 0.9, 0.9, 0.95]
    fresh: dict[str, float | None] = {}
    assert _carry_smoothed(IterationProgress(iteration=1), fresh).episode_return_mean is None
