"""A plan with `search:<base>`: on the same input it is never worse than its base's plan
(a plan's belief is exact: no arrivals after now, runtimes = the estimates, ties go to the
base), its notes say what the search did, and it still fits a tight plan timeout."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from temporalio.exceptions import ApplicationError

from worker.activities.inference import _plan
from worker.contracts import JobSpec, NodeSpec, PlanInput, PolicyRef, SearchOptions

JOBS = 40


def plan_input(policy: PolicyRef, seed: int, **extra: object) -> PlanInput:
    """A backlog: every job waiting now on a small cluster, so each decision has a choice."""
    rng = np.random.default_rng(seed)
    nodes = [NodeSpec(id=f"n{i}", cpus=32, gpus={"p5" if i % 2 else "p4": 4}) for i in range(3)]
    jobs = []
    for i in range(JOBS):
        runtime = float(rng.uniform(300, 3600))
        deadline = runtime * float(rng.uniform(1.5, 6)) + float(rng.uniform(0, 7200))
        gpus = float(rng.integers(0, 5))
        priority = int(rng.integers(1, 4))
        jobs.append(
            JobSpec(
                id=f"j{i}",
                cpus=4,
                gpus=gpus,
                priority=priority,
                runtime_estimate_s=runtime,
                deadline_s=deadline,
            )
        )
    return PlanInput(nodes=nodes, jobs=jobs, policy=policy, baseline=None, **extra)


@pytest.mark.parametrize(("base", "seed"), [("fifo", 1), ("sjf", 2), ("edf+fastest", 3)])
def test_a_search_plan_is_never_worse_than_its_base(base: str, seed: int) -> None:
    options = SearchOptions(candidates=6, depth=1, budget_ms=10_000)
    searched = _plan(plan_input(PolicyRef(kind="search", name=f"search:{base}"), seed, search=options))
    plain = _plan(plan_input(PolicyRef(kind="heuristic", name=base), seed))
    assert searched.metrics.score >= plain.metrics.score - 1e-9
    (note,) = searched.notes
    assert f"search over {base}" in note and "6 candidates" in note and "changed" in note


def test_a_search_plan_falls_back_to_its_base_when_time_is_short() -> None:
    """Uncapped, this search would take minutes; the plan's 1 s timeout would fail it (the
    activity raises PlanTimeout past it). Capped, it answers, and says it ran short."""
    options = SearchOptions(candidates=64, depth=3, budget_ms=60_000)
    searched = _plan(
        plan_input(PolicyRef(kind="search", name="search:sjf"), 4, search=options, timeout_s=1.0)
    )
    (note,) = searched.notes
    assert re.search(r"\(([1-9]\d*) ran out of time", note), note
    assert searched.metrics.jobs_finished + searched.metrics.unschedulable == JOBS


def test_a_checkpoint_base_that_fails_to_load_fails_as_a_checkpoint_policy_does() -> None:
    broken = {"name": "ckpt-1", "checkpoint": "/nonexistent/ckpt"}
    errors = []
    for policy in (
        PolicyRef(kind="checkpoint", **broken),
        PolicyRef(kind="search", **{**broken, "name": "search:ckpt-1"}),
    ):
        with pytest.raises(ApplicationError) as error:
            _plan(plan_input(policy, 5))
        errors.append((error.value.type, error.value.non_retryable, "/nonexistent" in str(error.value)))
    assert errors[0] == errors[1] == ("CheckpointError", True, True)


@pytest.mark.parametrize("prior", [None, "edf+fastest"], ids=["plain", "with-a-teacher-prior"])
def test_a_search_over_a_checkpoint_plans_with_it(tmp_path: Path, prior: str | None) -> None:
    """A checkpoint trained with a teacher prior rolls out with the teacher's choice in its
    observations, as in its own episodes (expert iteration's rounds search over such)."""
    import gymnasium as gym
    import torch

    from worker.rl.module import PairScoringModule
    from worker.sim.features import observation_space

    torch.manual_seed(0)
    module = PairScoringModule(
        observation_space=observation_space(32, 16, prior=prior is not None),
        action_space=gym.spaces.Discrete(32 * 16 + 1),
        model_config={"embed_dim": 16, "hidden": 32, "prior": prior},
    )
    module.save_to_path(str(tmp_path / "module"))
    ref = {"checkpoint": str(tmp_path / "module")}
    options = SearchOptions(candidates=4, depth=1, budget_ms=10_000)
    searched = _plan(plan_input(PolicyRef(kind="search", name="search:ckpt-1", **ref), 6, search=options))
    plain = _plan(plan_input(PolicyRef(kind="checkpoint", name="ckpt-1", **ref), 6))
    assert searched.metrics.score >= plain.metrics.score - 1e-9
    (note,) = searched.notes
    assert "4 candidates" in note
