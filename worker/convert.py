"""Translations between the wire contracts (pydantic, worker/contracts/) and the
simulator's and RL library's own records.

Kept in one module so activities stay short and the contracts stay free of numpy, ray
and torch: only activities import this (workflows never do).
"""

from __future__ import annotations

import math
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

from worker.contracts import (
    SWF_WORKLOAD_PREFIX,
    BaselineOut,
    EvaluationResult,
    IterationProgress,
    JobSpec,
    NodeSpec,
    PlacementOut,
    PlanMetrics,
    PlanOutput,
    PolicyMetrics,
    PPOParams,
    TrainingRunConfig,
    UnplacedOut,
    WorkloadConfig,
)
from worker.sim.model import Job, Node, NodeStatus
from worker.sim.workloads import WorkloadSpec

if TYPE_CHECKING:
    from worker.rl.config import PPOHyperparams
    from worker.rl.labels import LabelRequest
    from worker.sim.metrics import EpisodeMetrics
    from worker.sim.plan import Plan


def workload_spec(config: WorkloadConfig) -> WorkloadSpec:
    """The sim's spec for a client's workload; a client's SWF file is pinned under the
    traces directory (contracts checked the path's shape)."""
    name = config.name
    if name.startswith(SWF_WORKLOAD_PREFIX):
        from worker.sim.traces import traces_dir

        root = traces_dir().resolve()
        path = (root / name[len(SWF_WORKLOAD_PREFIX) :]).resolve()
        if not path.is_relative_to(root):  # a symlink pointing out of it
            raise ValueError(f"{name!r} resolves outside the traces directory")
        name = f"{SWF_WORKLOAD_PREFIX}{path}"
    return WorkloadSpec(name, config.nodes, config.load, config.jobs)


def node_from_spec(spec: NodeSpec) -> Node:
    return Node(
        id=spec.id,
        cpus=spec.cpus,
        memory_gb=spec.memory_gb,
        gpus=dict(spec.gpus),
        gpu_speed=dict(spec.gpu_speed or {}),
        status=NodeStatus(spec.status),
    )


def job_from_spec(spec: JobSpec) -> Job:
    """A pending job as the simulator sees it: its runtime is the user's estimate (the
    only runtime a plan can know) and no deadline means it can never be late."""
    return Job(
        id=spec.id,
        cpus=spec.cpus,
        gpus=spec.gpus,
        priority=spec.priority,
        submit_s=spec.submit_s,
        runtime_estimate_s=spec.runtime_estimate_s,
        runtime_s=spec.runtime_estimate_s,
        deadline_s=math.inf if spec.deadline_s is None else spec.deadline_s,
        memory_gb=spec.memory_gb,
        gpu_types=tuple(spec.gpu_types or ()),
    )


def plan_metrics(metrics: EpisodeMetrics) -> PlanMetrics:
    return PlanMetrics(**{name: getattr(metrics, name) for name in PlanMetrics.model_fields})


def plan_output(
    plan: Plan, baseline: BaselineOut | None, checkpoint: str | None, elapsed_ms: float
) -> PlanOutput:
    return PlanOutput(
        policy=plan.policy,
        checkpoint=checkpoint,
        placements=[
            PlacementOut(
                job_id=p.job_id,
                node_id=p.node_id,
                gpu_type=p.gpu_type,
                start_s=p.start_s,
                finish_s=p.finish_s,
                meets_deadline=p.meets_deadline,
                priority=p.priority,
            )
            for p in plan.placements
        ],
        unplaced=[UnplacedOut(job_id=u.job_id, reason=u.reason) for u in plan.unplaced],
        metrics=plan_metrics(plan.metrics),
        baseline=baseline,
        elapsed_ms=elapsed_ms,
    )


def ppo_hyperparams(params: PPOParams, seed: int) -> PPOHyperparams:
    from worker.rl.config import PPOHyperparams

    known = {f.name for f in fields(PPOHyperparams)}
    values = {k: v for k, v in params.model_dump().items() if k in known}
    return PPOHyperparams(**values, seed=seed)


def label_request(config: TrainingRunConfig, search: str) -> LabelRequest:
    """What a distilling run's label step plays: `search` with the run's options, in the
    env its PPO rounds train in (window, objective, the teacher `prior` resolved as the
    round resolves it), its value target discounted by the run's gamma."""
    from worker.rl.config import TrainRoundConfig, resolve_prior
    from worker.rl.labels import LabelRequest

    distill = config.ppo.distill
    if distill is None:
        raise ValueError("the run has no ppo.distill block: nothing to label")
    ppo = ppo_hyperparams(config.ppo, seed=config.seed)
    spec = workload_spec(config.workload)
    window = config.workload.window
    resolved = resolve_prior(
        TrainRoundConfig(workload=spec, objective=config.objective, window=window, ppo=ppo)
    )
    return LabelRequest(
        spec,
        search,
        distill.options,
        window,
        config.objective,
        ppo.gamma,
        resolved.ppo.prior,
        ppo.backfilling,
    )


def distill_hyperparams(ppo: PPOHyperparams, params: PPOParams, labels: str | None) -> PPOHyperparams:
    """The round's PPO with the distillation term on the round's labels (a local path)."""
    if params.distill is None or labels is None:
        return ppo
    return replace(ppo, distill_weight=params.distill.weight, distill_labels=labels)


def iteration_progress(progress: IterationProgress, iterations_in_round: int) -> IterationProgress:
    """The RL library's per-iteration record with the count of the activity's round."""
    return progress.model_copy(update={"iterations_in_round": iterations_in_round})


def policy_metrics(policy: str, metrics: Any) -> PolicyMetrics:
    """One policy's averaged metrics (a dict or a record with the metric fields)."""
    if not isinstance(metrics, dict):
        metrics = {f.name: getattr(metrics, f.name) for f in fields(metrics)}
    values = {k: float(v) for k, v in metrics.items() if k in PolicyMetrics.model_fields and k != "policy"}
    return PolicyMetrics(policy=policy, **values)


def evaluation_result(report: Any) -> EvaluationResult:
    """worker.rl.evaluate's EvaluationReport as the wire model."""
    heuristics = report.heuristics
    if isinstance(heuristics, dict):
        items = list(heuristics.items())
    else:
        items = [(h.policy, h.metrics) for h in heuristics]
    search = getattr(report, "search", None)
    return EvaluationResult(
        ppo=policy_metrics("ppo", report.ppo),
        heuristics=[policy_metrics(name, metrics) for name, metrics in items],
        best_heuristic=report.best_heuristic,
        best_heuristic_score=report.best_heuristic_score,
        gain=report.gain,
        bound=getattr(report, "bound", None),
        gap_closed=getattr(report, "gap_closed", None),
        tuned_choice=getattr(report, "tuned_choice", None),
        objective=getattr(report, "objective", "deadline"),
        ppo_value=getattr(report, "ppo_value", None),
        heuristic_values=getattr(report, "heuristic_values", {}),
        search=None if search is None else policy_metrics(search.policy, search.metrics),
        search_value=getattr(report, "search_value", None),
        search_gap_closed=getattr(report, "search_gap_closed", None),
        search_ms_per_decision=getattr(report, "search_ms_per_decision", None),
    )
