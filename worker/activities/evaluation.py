"""evaluate_policy and evaluate_search: a checkpoint (and, when asked, the search over it),
or a search, against every heuristic on the same held-out episodes; validate_policy: a
checkpoint beside `tuned` on training-side validation episodes, what a gated run compares
its rounds on.

On the training queue, next to the checkpoint training just wrote (and never in the app:
a search's league takes tens of seconds to minutes of CPU), heartbeating from a side
thread so a lost worker is noticed in a heartbeat timeout rather than at the end of the
start-to-close timeout.
"""

from __future__ import annotations

from typing import Any

from temporalio import activity

from worker.activities import Heartbeater, checkpoint_error, liveness_interval, policy_errors
from worker.contracts import (
    EvaluateInput,
    EvaluateSearchInput,
    EvaluationResult,
    ValidateInput,
    ValidationResult,
)


@activity.defn(name="evaluate_policy")
def evaluate_policy(input: EvaluateInput) -> EvaluationResult:
    from worker import artifacts
    from worker.convert import evaluation_result, workload_spec
    from worker.rl.evaluate import evaluate
    from worker.settings import get_settings

    try:
        checkpoint = str(artifacts.ensure_local(get_settings(), input.checkpoint))
    except FileNotFoundError as error:
        raise checkpoint_error(error) from error
    with Heartbeater(interval_s=liveness_interval()), policy_errors():
        report = evaluate(
            checkpoint,
            workload_spec(input.workload),
            input.workload.window,
            input.episodes,
            input.seed,
            objective=input.objective,
            search=input.search,
        )
    return evaluation_result(report)


@activity.defn(name="validate_policy")
def validate_policy(input: ValidateInput) -> ValidationResult:
    from worker import artifacts
    from worker.convert import workload_spec
    from worker.rl.inference import PPOPolicy, load_module
    from worker.rl.validation import validate
    from worker.settings import get_settings

    try:
        checkpoint = artifacts.ensure_local(get_settings(), input.checkpoint)
    except FileNotFoundError as error:
        raise checkpoint_error(error) from error
    with Heartbeater(interval_s=liveness_interval()), policy_errors():
        policy = PPOPolicy(load_module(checkpoint), "ppo")
        spec = workload_spec(input.workload)
        found = validate(policy, spec, input.workload.window, input.episodes, input.objective)
    return ValidationResult(score=found.score, tuned_score=found.tuned_score, episodes=input.episodes)


@activity.defn(name="evaluate_search")
def evaluate_search(input: EvaluateSearchInput) -> EvaluationResult:
    """The evidence a search's deployment needs; its row is the result's `ppo`. A base that
    does not apply to the workload (a deadline rule without deadlines) is refused as the
    heuristic itself is; a checkpoint base that fails to load, as a checkpoint policy."""
    from worker.convert import evaluation_result, workload_spec
    from worker.rl.evaluate import evaluate_against_league

    spec = workload_spec(input.workload)
    with Heartbeater(interval_s=liveness_interval()), policy_errors():
        search = _search(input, spec)
        report = evaluate_against_league(
            search, spec, input.workload.window, input.episodes, input.seed, objective=input.objective
        )
    return evaluation_result(report)


def _search(input: EvaluateSearchInput, spec: Any) -> Any:  # -> worker.search.policy.SearchPolicy
    from worker.activities.inference import load_policy
    from worker.contracts import SEARCH_PREFIX, PolicyRef, search_needs_no_checkpoint
    from worker.search.policy import SearchPolicy
    from worker.search.resolve import search_policies

    window, objective = input.workload.window, input.objective
    if search_needs_no_checkpoint(input.policy):
        built, skipped = search_policies([input.policy], spec, window, objective, input.options)
        if skipped:
            raise ValueError(
                f"{input.policy}: its base does not apply to {input.workload.name} (it has no deadlines)"
            )
        return built[0]
    base_id = input.policy.removeprefix(SEARCH_PREFIX)
    base = load_policy(PolicyRef(kind="checkpoint", name=base_id, checkpoint=input.checkpoint))
    return SearchPolicy(base, input.options, workload=spec)
