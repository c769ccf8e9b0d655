"""What the app and the worker agree on: task queues, workflow names, and every payload
that crosses Temporal (pydantic models, sent with temporalio's pydantic data converter).

This module is the only bridge between `app/` and `worker/`: it imports pydantic and the
standard library only, never numpy, ray, torch or the simulator, so the API process and
Temporal's workflow sandbox can both load it cheaply.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TRAINING_TASK_QUEUE = "rl-training"
"""Long, CPU-heavy work: at most one training activity per worker process."""
INFERENCE_TASK_QUEUE = "rl-inference"
"""Short work (plans, scenario generation): never stuck behind training. Evaluation runs on
the training queue: it takes seconds of CPU and reads the checkpoint training just wrote."""

TRAINING_LOOP_WORKFLOW = "TrainingLoopWorkflow"
SCHEDULER_WORKFLOW = "SchedulerWorkflow"
SMOKE_WORKFLOW = "SmokeWorkflow"

SCHEDULER_SERVICE_WORKFLOW = "SchedulerServiceWorkflow"
"""A long-lived workflow on the inference queue answering synchronous plans as updates
(worker/workflows/scheduler_service.py): one workflow task per plan instead of a
workflow start, a task and a result."""
PLAN_UPDATE = "plan"
"""SchedulerServiceWorkflow's update: PlanInput -> PlanOutput."""
SCHEDULER_SERVICE_ID = "scheduler-service"
"""Prefix of the service workflow's well-known id; see scheduler_service_id()."""
SCHEDULER_RESTARTING = "SchedulerRestarting"
"""Error type with which the service workflow's validator rejects a plan while it drains
before continue-as-new: nothing ran and nothing was written, so the caller sends it again."""


def scheduler_service_id(task_queue: str, instance: int = 0) -> str:
    """Service workflows are per inference queue (prefixed queues, as in tests and
    side-by-side deployments, get their own); instance 0 is `scheduler-service-<queue>`,
    further instances (the app may spread plans over several) add `-<n>`."""
    base = f"{SCHEDULER_SERVICE_ID}-{task_queue}"
    return base if instance == 0 else f"{base}-{instance}"


WORKLOAD_PRESETS = ("seed-demo", "steady", "bursty", "deadline-tight", "node-failures")
"""Synthetic presets of worker/sim/workloads.py (a test keeps the two lists equal)."""
TRACE_WORKLOADS = (
    "trace:alibaba-default",
    "trace:alibaba-default:train",
    "trace:alibaba-default:heldout",
    "trace:alibaba-gpuspec33",
    "trace:alibaba-multigpu50",
)
HEURISTIC_POLICIES = ("fifo", "sjf", "edf", "priority", "packing", "random")
KNOWN_GPU_SPEEDS = {"p5": 1.0, "p4": 0.6}
"""GPU types a node may name without giving `gpu_speed` for them."""

MAX_NODES = 2_000
MAX_JOBS = 10_000


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkloadConfig(Model):
    """A workload to draw scenarios from: a synthetic preset or a trace, and its size."""

    name: str = Field("steady", examples=["steady", "trace:alibaba-default:train"])
    nodes: int = Field(16, ge=1, le=512, description="Cluster size (nodes).")
    load: float | None = Field(
        None, gt=0, le=10, description="Offered load; null = the preset's default or the trace's own."
    )
    window: int = Field(32, ge=1, le=256, description="Waiting jobs the policy sees per decision (K).")
    jobs: int = Field(400, ge=1, le=MAX_JOBS, description="Jobs per episode.")

    @field_validator("name")
    @classmethod
    def _known_workload(cls, name: str) -> str:
        if name in WORKLOAD_PRESETS or name in TRACE_WORKLOADS or name.startswith("trace:swf:"):
            return name
        choices = ", ".join((*WORKLOAD_PRESETS, *TRACE_WORKLOADS, "trace:swf:PATH"))
        raise ValueError(f"unknown workload {name!r}; choose one of {choices}")


class PPOParams(Model):
    """PPO hyper-parameters a user may set; the rest keep worker/rl/config.py's defaults."""

    lr: float = Field(5e-4, gt=0, le=0.1)
    gamma: float = Field(0.995, gt=0, le=1)
    lambda_: float = Field(0.95, ge=0, le=1)
    entropy_coeff: float = Field(0.003, ge=0, le=1)
    clip_param: float = Field(0.2, gt=0, le=1)
    train_batch_size: int = Field(4096, ge=64, le=200_000)
    minibatch_size: int = Field(1024, ge=16, le=200_000)
    num_epochs: int = Field(2, ge=1, le=50)
    num_envs_per_env_runner: int = Field(128, ge=1, le=256)
    embed_dim: int = Field(32, ge=4, le=512)
    hidden: int = Field(32, ge=4, le=1024)

    @model_validator(mode="after")
    def _minibatch_fits_batch(self) -> PPOParams:
        if self.minibatch_size > self.train_batch_size:
            raise ValueError("minibatch_size must not exceed train_batch_size")
        return self


class TrainingRunConfig(Model):
    """Input of TrainingLoopWorkflow."""

    run_id: str
    name: str | None = None
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    ppo: PPOParams = Field(default_factory=PPOParams)
    iterations_per_round: int = Field(5, ge=1, le=10_000)
    max_rounds: int | None = Field(3, ge=1, description="null = until stopped.")
    eval_episodes: int = Field(5, ge=1, le=200)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    resume_from: str | None = Field(None, description="Checkpoint location to start from.")
    checkpoint_dir: str | None = Field(
        None, description="Where this run's checkpoints go; default <artifact store>/<run_id>."
    )
    checkpoint_every: int = Field(
        1, ge=1, le=10_000, description="Checkpoint (and heartbeat it) every this many iterations."
    )
    heartbeat_timeout_s: float = Field(
        120.0, ge=1, le=3600, description="A training attempt silent this long is retried elsewhere."
    )
    continue_as_new_every: int = Field(
        25, ge=1, le=10_000, description="Rounds per workflow run before continue-as-new."
    )
    state: TrainingProgress | None = Field(
        None, description="Set by the workflow itself on continue-as-new; callers leave it empty."
    )


class ScenarioSummary(Model):
    """What generate_scenario found: the workload is valid and this is its shape."""

    workload: str
    seed: int
    nodes: int
    jobs: int
    gpus: dict[str, float] = Field(default_factory=dict)
    cpus: float = 0.0
    horizon_s: float = 0.0


class IterationProgress(Model):
    """One PPO iteration, as heartbeated by the training activity."""

    iteration: int
    iterations_in_round: int = 0
    env_steps: int = 0
    env_steps_per_second: float | None = None
    episode_return_mean: float | None = None
    episode_score_mean: float | None = None
    policy_loss: float | None = None
    vf_loss: float | None = None
    entropy: float | None = None
    kl: float | None = None
    checkpoint: str | None = None
    """Set when this iteration was checkpointed: the newest resumable state."""


class TrainingHeartbeat(Model):
    """Heartbeat details of the training activity: a retried attempt resumes from
    `checkpoint` instead of starting the round over."""

    round: int
    progress: IterationProgress | None = None
    checkpoint: str | None = None
    iterations_done: int = 0


class TrainRoundInput(Model):
    run_id: str
    round: int
    config: TrainingRunConfig
    resume_from: str | None = None
    output_dir: str


class TrainRoundOutput(Model):
    checkpoint: str
    iteration: int
    env_steps: int
    elapsed_s: float
    last: IterationProgress | None = None


class StoreCheckpointInput(Model):
    """A finished round's checkpoint (a path on the training worker) to record in the
    artifact store; `output_dir` is the location the round was trained into."""

    run_id: str
    round: int
    checkpoint: str
    output_dir: str
    summary: RoundSummary | None = None


class StoredCheckpoint(Model):
    checkpoint: str
    """Where the checkpoint now lives (a path, or a URI for a non-local artifact store)."""
    uploaded: bool = False


class PlanMetrics(Model):
    """Metrics of one simulated episode or plan (see worker/sim/metrics.py)."""

    score: float
    mean_bounded_slowdown: float
    p95_bounded_slowdown: float
    mean_wait: float
    gpu_utilization: float
    cpu_utilization: float
    makespan: float
    jobs_finished: int
    deadline_misses: int
    unschedulable: int


class PolicyMetrics(PlanMetrics):
    """A policy's metrics averaged over evaluation episodes: counts become means."""

    policy: str
    jobs_finished: float
    deadline_misses: float = 0.0
    unschedulable: float = 0.0


class EvaluateInput(Model):
    checkpoint: str
    workload: WorkloadConfig
    episodes: int = Field(5, ge=1)
    seed: int = 0


class EvaluationResult(Model):
    ppo: PolicyMetrics
    heuristics: list[PolicyMetrics]
    best_heuristic: str
    best_heuristic_score: float
    gain: float
    """PPO score minus the best heuristic's score on the same episodes."""


class RoundSummary(Model):
    round: int
    checkpoint: str
    iteration: int
    env_steps: int
    episode_return_mean: float | None = None
    score: float
    best_heuristic: str
    best_heuristic_score: float
    gain: float
    heuristic_scores: dict[str, float] = Field(default_factory=dict)
    evaluation: EvaluationResult | None = None
    finished_at: datetime | None = None


RunStatus = Literal["running", "stopping", "completed", "failed", "cancelled"]


class TrainingProgress(Model):
    """Answer of the `progress` query, and the carried-over state on continue-as-new."""

    run_id: str
    status: Literal["running", "stopping", "completed"] = "running"
    rounds_done: int = 0
    current_round: int | None = None
    rounds: list[RoundSummary] = Field(default_factory=list)
    best_checkpoint: str | None = None
    best_score: float | None = None
    latest_checkpoint: str | None = None
    stop_reason: str | None = None


class StopRequest(Model):
    reason: str | None = Field(None, max_length=500)


class StopResult(Model):
    status: Literal["stopping"] = "stopping"
    rounds_done: int


class NodeSpec(Model):
    """A node as a user describes a real cluster."""

    id: str = Field(min_length=1, max_length=200)
    cpus: float = Field(gt=0, le=100_000)
    memory_gb: float = Field(0.0, ge=0, le=1e7)
    gpus: dict[str, float] = Field(default_factory=dict, examples=[{"p5": 8}])
    gpu_speed: dict[str, float] | None = Field(None, examples=[{"p5": 1.0}])
    status: Literal["OK", "BUSY", "DOWN"] = "OK"

    @model_validator(mode="after")
    def _gpus_valid(self) -> NodeSpec:
        for gpu_type, count in self.gpus.items():
            if not 0 <= count <= 1024:
                raise ValueError(f"node {self.id}: gpus[{gpu_type!r}] must be between 0 and 1024")
            known = gpu_type in KNOWN_GPU_SPEEDS or gpu_type in (self.gpu_speed or {})
            if not known:
                raise ValueError(
                    f"node {self.id}: unknown GPU type {gpu_type!r}; known types are "
                    f"{', '.join(KNOWN_GPU_SPEEDS)}, or give its relative speed in gpu_speed"
                )
        for gpu_type, speed in (self.gpu_speed or {}).items():
            if not 0 < speed <= 100:
                raise ValueError(f"node {self.id}: gpu_speed[{gpu_type!r}] must be in (0, 100]")
        return self


class JobSpec(Model):
    """A pending job; times are seconds from now."""

    id: str = Field(min_length=1, max_length=200)
    cpus: float = Field(1.0, gt=0, le=100_000)
    memory_gb: float = Field(0.0, ge=0, le=1e7)
    gpus: float = Field(0.0, ge=0, le=1024)
    gpu_types: list[str] | None = Field(None, description="Allowed GPU types; null = any.")
    priority: int = Field(2, ge=1, le=3)
    runtime_estimate_s: float = Field(gt=0, le=1e8)
    deadline_s: float | None = Field(None, gt=0, le=1e9)
    submit_s: float = Field(0.0, ge=0, le=1e9, description="Arrives this many seconds from now.")


class SyntheticSpec(Model):
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    seed: int = Field(0, ge=0, le=2**31 - 1)


class PolicyRef(Model):
    """The policy a plan uses, as the worker needs it: a checkpoint location or a name."""

    kind: Literal["checkpoint", "heuristic"]
    name: str
    checkpoint: str | None = None


class PlanInput(Model):
    """Input of SchedulerWorkflow (and of the plan activity)."""

    nodes: list[NodeSpec] | None = Field(None, max_length=MAX_NODES)
    jobs: list[JobSpec] | None = Field(None, max_length=MAX_JOBS)
    synthetic: SyntheticSpec | None = None
    policy: PolicyRef
    baseline: str | None = "edf"
    """Heuristic planned alongside for comparison; None skips it (half the plan's cost)."""
    window: int = Field(32, ge=1, le=256)
    timeout_s: float | None = Field(None, gt=0, le=3600)
    """How long the caller waits (the API's RLSCHED_SCHEDULE_TIMEOUT_S): the worker gives up
    on the plan after this long instead of computing an answer nobody reads."""

    @model_validator(mode="after")
    def _one_source(self) -> PlanInput:
        if self.synthetic is None and (self.nodes is None or self.jobs is None):
            raise ValueError("give either nodes and jobs, or synthetic")
        if self.synthetic is not None and (self.nodes or self.jobs):
            raise ValueError("give either nodes and jobs, or synthetic, not both")
        return self


def plan_input_problem(input: PlanInput) -> str | None:
    """Why a PlanInput that passed its own validation still cannot be planned (unknown
    baseline or heuristic, a checkpoint policy without a location), or None. Pure and
    cheap, so the service workflow's update validator can reject such input before
    anything is written to history; the plan activity raises the same messages."""
    if input.baseline is not None and input.baseline not in HEURISTIC_POLICIES:
        return f"unknown baseline {input.baseline!r}; choose one of {', '.join(HEURISTIC_POLICIES)}"
    if input.policy.kind == "heuristic" and input.policy.name not in HEURISTIC_POLICIES:
        return f"unknown heuristic {input.policy.name!r}; choose one of {', '.join(HEURISTIC_POLICIES)}"
    if input.policy.kind == "checkpoint" and not input.policy.checkpoint:
        return f"policy {input.policy.name!r} is a checkpoint policy but names no checkpoint"
    return None


class SchedulerServiceInput(Model):
    """Input of SchedulerServiceWorkflow (optional: the app starts it without one)."""

    continue_as_new_every: int = Field(
        200,
        ge=1,
        le=1_500,
        description="Plans per run before continue-as-new (the server caps updates per run).",
    )


class PlacementOut(Model):
    job_id: str
    node_id: str
    gpu_type: str | None
    start_s: float
    finish_s: float
    meets_deadline: bool


class UnplacedOut(Model):
    job_id: str
    reason: str


class BaselineOut(Model):
    policy: str
    metrics: PlanMetrics


class PlanOutput(Model):
    policy: str
    checkpoint: str | None = None
    placements: list[PlacementOut]
    unplaced: list[UnplacedOut]
    metrics: PlanMetrics
    baseline: BaselineOut | None = None
    elapsed_ms: float = 0.0


class SmokeInput(Model):
    workload: WorkloadConfig = Field(
        default_factory=lambda: WorkloadConfig(name="seed-demo", nodes=4, window=8, jobs=40)
    )
    iterations: int = Field(1, ge=1, le=100)
    seed: int = 0
    output_dir: str | None = None
    ppo: PPOParams = Field(
        default_factory=lambda: PPOParams(
            train_batch_size=256, minibatch_size=128, num_epochs=1, num_envs_per_env_runner=4
        )
    )


class SmokeReport(Model):
    nodes: int
    jobs: int
    checkpoint: str
    iterations: int
    env_steps: int
    placed: int
    unplaced: int
    score: float
    baseline_score: float
    elapsed_s: float


TrainingRunConfig.model_rebuild()
StoreCheckpointInput.model_rebuild()
