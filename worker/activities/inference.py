"""plan_schedule: a placement plan for the requested policy plus a baseline heuristic's.

SchedulerWorkflow runs this as a local activity on the `rl-inference` worker: a
schedule request then costs one workflow task round trip, not three. Both plans are
computed in the same call for the same reason. Loaded policy modules stay cached in
the worker process (worker.rl.inference's LRU), so only the first request for a
checkpoint pays for loading it.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from worker.activities import checkpoint_error, invalid_input
from worker.contracts import BaselineOut, PlanInput, PlanOutput, PolicyRef, plan_input_problem


def load_policy(ref: PolicyRef):  # -> worker.sim.policy.Policy
    """The sim Policy a PolicyRef names; non-retryable errors for what retrying can't fix."""
    from worker.sim.heuristics import make_heuristic

    if ref.kind == "heuristic":
        try:
            return make_heuristic(ref.name)
        except ValueError as error:
            raise invalid_input(error) from error
    if not ref.checkpoint:
        raise invalid_input(ValueError(f"policy {ref.name!r} is a checkpoint policy but names no checkpoint"))
    from worker import artifacts
    from worker.settings import get_settings

    try:
        path = artifacts.ensure_local(get_settings(), ref.checkpoint)
        from worker.rl.inference import PPOPolicy, load_module

        return PPOPolicy(load_module(str(path)))
    except (ValueError, FileNotFoundError, OSError) as error:  # CheckpointError is a ValueError
        raise checkpoint_error(error) from error


TUNED_JOBS = 200
"""Episode length `tuned` is chosen with (window 32), whatever the plan's size: the
choices pinned in tuned.json (16 and 32 nodes) are for it, so the usual plans do not tune."""
TUNED_FOR_GIVEN_JOBS = "steady"
"""The workload `tuned` is chosen on for a plan of given nodes and jobs (pinned in
tuned.json for 16 nodes, 200 jobs, window 32: no tuning inside a request)."""


def search_policy(input: PlanInput):  # -> worker.search.policy.SearchPolicy
    """`search:<heuristic, tuned or checkpoint>` over the plan's input; `tuned` is chosen for the
    synthetic workload, or for `steady` when nodes and jobs are given (a workload without
    a pinned choice is tuned once per worker process: seconds)."""
    from worker.contracts import SEARCH_PREFIX, heuristic_problem
    from worker.convert import workload_spec
    from worker.search.policy import SearchPolicy
    from worker.sim.heuristics import TUNED, make_heuristic
    from worker.sim.heuristics.tuned import make_tuned
    from worker.sim.workloads import WorkloadSpec

    base_name = input.policy.name.removeprefix(SEARCH_PREFIX)
    if input.synthetic is not None:
        spec, window = replace(workload_spec(input.synthetic.workload), jobs=TUNED_JOBS), 32
    else:
        spec, window = WorkloadSpec(TUNED_FOR_GIVEN_JOBS, 16, None, TUNED_JOBS), 32
    if base_name == TUNED:
        base = make_tuned(spec, window)
    elif heuristic_problem(base_name) is None:
        base = make_heuristic(base_name)
    else:  # a checkpoint: loaded, and refused, as a checkpoint policy is
        base = load_policy(PolicyRef(kind="checkpoint", name=base_name, checkpoint=input.policy.checkpoint))
    workload = spec if input.synthetic is not None else None
    return SearchPolicy(base, input.search, workload=workload, tuned_for=spec)


def search_levels(policy: Any) -> list[Any]:  # -> list[SearchPolicy]
    """A search and the searches it rolls out with (depth > 1); empty for any other policy."""
    from worker.search.policy import SearchPolicy

    levels = []
    while isinstance(policy, SearchPolicy):
        levels.append(policy)
        policy = policy.base
    return levels


def search_notes(policy: Any) -> list[str]:
    """What a search plan did: its base, the options used and the decisions it changed."""
    levels = search_levels(policy)
    if not levels:
        return []
    options, stats, base = policy.options, policy.stats, levels[-1].base
    choice = getattr(base, "choice", None)
    runs = f" (runs {choice.choice})" if choice is not None else ""
    return [
        f"search over {base.name}{runs}: {options.candidates} candidates, {options.rollouts} rollout(s), "
        f"depth {options.depth}, horizon {options.horizon or 'to the end'}, budget {options.budget_ms:g} ms "
        f"a decision; it changed {stats.changed} of {stats.decisions} decisions "
        f"({stats.out_of_time} ran out of time, {stats.ms_per_decision:.1f} ms a decision)"
    ]


@activity.defn(name="plan_schedule")
def plan_schedule(input: PlanInput) -> PlanOutput:
    from worker.metrics import PLAN_SECONDS

    started, outcome = time.perf_counter(), "failed"
    try:
        output = _plan(input)
        outcome = "completed"
        return output
    finally:
        PLAN_SECONDS.labels(input.policy.kind, outcome).observe(time.perf_counter() - started)


def _plan(input: PlanInput, on_decision: Callable[[int, int], None] | None = None) -> PlanOutput:
    """The plan and its baseline's (the activity's work, also `rlsched plan`'s);
    `on_decision(jobs placed, jobs)` is called at each decision of the policy's plan."""
    from worker.convert import job_from_spec, node_from_spec, plan_metrics, plan_output, workload_spec
    from worker.sim.heuristics import make_heuristic
    from worker.sim.plan import plan_schedule as plan
    from worker.sim.workloads import make_scenario

    started = time.perf_counter()
    problem = plan_input_problem(input)  # the same check as the service workflow's validator
    if problem is not None:
        raise invalid_input(ValueError(problem))
    deadline = time.monotonic() + min(plan_budget_s(), input.timeout_s or math.inf)
    try:
        policy = search_policy(input) if input.policy.kind == "search" else load_policy(input.policy)
        if input.synthetic is not None:
            scenario = make_scenario(workload_spec(input.synthetic.workload), input.synthetic.seed)
            nodes, jobs = list(scenario.nodes), list(scenario.jobs)
        else:
            nodes = [node_from_spec(n) for n in input.nodes or []]
            jobs = [job_from_spec(j) for j in input.jobs or []]
        result = plan(_Deadline(policy, deadline, on_decision), nodes, jobs, input.window)
        baseline: BaselineOut | None = None
        if input.baseline is None:
            pass
        elif input.policy.kind == "heuristic" and input.policy.name == input.baseline:
            baseline = BaselineOut(policy=result.policy, metrics=plan_metrics(result.metrics))
        else:
            key = _baseline_key(input)
            baseline = _baselines.get(key)
            if baseline is None:
                other = plan(_Deadline(make_heuristic(input.baseline), deadline), nodes, jobs, input.window)
                baseline = _baselines.put(
                    key, BaselineOut(policy=other.policy, metrics=plan_metrics(other.metrics))
                )
    except (ValueError, FileNotFoundError) as error:
        raise invalid_input(error) from error
    checkpoint = input.policy.checkpoint if input.policy.kind == "checkpoint" else None
    output = plan_output(result, baseline, checkpoint, (time.perf_counter() - started) * 1000)
    output.notes.extend(search_notes(policy))
    return output


PLAN_TIMEOUT_TYPE = "PlanTimeout"
DEFAULT_PLAN_BUDGET_S = 60.0


def plan_budget_s() -> float:
    """How long this plan may compute: just under the activity's start-to-close timeout.

    A timed-out sync activity is not interrupted (Python cannot stop its thread): it
    would keep a core busy, and each retry would start another copy beside it. So the
    rollout checks the clock at every decision and gives up itself, non-retryably (the
    same input would take as long again)."""
    try:
        timeout = activity.info().start_to_close_timeout
    except RuntimeError:  # called outside an activity (benchmarks, tests)
        return DEFAULT_PLAN_BUDGET_S
    return 0.95 * timeout.total_seconds() if timeout else DEFAULT_PLAN_BUDGET_S


class _Deadline:
    """A Policy that fails the plan once `deadline` (time.monotonic) has passed."""

    def __init__(
        self, policy: Any, deadline: float, on_decision: Callable[[int, int], None] | None = None
    ) -> None:
        self.wrapped = policy
        """The policy deciding; plan_schedule reads it (a heuristic's notes)."""
        self._deadline = deadline
        self._on_decision = on_decision
        self._decisions = 0
        self.name = policy.name
        self.needs_observation = getattr(policy, "needs_observation", True)
        self.env_options = getattr(policy, "env_options", {})
        """What the policy's env must be (a learned policy's teacher `prior`, its backfilling)."""
        self._searches = search_levels(policy)
        """The search's levels (the outer one, the searches it rolls out with), if a search."""

    def reset(self, seed: int) -> None:
        self.wrapped.reset(seed)

    def act(self, view: Any) -> int:
        self._decisions += 1
        now = time.monotonic()
        self._cap_search(view, now)
        if now > self._deadline:
            raise ApplicationError(
                f"the plan did not finish in time (gave up after {self._decisions} decisions of "
                f"{view.sim.n_jobs} jobs on {len(view.sim.node_ids)} nodes); send fewer jobs or "
                "nodes per request",
                type=PLAN_TIMEOUT_TYPE,
                non_retryable=True,
            )
        if self._on_decision is not None:
            self._on_decision(view.sim.placements, view.sim.n_jobs)
        return self.wrapped.act(view)

    def _cap_search(self, view: Any, now: float) -> None:
        """Anytime: a search may spend on this decision at most SEARCH_SHARE of the time
        left divided among the jobs left, so its base's choices (always computed first)
        still finish in time; once that share is gone it plays the base's choice."""
        if not self._searches:
            return
        left = max(1, view.sim.n_jobs - view.sim.placements)
        limit = time.perf_counter() + SEARCH_SHARE * max(0.0, self._deadline - now) / left
        for search in self._searches:
            search.deadline = limit


SEARCH_SHARE = 0.5
"""Of the plan's remaining time per remaining job, what a search may spend on a decision:
the rest is for the base's own decisions and the baseline's plan."""


class _BaselineCache:
    """The baseline's metrics per input (LRU): the same cluster state planned with
    several policies, or sent again, pays for the heuristic's rollout once."""

    def __init__(self, capacity: int = 64) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._entries: OrderedDict[bytes, BaselineOut] = OrderedDict()

    def get(self, key: bytes) -> BaselineOut | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: bytes, value: BaselineOut) -> BaselineOut:
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        return value


_baselines = _BaselineCache()


def _baseline_key(input: PlanInput) -> bytes:
    data = input.model_dump_json(include={"nodes", "jobs", "synthetic", "window", "baseline"})
    return hashlib.blake2b(data.encode(), digest_size=16).digest()
