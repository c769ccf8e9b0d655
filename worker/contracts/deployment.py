"""Which policy serves `best` for a workload class, and the rules a deployment must pass:
the evidence a checkpoint brings (or a search measures, contracts.search_deployment) and
what the scheduler service workflow accepts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from worker.contracts.ids import (
    Model,
    checked,
    id_problem,
    location_problem,
    path_like_problem,
    policy_class_problem,
    search_problem,
)
from worker.contracts.names import SEARCH_PREFIX, Objective, heuristic_problem
from worker.contracts.plans import PolicyRef, search_needs_no_checkpoint
from worker.contracts.search import SearchOptions
from worker.contracts.workloads import WorkloadConfig


class EvaluationEvidence(Model):
    """Why a checkpoint or a search may be deployed: a held-out evaluation (a checkpoint's
    round's, or the one measured when a search is deployed). Margins compare only between
    evidence with the same `seeds_key` (same episodes, same objective)."""

    run_id: str | None = None
    """The run whose round evaluated the checkpoint; None for a search (measured on deployment)."""
    round: int | None = None
    workload: WorkloadConfig
    """The evaluation workload (a `:train` trace is evaluated on `:heldout`)."""
    objective: Objective = "deadline"
    seed: int
    episodes: int
    ppo_value: float
    """The evaluated policy's value (PPO's for a checkpoint, the search's for a search)."""
    best_heuristic: str
    best_heuristic_score: float
    margin: float
    """ppo_value - best_heuristic_score, in the objective's units (higher is better)."""
    league: dict[str, float] = Field(default_factory=dict)
    """Every heuristic's value on the same episodes."""

    @property
    def eligible(self) -> bool:
        return self.margin > 0

    def seeds_key(self) -> tuple[str, str, int, int]:
        return (self.workload.model_dump_json(), self.objective, self.seed, self.episodes)


class Deployment(Model):
    """A policy deployed for a workload class in the scheduler service workflow."""

    policy_class: str
    policy: str
    """A checkpoint id (the app's), a heuristic name, or `search:<heuristic, tuned or
    checkpoint id>`."""
    kind: Literal["checkpoint", "heuristic", "search"]
    checkpoint: str | None = None
    """The checkpoint's location (a search's base's), for the worker."""
    window: int | None = None
    search: SearchOptions | None = None
    """A search's options (None: the defaults), the ones it was measured with."""
    runs: str | None = None
    """For `search:tuned`: the composition `tuned` chose for the measured workload. Plans
    search over it, so `best` serves exactly what was measured."""
    evidence: EvaluationEvidence | None = None
    forced: bool = False
    """Deployed although not eligible (an operator's `force: true`)."""
    source: Literal["operator", "auto"] = "operator"
    deployed_at: datetime | None = None
    """Set by the workflow when the deployment lands."""

    @property
    def eligible(self) -> bool:
        return self.kind == "heuristic" or (self.evidence is not None and self.evidence.eligible)

    @property
    def served(self) -> str:
        """The name plans run under: `search:<runs>` for a search over `tuned`."""
        return f"{SEARCH_PREFIX}{self.runs}" if self.kind == "search" and self.runs else self.policy

    @field_validator("policy_class")
    @classmethod
    def _known_class(cls, name: str) -> str:
        return checked(policy_class_problem(name), name)

    @model_validator(mode="after")
    def _policy_name(self) -> Deployment:
        """A checkpoint is named by its id; a heuristic name is checked by deploy_problem
        (so the validator answers DeployRejected), but never looks like a path."""
        if self.kind == "checkpoint":
            checked(id_problem(self.policy, "checkpoint id"), self.policy)
        elif self.kind == "search":
            checked(search_problem(self.policy), self.policy)
            if self.runs is not None:
                checked(heuristic_problem(self.runs, "runs"), self.runs)
        else:
            checked(path_like_problem(self.policy), self.policy)
        return self

    @field_validator("checkpoint")
    @classmethod
    def _safe_location(cls, location: str | None) -> str | None:
        return location if not location else checked(location_problem(location, "checkpoint"), location)

    def ref(self) -> PolicyRef:
        """The policy a plan runs (a search's options go in PlanInput.search)."""
        return PolicyRef(kind=self.kind, name=self.served, checkpoint=self.checkpoint)


def deployed_note(policy_class: str, deployment: Deployment | None, fallback: str) -> str:
    """What a plan's `notes` say about the policy 'best' stood for."""
    if deployment is None:
        return f"nothing deployed for class {policy_class!r}: used the {fallback!r} heuristic for 'best'"
    margin = f", margin {deployment.evidence.margin:+.4f}" if deployment.evidence is not None else ""
    forced = ", forced: NOT eligible" if deployment.forced else ""
    runs = f" (tuned runs {deployment.runs})" if deployment.runs else ""
    what = f"{deployment.kind} {deployment.policy!r}{runs}"
    return f"'best' for class {policy_class!r} is the deployed {what}{margin}{forced}"


class DeployRequest(Model):
    deployment: Deployment
    auto: bool = False
    """From a run with `deploy: "auto"`: deployed only under the rule of deploy_problem."""


class DeployResult(Model):
    deployment: Deployment
    previous: Deployment | None = None


class Deployments(Model):
    classes: dict[str, Deployment] = Field(default_factory=dict)


def deploy_problem(request: DeployRequest, current: Deployment | None) -> str | None:
    """Why `request` may not replace `current`, or None. Pure: the service workflow's
    update validator runs it against its own state.

    By hand: a heuristic needs a valid name; a checkpoint (or a search over one) needs a
    location; a checkpoint or a search needs a positive margin over the best heuristic on
    its held-out evaluation, unless forced.
    Automatically (`auto`): checkpoints only, never forced; eligible, and better than what
    is deployed on the same episodes: a deployed checkpoint evaluated on the same seeds
    (same workload, objective, seed and episode count) with a smaller margin, or a
    deployed heuristic that is in this evaluation's league with a lower value. Anything
    evaluated elsewhere is not comparable, so it stays until an operator decides."""
    wanted = request.deployment
    what = f"{wanted.kind} {wanted.policy!r}"
    if wanted.kind == "heuristic":
        problem = heuristic_problem(wanted.policy)
        if problem is None and request.auto:
            return "automatic deployment is for checkpoints only"
        return problem
    if wanted.kind == "search" and request.auto:
        return "automatic deployment is for checkpoints only"
    needs_location = wanted.kind == "checkpoint" or not search_needs_no_checkpoint(wanted.policy)
    if needs_location and not wanted.checkpoint:
        return f"{what} has no stored checkpoint location"
    evidence = wanted.evidence
    if evidence is None:
        if wanted.forced and not request.auto:
            return None
        return f"{what} has no held-out evaluation, so it is not eligible"
    if not evidence.eligible:
        if wanted.forced and not request.auto:
            return None
        return (
            f"{what} is not eligible: margin {evidence.margin:+.4f} over the best "
            f"heuristic {evidence.best_heuristic!r} ({evidence.best_heuristic_score:.4f}) on its held-out "
            f"evaluation ({evidence.objective}); it must be > 0 (force: true deploys it anyway)"
        )
    if not request.auto or current is None:
        return None
    if current.policy == wanted.policy:
        return f"checkpoint {wanted.policy!r} is already deployed for {wanted.policy_class!r}"
    if current.kind == "heuristic":
        value = evidence.league.get(current.policy)
        if value is None:
            return (
                f"the deployed heuristic {current.policy!r} was not in this evaluation's league; "
                "not comparable on the same seeds"
            )
        if evidence.ppo_value <= value:
            return f"does not beat the deployed heuristic {current.policy!r} ({value:.4f})"
        return None
    held = current.evidence
    if held is None or held.seeds_key() != evidence.seeds_key():
        return (
            f"the deployed checkpoint {current.policy!r} was evaluated on other seeds; "
            "not comparable, an operator decides"
        )
    if evidence.margin <= held.margin:
        return (
            f"margin {evidence.margin:+.4f} does not beat the deployed checkpoint {current.policy!r} "
            f"({held.margin:+.4f}) on the same seeds"
        )
    return None


class SchedulerServiceInput(Model):
    """Input of SchedulerServiceWorkflow (optional: the app starts it without one)."""

    continue_as_new_every: int = Field(
        200,
        ge=1,
        le=1_500,
        description="Plans per run before continue-as-new (the server caps updates per run).",
    )
    deployments: dict[str, Deployment] = Field(
        default_factory=dict, description="Carried over continue-as-new; callers leave it empty."
    )
    first_run_share: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description="The first run continues as new after this share of its budget (plans and "
        "history bytes); later runs use all of it. Instance i of n starts with (i+1)/n, so "
        "instances that receive plans in turn hand over one at a time, not all at once.",
    )


def scheduler_service_start(instance: int, instances: int) -> SchedulerServiceInput:
    """What instance `instance` of `instances` starts with when the first plan or
    deployment reaches it: its first run hands over at (instance+1)/instances of the
    budget, which keeps the instances' later hand-overs apart too (plans reach them in
    turn, so they fill at the same rate)."""
    return SchedulerServiceInput(first_run_share=(instance + 1) / max(instances, 1))
