"""Deploying a search: the held-out league it is measured on, the workflow that measures
it and then deploys it, and what comes back.

A checkpoint brings its evidence from its training round; a search has none, so `PUT
/policy/{class}` starts SearchDeploymentWorkflow (worker/workflows/search_deployment.py):
it plays the held-out league of the class's workload with the search as one more row
(the episodes a training run's evaluation uses: evaluation_workload and evaluation_seed
of the same settings), then deploys the search only when it beat the best heuristic
there, under the rule a checkpoint passes (deploy_problem), unless forced.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError, field_validator

from worker.contracts.deployment import Deployment, DeployRequest, EvaluationEvidence
from worker.contracts.evaluation import EvaluationResult
from worker.contracts.ids import Model, Seed, StrictCount, checked, location_problem, search_problem
from worker.contracts.names import DEFAULT_POLICY_CLASS, Objective
from worker.contracts.search import SearchOptions
from worker.contracts.workloads import WorkloadConfig


class HeldOutLeague(Model):
    """Which held-out league a search is measured on, named by the settings that decide a
    training run's evaluation (POST /training-runs), so a search and that run's checkpoints
    are measured on the same episodes and their margins compare."""

    workload: WorkloadConfig | None = Field(
        None,
        description="The workload (a `:train` trace is measured on its `:heldout` split); null: "
        "the workload the class is named after, the default workload for class `default`.",
    )
    objective: Objective = "deadline"
    eval_episodes: StrictCount = Field(5, ge=1, le=200, description="Held-out episodes.")
    seed: Seed = Field(0, description="A run's seed: the held-out episodes are its evaluation's.")


def class_workload(policy_class: str) -> WorkloadConfig | None:
    """The workload a class is named after with its default size (`default`: the default
    workload, as a run that names no workload trains on), or None for any other name."""
    if policy_class == DEFAULT_POLICY_CLASS:
        return WorkloadConfig()
    try:
        return WorkloadConfig(name=policy_class)
    except ValidationError:
        return None


class EvaluateSearchInput(Model):
    """Input of the evaluate_search activity: a search and the held-out episodes it plays."""

    policy: str
    """`search:<heuristic, tuned or checkpoint id>`."""
    checkpoint: str | None = None
    """A checkpoint base's location."""
    options: SearchOptions | None = None
    workload: WorkloadConfig
    """The evaluation workload (held out), its window the one plans will use."""
    episodes: StrictCount = Field(5, ge=1, le=1_000)
    seed: Seed = 0
    """The evaluation seed itself (evaluation_seed of the run seed)."""
    objective: Objective = "deadline"

    @field_validator("policy")
    @classmethod
    def _a_search(cls, name: str) -> str:
        return checked(search_problem(name), name)

    @field_validator("checkpoint")
    @classmethod
    def _safe_location(cls, location: str | None) -> str | None:
        return location if location is None else checked(location_problem(location, "checkpoint"), location)


class SearchDeploymentInput(Model):
    """Input of SearchDeploymentWorkflow."""

    deployment: Deployment
    """The search to deploy, without evidence yet."""
    evaluation: EvaluateSearchInput
    force: bool = False
    """Deploy it even if it does not beat the best heuristic (marked forced)."""
    instances: StrictCount = Field(1, ge=1, le=64)
    """Scheduler service instances the deployment goes to (the app's setting)."""


class DeployPolicyInput(Model):
    """Input of the deploy_policy activity: the deploy update for every service instance
    of the activity's own inference queue; `update_id` makes a retried attempt a no-op."""

    request: DeployRequest
    instances: StrictCount = Field(1, ge=1, le=64)
    update_id: str


SearchDeploymentStatus = Literal["evaluating", "deployed", "refused", "failed"]


class SearchDeploymentResult(Model):
    """What SearchDeploymentWorkflow returns: deployed (the deployment as it landed), or
    refused with why (the measured margin)."""

    status: Literal["deployed", "refused"]
    deployment: Deployment
    """With its measured evidence."""
    previous: Deployment | None = None
    detail: str | None = None
    """Why it was refused."""
    evaluation: EvaluationResult
    """The whole held-out league (the search's row is `ppo`)."""


def search_evidence(input: EvaluateSearchInput, result: EvaluationResult) -> EvaluationEvidence:
    """The evidence a measured search deploys with, comparable with a checkpoint's from a
    run with the same workload, objective, seed and episodes."""
    return EvaluationEvidence(
        workload=input.workload,
        objective=input.objective,
        seed=input.seed,
        episodes=input.episodes,
        ppo_value=result.ppo.score if result.ppo_value is None else result.ppo_value,
        best_heuristic=result.best_heuristic,
        best_heuristic_score=result.best_heuristic_score,
        margin=result.gain,
        league=result.heuristic_values or {m.policy: m.score for m in result.heuristics},
    )
