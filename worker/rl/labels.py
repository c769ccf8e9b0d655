"""Search-labelled data: training episodes played by `search:<base>`, one row a decision.

Expert iteration (issue 22) trains the policy towards what the search chose. Each row
holds what the policy saw (the observation, action mask included, exactly as the
training env builds it: same window, objective, teacher `prior` and backfilling), the
search's chosen action, the candidates it compared with their mean rollout values, a
soft target over actions built from them (`soft_target`), and the discounted return of
the searched episode from that decision on as the value target. The candidates' belief
values are kept too, but they are not the value target: a belief has no future arrivals
and its rollouts are undiscounted, so they are not in the units PPO's critic predicts.

Episodes come from the training seed range only (`LABEL_SEED_OFFSET`, above the PPO
sampler's and the validation episodes'), on the workload's training split (a held-out
trace's file is never played), and each is a Ray task, so a Ray cluster spreads them
over its machines and one machine uses its worker's CPUs. A labelled episode depends
only on its seed and the request, so a retried task gives the same rows. With a budget
that binds (`budget_ms`), how far a decision's search gets depends on the machine:
only a non-binding budget is reproducible, as for the search itself.

Stored as a directory holding one Parquet file (`LABELS_FILE`), so the artifact store's
copy and cache code for checkpoints (worker/artifacts.py) serves it unchanged; the
file's schema metadata records the seeds, the search and its options, and the target's
parameters.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray

from worker.contracts import SEARCH_PREFIX, heuristic_problem
from worker.contracts.search import SearchOptions
from worker.rl.config import TRAINING_SEED_OFFSET
from worker.search.policy import GAIN_TOLERANCE, SearchPolicy
from worker.sim.heuristics import TUNED, make_heuristic
from worker.sim.heuristics.tuned import make_tuned, tuning_spec
from worker.sim.policy import Policy
from worker.sim.teacher import make_env
from worker.sim.workloads import WorkloadSpec, make_scenario

LABEL_SEED_OFFSET = TRAINING_SEED_OFFSET + 2**31 + 2**30
"""Labelled episodes: training seeds above the PPO sampler's range (2**32 + [0, 2**31))
and the benchmarks' validation episodes (from 2**32 + 2**31), below sampled futures."""
SEED_LIMIT = 2**40
"""Sampled futures start here (worker/search/belief.py): no labelled episode may."""
LABELS_FILE = "labels.parquet"
METADATA_KEY = b"rlsched.labels"
OBS_PREFIX = "obs."


@dataclass(frozen=True)
class TargetOptions:
    """The soft target over the candidates: softmax(prior_logit * [a = chosen] + scale *
    q(a)), with q the candidates' rollout values min-max normalised to [0, 1] (Gumbel
    MuZero's completed-Q target, with the search's own choice standing in for the logits
    of a base that has none). Anchoring on the chosen action rather than the base's keeps
    the search's margin rule: a candidate that looked better only within the margin does
    not outweigh the choice. Values to be chosen on training-side validation episodes."""

    prior_logit: float = 3.0
    scale: float = 3.0
    wait_needs_evidence: bool = True
    """A WAIT is the target only where its rollout value beats every placement compared with
    it; where a placement ties or beats it, that placement (the likeliest by value, then the
    base's order) is the target instead. The search keeps its base's choice on a tie, so
    over a policy that waits its labels keep those WAITs, and imitating them makes the
    policy wait more: on `steady` the search over a round-2 policy waited at 168 decisions
    of 1,768, 164 of them its base's WAIT and 115 of those no better than a placement.
    Retrained from that round on these labels the greedy policy collapsed (validation 0.33);
    with this rule, 0.951, as without any WAIT row (plain PPO from there: 0.948). The
    search's own WAITs with evidence (all 67 in round 1, over `tuned`) stay targets."""
    imitate_wait: bool = True
    """Off: WAIT is neither a target's alternative nor imitated where the search chose it
    (those rows keep their value target only). Nearly all of `search:tuned`'s departures
    from `tuned` on `steady` are WAITs (4.0% of decisions of 4.3%), so they are the gain:
    without them round 1 scores exactly `tuned` on validation episodes (0.9626), with them
    0.967."""


@dataclass(frozen=True)
class LabelRequest:
    """What to label with: the search, the env the policy trains in, and the target."""

    workload: WorkloadSpec
    search: str = f"{SEARCH_PREFIX}{TUNED}"
    """`search:<heuristic or tuned>`."""
    options: SearchOptions = field(default_factory=SearchOptions)
    window: int = 32
    objective: str = "deadline"
    gamma: float = 0.995
    """Discount of the value target: PPO's `gamma`, so it is what the critic predicts."""
    prior: str | None = None
    """The training env's teacher prior (a concrete heuristic name), if the policy has one:
    its one-hot is part of the observation."""
    backfilling: bool = True
    target: TargetOptions = field(default_factory=TargetOptions)

    def metadata(self, seeds: Sequence[int]) -> dict[str, Any]:
        return {
            "seeds": [int(s) for s in seeds],
            "search": self.search,
            "options": self.options.model_dump(),
            "workload": asdict(self.workload),
            "window": self.window,
            "objective": self.objective,
            "gamma": self.gamma,
            "prior": self.prior,
            "backfilling": self.backfilling,
            "target": asdict(self.target),
        }


def label_seeds(seed: int, episodes: int) -> list[int]:
    """The episode seeds of a labelling run: `episodes` consecutive ones from a start that
    `seed` (any int, e.g. a round's seed) spreads over a range of 2**30."""
    start = (seed * 100_003) % (2**30 - episodes)
    return [LABEL_SEED_OFFSET + start + i for i in range(episodes)]


def check_training_seeds(seeds: Sequence[int]) -> None:
    """Refuse any seed outside the training range: an evaluation episode (uint32 seeds)
    must never be labelled, nor trained on."""
    bad = [s for s in seeds if not TRAINING_SEED_OFFSET <= s < SEED_LIMIT]
    if bad:
        raise ValueError(
            f"labelled episodes must use training seeds in [{TRAINING_SEED_OFFSET}, {SEED_LIMIT}); "
            f"got {bad[:5]}"
        )


def make_search(request: LabelRequest) -> SearchPolicy:
    """The request's `search:<base>`: over a heuristic, `tuned` (resolved for the workload
    on training seeds), or a checkpoint (a path or store URI: the learned policy plays the
    rollouts; expert iteration's rounds after the first)."""
    if not request.search.startswith(SEARCH_PREFIX):
        raise ValueError(f"a labelling search is named search:<base>, not {request.search!r}")
    base_name = request.search.removeprefix(SEARCH_PREFIX)
    spec = request.workload
    if base_name == TUNED:
        base: Policy = make_tuned(spec, request.window, request.objective)
    elif heuristic_problem(base_name) is None:
        base = make_heuristic(base_name)
    else:
        try:
            base = _checkpoint_policy(base_name)
        except FileNotFoundError as error:
            raise ValueError(
                f"search base {base_name!r} is neither tuned, a heuristic ({heuristic_problem(base_name)}) "
                f"nor a checkpoint ({error})"
            ) from error
    env_options = {"backfilling": request.backfilling}
    return SearchPolicy(base, request.options, workload=spec, env_options=env_options)


def _checkpoint_policy(location: str) -> Policy:
    """A checkpoint base, fetched from the artifact store when it is a URI (each Ray task
    may run on another machine: it reads the store with its own worker settings)."""
    from worker.artifacts import ensure_local
    from worker.rl.inference import PPOPolicy, load_module
    from worker.settings import get_settings

    return PPOPolicy(load_module(ensure_local(get_settings(), location)), "ppo")


def soft_target(
    values: dict[int, float], chosen: int, mask: np.ndarray, options: TargetOptions
) -> tuple[list[int], list[float]]:
    """(actions, probabilities) of the target at one decision (see TargetOptions): only
    actions the mask allows; one-hot on `chosen` when nothing was compared; a WAIT without
    evidence replaced by the best placement (`wait_needs_evidence`); empty (the decision
    is not imitated) where the search waited if `options.imitate_wait` is off."""
    wait = len(mask) - 1
    if chosen == wait and not options.imitate_wait:
        return [], []
    if chosen == wait and options.wait_needs_evidence:
        placements = {a: v for a, v in values.items() if a != wait and mask[a] > 0.5}
        if placements and values.get(wait, -math.inf) - max(placements.values()) <= GAIN_TOLERANCE:
            chosen = max(placements, key=lambda a: placements[a])
    actions = [a for a in values if mask[a] > 0.5 and (a != wait or options.imitate_wait)]
    if chosen not in actions:
        actions.insert(0, chosen)
    if len(actions) == 1:
        return actions, [1.0]
    q = np.array([values.get(a, -math.inf) for a in actions])
    known = np.isfinite(q)
    low, high = q[known].min(), q[known].max()
    spread = high - low
    q = np.where(known, (q - low) / spread if spread > GAIN_TOLERANCE else 0.0, 0.0)
    logits = options.scale * q + options.prior_logit * (np.array(actions) == chosen)
    probs = np.exp(logits - logits.max())
    return actions, (probs / probs.sum()).tolist()


def label_episode(request: LabelRequest, episode_seed: int) -> pa.Table:
    """Play one training episode with the search and return its decisions as rows.
    Decisions whose action the mask refuses (a WAIT the env replaces) are not rows: the
    policy could not take them. `rollout_value` (the chosen candidate's belief value) is
    null where the search compared nothing."""
    check_training_seeds([episode_seed])
    search = make_search(request)
    spec = request.workload
    config = {"nodes": spec.nodes, "window": request.window, "objective": request.objective}
    env = make_env(config | {"prior": request.prior, "backfilling": request.backfilling})
    env.load_scenario(make_scenario(tuning_spec(spec), episode_seed), episode_seed)
    search.reset(episode_seed)
    obs: dict[str, list[np.ndarray]] = {}
    columns: dict[str, list[Any]] = {
        "action": [],
        "base_action": [],
        "candidates": [],
        "values": [],
        "target_actions": [],
        "target_probs": [],
        "rollout_value": [],
    }
    rewards: list[float] = []
    done = False
    while not done:
        view = env.decision_view()
        action = int(search.act(view))
        assert view.obs is not None
        mask = view.obs["action_mask"]
        if mask[action] > 0.5:
            for key, value in view.obs.items():
                obs.setdefault(key, []).append(np.array(value))
            values = dict(search.last_values)
            target_actions, target_probs = soft_target(values, action, mask, request.target)
            columns["action"].append(action)
            columns["base_action"].append(next(iter(values), action))
            columns["candidates"].append(list(values))
            columns["values"].append(list(values.values()))
            columns["target_actions"].append(target_actions)
            columns["target_probs"].append(target_probs)
            columns["rollout_value"].append(values.get(action))
            rewards.append(0.0)
        _, reward, terminated, truncated, _ = env.step(action)
        if rewards:
            rewards[-1] += reward
        done = terminated or truncated
    to_go, running = np.zeros(len(rewards), dtype=np.float32), 0.0
    for i in range(len(rewards) - 1, -1, -1):
        running = rewards[i] + request.gamma * running
        to_go[i] = running
    arrays: dict[str, pa.Array] = {
        "episode_seed": pa.array(np.full(len(rewards), episode_seed, dtype=np.int64)),
        "decision": pa.array(np.arange(len(rewards), dtype=np.int32)),
    }
    for key, rows in obs.items():
        stacked = np.stack(rows)
        size = int(np.prod(stacked.shape[1:]))
        arrays[OBS_PREFIX + key] = pa.FixedSizeListArray.from_arrays(pa.array(stacked.reshape(-1)), size)
    arrays["action"] = pa.array(columns["action"], pa.int64())
    arrays["base_action"] = pa.array(columns["base_action"], pa.int64())
    arrays["candidates"] = pa.array(columns["candidates"], pa.list_(pa.int64()))
    arrays["values"] = pa.array(columns["values"], pa.list_(pa.float64()))
    arrays["target_actions"] = pa.array(columns["target_actions"], pa.list_(pa.int64()))
    arrays["target_probs"] = pa.array(columns["target_probs"], pa.list_(pa.float32()))
    arrays["rollout_value"] = pa.array(columns["rollout_value"], pa.float64())
    arrays["return_to_go"] = pa.array(to_go)
    shapes = {key: list(np.shape(rows[0])) for key, rows in obs.items()}
    return _with_metadata(pa.table(arrays), request.metadata([episode_seed]) | {"obs_shapes": shapes})


_label_episode_task = ray.remote(num_cpus=1, max_retries=3)(label_episode)
"""One episode per task, one CPU each; a task lost with its worker is re-run, and gives
the same rows (see the module docstring)."""


def labelled_episodes(request: LabelRequest, seeds: Sequence[int]) -> Iterator[pa.Table]:
    """Label `seeds` as Ray tasks (Ray must be up: `worker.rl.runtime.ensure_ray`) and
    yield each episode's table as it finishes (in completion order)."""
    check_training_seeds(seeds)
    make_search(request)  # an unknown base fails here, not in every task
    pending = [_label_episode_task.remote(request, int(s)) for s in seeds]
    while pending:
        finished, pending = ray.wait(pending, num_returns=1)
        yield ray.get(finished[0])


def combine(tables: Sequence[pa.Table]) -> pa.Table:
    """Episode tables as one, in seed order, its metadata naming every seed."""
    if not tables:
        raise ValueError("label at least one episode")
    ordered = sorted(tables, key=lambda t: metadata_of(t)["seeds"][0])
    seeds = [metadata_of(t)["seeds"][0] for t in ordered]
    document = metadata_of(ordered[0]) | {"seeds": seeds}
    return _with_metadata(pa.concat_tables([t.replace_schema_metadata(None) for t in ordered]), document)


def label(
    request: LabelRequest,
    seeds: Sequence[int],
    on_episode: Callable[[int, int], None] | None = None,
) -> pa.Table:
    """Label `seeds` as Ray tasks into one table in seed order (see `combine`);
    `on_episode(done, total)` is called as episodes finish."""
    tables = []
    for table in labelled_episodes(request, seeds):
        tables.append(table)
        if on_episode is not None:
            on_episode(len(tables), len(seeds))
    return combine(tables)


def metadata_of(table: pa.Table) -> dict[str, Any]:
    """What made a labelled table: the seeds, the search and its options, the env and the
    target's parameters (LabelRequest.metadata), and the observation's shapes."""
    return json.loads(table.schema.metadata[METADATA_KEY])


def _with_metadata(table: pa.Table, document: dict[str, Any]) -> pa.Table:
    return table.replace_schema_metadata({METADATA_KEY: json.dumps(document).encode()})


def write_labels(table: pa.Table, directory: Path) -> Path:
    """Write a labelled table as `directory/LABELS_FILE` (a local directory: publish it to
    the artifact store with worker.artifacts.publish, like a checkpoint)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LABELS_FILE
    pq.write_table(table, path, compression="zstd")
    return path


def read_labels(location: str | Path) -> pa.Table:
    """A labelled table from a local directory (or the file itself)."""
    path = Path(location)
    return pq.read_table(path / LABELS_FILE if path.is_dir() else path)


@dataclass(frozen=True)
class DistillData:
    """A labelled table as dense arrays for the learner: the soft targets padded to the
    widest one (padding has probability 0 and repeats the chosen action, which is valid).
    A row with an empty target (a WAIT not imitated) has probability 0 everywhere."""

    obs: dict[str, np.ndarray]
    target_actions: np.ndarray
    """[M, C] int64."""
    target_probs: np.ndarray
    """[M, C] float32, rows summing to 1."""
    returns: np.ndarray
    """[M] float32: the value target."""

    def __len__(self) -> int:
        return len(self.returns)


def distill_data(table: pa.Table) -> DistillData:
    shapes = metadata_of(table)["obs_shapes"]
    n = table.num_rows
    obs = {
        key: table.column(OBS_PREFIX + key).combine_chunks().flatten().to_numpy().reshape(n, *shape)
        for key, shape in shapes.items()
    }
    actions = table.column("target_actions").to_pylist()
    probs = table.column("target_probs").to_pylist()
    width = max(1, max(len(a) for a in actions))
    chosen = table.column("action").to_numpy()
    target_actions = np.repeat(chosen[:, None], width, axis=1).astype(np.int64)
    target_probs = np.zeros((n, width), dtype=np.float32)
    for i, (a, p) in enumerate(zip(actions, probs, strict=True)):
        target_actions[i, : len(a)] = a
        target_probs[i, : len(p)] = p
    returns = table.column("return_to_go").to_numpy().astype(np.float32)
    return DistillData(obs, target_actions, target_probs, returns)
