"""evaluate_policy: a checkpoint (and, when asked, the search over it) against every
heuristic on the same held-out episodes.

On the training queue, next to the checkpoint training just wrote, and heartbeating
from a side thread so a lost worker is noticed in a heartbeat timeout rather than at
the end of the start-to-close timeout.
"""

from __future__ import annotations

from temporalio import activity

from worker.activities import Heartbeater, checkpoint_error, liveness_interval, policy_errors
from worker.contracts import EvaluateInput, EvaluationResult


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
