"""The workload a run trains and evaluates on, or a plan draws a synthetic cluster from,
and the PPO parameters a user may set."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator, model_validator

from worker.contracts.ids import (
    MAX_JOBS,
    SWF_WORKLOAD_PREFIX,
    Model,
    StrictCount,
    StrictNum,
    swf_path_problem,
)
from worker.contracts.names import TRACE_WORKLOADS, WORKLOAD_PRESETS, heuristic_problem
from worker.contracts.search import SearchOptions


class WorkloadConfig(Model):
    """A workload to draw scenarios from: a synthetic preset or a trace, and its size."""

    name: str = Field("steady", examples=["steady", "trace:alibaba-default:train"])
    nodes: StrictCount = Field(16, ge=1, le=512, description="Cluster size (nodes).")
    load: StrictNum | None = Field(
        None, ge=0.01, le=10, description="Offered load; null = the preset's default or the trace's own."
    )
    window: StrictCount = Field(
        32, ge=1, le=256, description="Waiting jobs the policy sees per decision (K)."
    )
    jobs: StrictCount = Field(400, ge=1, le=MAX_JOBS, description="Jobs per episode.")

    @field_validator("name")
    @classmethod
    def _known_workload(cls, name: str) -> str:
        if name.startswith(SWF_WORKLOAD_PREFIX):
            if (problem := swf_path_problem(name[len(SWF_WORKLOAD_PREFIX) :])) is not None:
                raise ValueError(problem)
            return name
        if name in WORKLOAD_PRESETS or name in TRACE_WORKLOADS:
            return name
        choices = ", ".join((*WORKLOAD_PRESETS, *TRACE_WORKLOADS, "trace:swf:PATH"))
        raise ValueError(f"unknown workload {name!r}; choose one of {choices}")

    @model_validator(mode="after")
    def _fixed_shape_traces(self) -> WorkloadConfig:
        """Refused at the request: the simulator would refuse these shapes only when the run
        draws its first episode, minutes after the request was accepted."""
        if self.name == "trace:lublin-1" and (self.nodes != 1 or self.load is not None):
            raise ValueError(
                "trace:lublin-1 is RLScheduler's setting (one pool of 256 processors, the trace's own "
                "arrivals): use nodes=1 and no load, or trace:swf:swf/lublin_256.swf for other shapes"
            )
        if self.name == "trace:openb-inflation" and self.load is not None:
            raise ValueError(
                "trace:openb-inflation has no time axis (pods arrive until 1.3x capacity): use no load"
            )
        return self


SEARCH_PREFIX = "search:"


class DistillParams(Model):
    """Expert iteration: each round first labels training episodes with a search, then PPO
    also imitates it (worker/rl/labels.py, worker/rl/distill.py)."""

    search: str = Field(
        "search:tuned",
        max_length=100,
        description="The search that labels round 1: search:<heuristic or tuned>. From round 2 on "
        "the search runs over the round's own checkpoint, unless `pin` keeps this one.",
    )
    pin: bool = Field(
        False,
        strict=True,
        description="Label every round with `search` as given, instead of searching over the run's "
        "latest checkpoint once it has one.",
    )
    weight: StrictNum = Field(
        1.0,
        gt=0,
        le=100,
        description="Weight of the imitation term in PPO's loss (1 weighs it like PPO's policy loss); "
        "leave the block out for plain PPO.",
    )
    episodes_per_round: StrictCount = Field(
        8, ge=1, le=1_000, description="Training episodes labelled per round."
    )
    options: SearchOptions = Field(
        default_factory=SearchOptions, description="The labelling search's options."
    )
    gate: bool = Field(
        True,
        strict=True,
        description="Keep a round's checkpoint as the run's current policy (what the next round "
        "resumes from and searches over) only if it scores at least as well as the current one on "
        "training-side validation episodes (AlphaGo Zero's gate). A rejected round is still "
        "evaluated, stored and offered for deployment like any other.",
    )
    validation_episodes: StrictCount = Field(
        8, ge=1, le=200, description="Validation episodes the gate plays per round (with `gate`)."
    )

    @field_validator("search")
    @classmethod
    def _known_search(cls, name: str) -> str:
        if not name.startswith(SEARCH_PREFIX):
            raise ValueError(f"a labelling search is named search:<heuristic or tuned>, not {name!r}")
        base = name.removeprefix(SEARCH_PREFIX)
        if base != "tuned" and (problem := heuristic_problem(base, "search base")) is not None:
            raise ValueError(problem)
        return name


class PPOParams(Model):
    """PPO hyper-parameters a user may set; the rest keep worker/rl/config.py's defaults."""

    lr: StrictNum = Field(5e-4, ge=1e-7, le=0.1)
    gamma: StrictNum = Field(0.995, ge=0.5, le=1)
    lambda_: StrictNum = Field(0.95, ge=0, le=1)
    entropy_coeff: StrictNum = Field(0.003, ge=0, le=1)
    clip_param: StrictNum = Field(0.2, ge=0.01, le=1)
    train_batch_size: StrictCount = Field(4096, ge=64, le=200_000)
    minibatch_size: StrictCount = Field(1024, ge=16, le=200_000)
    num_epochs: StrictCount = Field(2, ge=1, le=50)
    num_envs_per_env_runner: StrictCount = Field(128, ge=1, le=256)
    embed_dim: StrictCount = Field(32, ge=4, le=512)
    hidden: StrictCount = Field(32, ge=4, le=1024)
    warm_start: str | None = Field(
        None,
        max_length=100,
        description="Clone this heuristic (e.g. 'tuned', 'easy:sjf+fastest') into the policy "
        "before PPO starts.",
    )
    warm_start_episodes: StrictCount = Field(16, ge=1, le=500)
    prior: str | None = Field(
        None,
        max_length=100,
        description="Teacher heuristic (e.g. 'tuned'): the policy learns a correction to its "
        "choices, starting as the teacher (residual policy).",
    )
    prior_weight: StrictNum = Field(3.0, ge=0, le=50, description="Initial weight of the teacher's choice.")
    distill: DistillParams | None = Field(
        None, description="Expert iteration: label with a search each round and imitate it (None: plain PPO)."
    )

    @field_validator("warm_start", "prior")
    @classmethod
    def _known_teacher(cls, name: str | None, info: ValidationInfo) -> str | None:
        if name is None or name == "tuned":
            return name
        if (problem := heuristic_problem(name, f"{info.field_name} teacher")) is not None:
            raise ValueError(problem)
        return name

    @model_validator(mode="after")
    def _minibatch_fits_batch(self) -> PPOParams:
        if self.minibatch_size > self.train_batch_size:
            raise ValueError("minibatch_size must not exceed train_batch_size")
        return self
