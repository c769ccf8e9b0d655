"""What the app and the worker agree on: task queues, workflow names, and every payload
that crosses Temporal (pydantic models, sent with temporalio's pydantic data converter).

This module is the only bridge between `app/` and `worker/`: it imports pydantic and the
standard library only, never numpy, ray, torch or the simulator, so the API process and
Temporal's workflow sandbox can both load it cheaply. The one exception is opening the
artifact store (`open_artifact_store`), which both processes must do identically from
the same settings; it imports pyarrow inside the function, never at module load.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationInfo, field_validator, model_validator

from worker.codec import DATA_CONVERTER as DATA_CONVERTER  # what the app's client must use

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
DEPLOY_UPDATE = "deploy"
"""SchedulerServiceWorkflow's update: DeployRequest -> DeployResult (validator: deploy_problem)."""
DEPLOYMENTS_QUERY = "deployments"
"""SchedulerServiceWorkflow's query: the deployed policy per workload class (Deployments)."""
DEFAULT_POLICY_CLASS = "default"
"""The class of a plan request that names none, and of `PUT /policy/default`."""
DEPLOY_REJECTED = "DeployRejected"
"""Error type with which the deploy validator refuses a deployment (the app answers 409)."""
SCHEDULER_RESTARTING = "SchedulerRestarting"
"""Error type with which the service workflow's validator rejects a plan while it drains
before continue-as-new: nothing ran and nothing was written, so the caller sends it again."""


def scheduler_service_id(task_queue: str, instance: int = 0) -> str:
    """Service workflows are per inference queue (prefixed queues, as in tests and
    side-by-side deployments, get their own); instance 0 is `scheduler-service-<queue>`,
    further instances (the app may spread plans over several) add `-<n>`."""
    base = f"{SCHEDULER_SERVICE_ID}-{task_queue}"
    return base if instance == 0 else f"{base}-{instance}"


def scheduler_service_start(instance: int, instances: int) -> SchedulerServiceInput:
    """What instance `instance` of `instances` starts with when the first plan or
    deployment reaches it: its first run hands over at (instance+1)/instances of the
    budget, which keeps the instances' later hand-overs apart too (plans reach them in
    turn, so they fill at the same rate)."""
    return SchedulerServiceInput(first_run_share=(instance + 1) / max(instances, 1))


TRAINING_SCHEDULE_PREFIX = "training-schedule-"
"""Id of a training schedule on Temporal (`training-schedule-<id>`), which is also the
workflow id of its action: Temporal starts each fired run as `<that id>-<RFC 3339 time>`."""
SCHEDULE_RUN_MEMO = "rlsched_run"
"""Memo key, on a schedule's action and so on every run it fires, holding the run's
POST /training-runs body: the app indexes a fired run from it like a run it started."""
SCHEDULE_ID_MEMO = "rlsched_schedule_id"
"""Memo key with the app's schedule id, next to SCHEDULE_RUN_MEMO."""
_SCHEDULED_WORKFLOW_ID = re.compile(
    re.escape(TRAINING_SCHEDULE_PREFIX)
    + r"(?P<schedule>[A-Za-z0-9]+)-(?P<at>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"
)


def training_schedule_id(schedule_id: str) -> str:
    return f"{TRAINING_SCHEDULE_PREFIX}{schedule_id}"


def scheduled_run_id(workflow_id: str) -> str:
    """The run id of a run a schedule fired, derived from its workflow id alone, so the
    workflow (TrainingRunConfig.run_id empty) and the app's reconciler agree on it without
    talking: `training-schedule-abc-2026-11-24T03:00:00Z` -> `abc-20261124T030000Z`. Any
    other workflow id (started by hand with an empty run id) gets a hash of it."""
    match = _SCHEDULED_WORKFLOW_ID.fullmatch(workflow_id)
    if match is not None:
        return f"{match['schedule']}-{match['at'].replace('-', '').replace(':', '')}"
    return hashlib.sha256(workflow_id.encode()).hexdigest()[:12]


WORKLOAD_PRESETS = ("seed-demo", "steady", "bursty", "deadline-tight", "node-failures")
"""Synthetic presets of worker/sim/workloads.py (a test keeps the two lists equal)."""
TRACE_WORKLOADS = (
    "trace:alibaba-default",
    "trace:alibaba-default:train",
    "trace:alibaba-default:heldout",
    "trace:alibaba-gpuspec33",
    "trace:alibaba-multigpu50",
    "trace:lublin-1",
    "trace:openb-inflation",
)
OBJECTIVES = ("deadline", "slowdown", "utilization", "allocation")
"""What a training run optimises (worker/sim/objectives.py); `deadline` is the headline score."""
Objective = Literal["deadline", "slowdown", "utilization", "allocation"]
HEURISTIC_POLICIES = ("fifo", "sjf", "edf", "priority", "packing", "random")
"""The first release's heuristics; every composed name below is accepted as well."""
HEURISTIC_ORDERS = ("fifo", "sjf", "edf", "priority", "laxity", "f1", "wfp3", "unicep", "sgt")
HEURISTIC_PLACEMENTS = ("first", "fastest", "deadline", "bestfit", "fgd", "least", "most")
HEURISTIC_MODES = {"greedy": "", "easy": "easy:", "strict": "strict:"}
STANDALONE_HEURISTICS = ("packing", "random")
HEURISTIC_GRAMMAR = "[easy:|strict:]ORDER[+PLACEMENT]"
"""Orders, placements and modes of worker/sim/heuristics (a test keeps them equal)."""


def parse_heuristic(name: str) -> tuple[str, str, str]:
    """(mode, order, placement) of a composed heuristic name such as `easy:sjf+deadline`;
    raises ValueError saying what exists. `packing` and `random` are not compositions."""
    text = name.strip()
    mode = "greedy"
    for candidate, prefix in HEURISTIC_MODES.items():
        if prefix and text.startswith(prefix):
            mode, text = candidate, text[len(prefix) :]
    order, _, placement = text.partition("+")
    placement = placement or "first"
    if not order or "+" in placement or ":" in text:
        raise ValueError(
            f"malformed heuristic name {name!r}: expected {HEURISTIC_GRAMMAR}, e.g. easy:sjf+deadline"
        )
    if order not in HEURISTIC_ORDERS:
        raise ValueError(f"unknown order {order!r}; orders: {', '.join(HEURISTIC_ORDERS)}")
    if placement not in HEURISTIC_PLACEMENTS:
        raise ValueError(f"unknown placement {placement!r}; placements: {', '.join(HEURISTIC_PLACEMENTS)}")
    return mode, order, placement


def heuristic_problem(name: str, role: str = "heuristic") -> str | None:
    """Why `name` is not a heuristic a plan can use, or None; `role` names it in the message."""
    if name in STANDALONE_HEURISTICS:
        return None
    try:
        parse_heuristic(name)
    except ValueError as error:
        return (
            f"unknown {role} {name!r}: {error}. A heuristic is {HEURISTIC_GRAMMAR} "
            f"or one of {', '.join(STANDALONE_HEURISTICS)}"
        )
    return None


KNOWN_GPU_SPEEDS = {"p5": 1.0, "p4": 0.6}
"""GPU types a node may name without giving `gpu_speed` for them."""

SWF_WORKLOAD_PREFIX = "trace:swf:"
_SWF_PATH = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


def swf_path_problem(path: str) -> str | None:
    """Why a client's `trace:swf:PATH` may not be opened, or None. Clients name files
    under the worker's traces directory only: no absolute paths, no `..`, plain names, so
    an id from a request never reaches an arbitrary file (the worker resolves it there)."""
    parts = path.split("/")
    if not _SWF_PATH.fullmatch(path) or any(p in ("", ".", "..") for p in parts):
        return (
            f"trace:swf:{path!r} must name a file under the traces directory by a relative path "
            "of plain names (letters, digits, '_', '-', '.'; no absolute path, no '..'), "
            "e.g. trace:swf:swf/lublin_256.swf"
        )
    return None


# --- identifiers, names and locations -------------------------------------------------
# Ids and names from clients never reach a path or a URI: they are looked up (in the
# app's index, in the deployed classes), and the locations they map to are the worker's
# own. These rules hold at the boundary (the API's request models) and again here, so a
# worker refuses the same input whoever sent it.

LABEL_PATTERN = r"^[^\x00-\x1f\x7f]*$"
"""Free text a client names things with (node and job ids, run names, stop reasons):
anything printable. Control bytes are refused: PostgreSQL text cannot hold NUL, and logs
should not carry them."""

SAFE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\.?$"
"""An id a client may send (run, checkpoint, schedule request), at most MAX_ID_LENGTH
long: letters, digits, `_`, `-` and single dots, so no `..`, `/`, `\\`, NUL or `:`
(hence no URI scheme). A pattern without look-ahead, so OpenAPI clients can use it."""
MAX_ID_LENGTH = 200
_SAFE_ID = re.compile(SAFE_ID_PATTERN)
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def id_problem(value: str, what: str = "id") -> str | None:
    """Why `value` may not be used as an id, or None."""
    if len(value) <= MAX_ID_LENGTH and _SAFE_ID.fullmatch(value):
        return None
    return (
        f"{what} {value[:100]!r} is not a valid id: 1-200 letters, digits, '_', '-' or '.', "
        "starting with a letter or digit; no '..', '/', '\\', NUL or URI scheme"
    )


_NAME_PREFIXES = ("easy", "strict", "trace")
"""The only `word:` prefixes a policy or workload name has; any other reads as a URI scheme."""


def path_like_problem(name: str, role: str = "policy") -> str | None:
    """Why `name` looks like a path or a URI (`..`, `/`, `\\`, a control byte, `scheme:`),
    or None. Such a name is refused outright wherever a policy is named, whatever else
    it could be; other unknown names get their own answer (an unknown checkpoint...)."""
    scheme = _URI_SCHEME.match(name)
    if (
        any(c in name for c in "/\\")
        or ".." in name
        or _CONTROL.search(name)
        or (scheme is not None and scheme.group(0)[:-1] not in _NAME_PREFIXES)
    ):
        return (
            f"{role} {name[:100]!r} looks like a path or a URI: a policy is a heuristic "
            f"({HEURISTIC_GRAMMAR}) or a checkpoint id (letters, digits, '_', '-', '.'), never a location"
        )
    return None


def policy_name_problem(name: str, role: str = "policy") -> str | None:
    """Why `name` is neither a heuristic nor a possible checkpoint id, or None (whether
    such a checkpoint exists is the index's question). A name with `+` or `:` that is not
    path-like was meant as a composed heuristic, so it gets the heuristic's message."""
    if heuristic_problem(name) is None or id_problem(name) is None:
        return None
    if (problem := path_like_problem(name, role)) is not None:
        return problem
    if "+" in name or ":" in name:
        return heuristic_problem(name, role)
    return id_problem(name, f"{role} (a checkpoint id)")


POLICY_CLASS_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/+-]{0,199}$"
"""A workload class: `default` or a workload name such as `steady` or `trace:alibaba-default:train`."""
_POLICY_CLASS = re.compile(POLICY_CLASS_PATTERN)


def policy_class_problem(name: str) -> str | None:
    """Why `name` is not a workload class, or None. A class is a key, never a path; `/` is
    allowed only inside a `trace:swf:PATH` class, whose path follows the SWF rule."""
    if not _POLICY_CLASS.fullmatch(name):
        return f"workload class {name[:100]!r} must match {POLICY_CLASS_PATTERN}"
    if name.startswith(SWF_WORKLOAD_PREFIX):
        return swf_path_problem(name[len(SWF_WORKLOAD_PREFIX) :])
    if ":" in name and not name.startswith("trace:"):
        return f"workload class {name[:100]!r}: only trace workloads (trace:NAME) have a ':' in their name"
    if "/" in name or ".." in name:
        return (
            f"workload class {name[:100]!r} may not contain '/' or '..' "
            "(only a trace:swf:PATH class names a path)"
        )
    return None


def location_problem(location: str, what: str = "location") -> str | None:
    """Why a storage location (a checkpoint, an output dir) may not be used, or None.
    Locations are the worker's own (relative to its artifact store, absolute paths it
    wrote, or the store's URIs); none ever needs `..`, a backslash or a control byte."""
    if not location or len(location) > 2000:
        return f"{what} must be 1-2000 characters"
    if _CONTROL.search(location) or "\\" in location:
        return f"{what} {location[:100]!r} contains a control character or a backslash"
    path = location.split("://", 1)[1] if "://" in location else location
    if ".." in path.split("/"):
        return f"{what} {location[:100]!r} may not contain '..'"
    if "://" not in location and _URI_SCHEME.match(location) and not re.match(r"^[A-Za-z]:/", location):
        return f"{what} {location[:100]!r}: a URI needs scheme://"
    return None


def _checked(problem: str | None, value: str) -> str:
    if problem is not None:
        raise ValueError(problem)
    return value


# --- numbers at the boundary -------------------------------------------------------------
# Strict: `false` or `"8"` is not a number (a JSON int is still a float). Every magnitude
# has a floor and a ceiling a plan can compute with: a node of 5e-324 CPUs or a GPU of
# speed 5e-324 makes the simulator divide by zero or overflow to inf.

StrictNum = Annotated[float, Strict()]
StrictCount = Annotated[int, Strict()]
StrictFlag = Annotated[bool, Strict()]

MIN_CPUS = 0.001
"""A millicore, the smallest CPU request Kubernetes knows."""
MAX_CPUS = 100_000
MAX_MEMORY_GB = 1e7
MIN_GPUS = 0.001
"""The smallest fractional GPU share a job may ask for (0 = no GPU)."""
MAX_GPUS = 1024
MIN_GPU_SPEED = 0.01
MAX_GPU_SPEED = 100
MIN_SECONDS = 0.001
MAX_RUNTIME_S = 1e8
MAX_TIME_S = 1e9
MAX_GPU_TYPES = 16
"""Distinct GPU types in one plan (and per node or job); each is a column of the
simulator's arrays, so the count is bounded like nodes and jobs are."""
GPU_TYPE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"
GpuType = Annotated[str, Field(pattern=GPU_TYPE_PATTERN)]
Seed = Annotated[int, Strict(), Field(ge=0, le=2**31 - 1)]

MAX_NODES = 2_000
MAX_JOBS = 10_000


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class TrainingRunConfig(Model):
    """Input of TrainingLoopWorkflow."""

    run_id: str = Field(
        description="Empty: derived from the workflow id (scheduled_run_id), as runs fired by a "
        "Temporal Schedule are, since one schedule action starts them all."
    )
    name: str | None = Field(None, max_length=200, pattern=LABEL_PATTERN)
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    objective: Objective = Field("deadline", description="What the reward pays and rounds rank by.")
    ppo: PPOParams = Field(default_factory=PPOParams)
    iterations_per_round: StrictCount = Field(5, ge=1, le=10_000)
    max_rounds: StrictCount | None = Field(3, ge=1, le=100_000, description="null = until stopped.")
    eval_episodes: StrictCount = Field(5, ge=1, le=200)
    seed: Seed = 0
    resume_from: str | None = Field(None, description="Checkpoint location to start from.")
    checkpoint_dir: str | None = Field(
        None, description="Where this run's checkpoints go; default <artifact store>/<run_id>."
    )
    checkpoint_every: StrictCount = Field(
        1, ge=1, le=10_000, description="Checkpoint (and heartbeat it) every this many iterations."
    )
    heartbeat_timeout_s: StrictNum = Field(
        120.0, ge=1, le=3600, description="A training attempt silent this long is retried elsewhere."
    )
    continue_as_new_every: StrictCount = Field(
        25, ge=1, le=10_000, description="Rounds per workflow run before continue-as-new."
    )
    state: TrainingProgress | None = Field(
        None, description="Set by the workflow itself on continue-as-new; callers leave it empty."
    )

    @field_validator("run_id")
    @classmethod
    def _safe_run_id(cls, run_id: str) -> str:
        return run_id if not run_id else _checked(id_problem(run_id, "run_id"), run_id)

    @field_validator("resume_from", "checkpoint_dir")
    @classmethod
    def _safe_location(cls, location: str | None) -> str | None:
        return location if not location else _checked(location_problem(location), location)


EVAL_SEED_OFFSET = 1_000_000_007


def evaluation_seed(run_seed: int) -> int:
    """The held-out evaluation seed of every round of a run (so rounds compare), derived
    apart from the training seeds; the app needs it for a checkpoint's evidence."""
    return (run_seed + EVAL_SEED_OFFSET) % (2**31 - 1)


def evaluation_workload(workload: WorkloadConfig) -> WorkloadConfig:
    """A `trace:NAME:train` workload is evaluated on `trace:NAME:heldout`."""
    if workload.name.startswith("trace:") and workload.name.endswith(":train"):
        return workload.model_copy(update={"name": workload.name.removesuffix(":train") + ":heldout"})
    return workload


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


HISTORY_PER_ROUND = 2_000
"""Iterations of one round carried in heartbeats and the round's output (the newest ones
when a round is longer): ~300 bytes each, well under Temporal's payload limits. The app
also stores every heartbeat's iterations as they arrive, so longer rounds lose none in
practice."""


def keep_history(history: list[IterationProgress]) -> list[IterationProgress]:
    return history[-HISTORY_PER_ROUND:]


class TrainingHeartbeat(Model):
    """Heartbeat details of the training activity: a retried attempt resumes from
    `checkpoint` instead of starting the round over."""

    round: int
    progress: IterationProgress | None = None
    checkpoint: str | None = None
    iterations_done: int = 0
    history: list[IterationProgress] = Field(default_factory=list)
    """Every iteration of this round so far (across attempts): the app indexes them live."""


class TrainRoundInput(Model):
    run_id: str
    round: int
    config: TrainingRunConfig
    resume_from: str | None = None
    output_dir: str

    @field_validator("run_id")
    @classmethod
    def _safe_run_id(cls, run_id: str) -> str:
        return _checked(id_problem(run_id, "run_id"), run_id)

    @field_validator("resume_from")
    @classmethod
    def _safe_resume(cls, location: str | None) -> str | None:
        return location if not location else _checked(location_problem(location, "resume_from"), location)

    @field_validator("output_dir")
    @classmethod
    def _safe_output(cls, location: str) -> str:
        return _checked(location_problem(location, "output_dir"), location)


class TrainRoundOutput(Model):
    checkpoint: str
    iteration: int
    env_steps: int
    elapsed_s: float
    last: IterationProgress | None = None
    history: list[IterationProgress] = Field(default_factory=list)
    """Every iteration of the round, in order (see HISTORY_PER_ROUND)."""


class StoreCheckpointInput(Model):
    """A finished round's checkpoint (a path on the training worker) to record in the
    artifact store; `output_dir` is the location the round was trained into."""

    run_id: str
    round: int
    checkpoint: str
    output_dir: str
    summary: RoundSummary | None = None

    @field_validator("run_id")
    @classmethod
    def _safe_run_id(cls, run_id: str) -> str:
        return _checked(id_problem(run_id, "run_id"), run_id)

    @field_validator("checkpoint", "output_dir")
    @classmethod
    def _safe_location(cls, location: str) -> str:
        return _checked(location_problem(location), location)


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
    episodes: StrictCount = Field(5, ge=1, le=1_000)
    seed: Seed = 0
    objective: Objective = "deadline"

    @field_validator("checkpoint")
    @classmethod
    def _safe_location(cls, location: str) -> str:
        return _checked(location_problem(location, "checkpoint"), location)


class EvaluationResult(Model):
    ppo: PolicyMetrics
    heuristics: list[PolicyMetrics]
    best_heuristic: str
    best_heuristic_score: float
    gain: float
    """PPO score minus the best heuristic's score on the same episodes."""
    bound: float | None = None
    """Empty-cluster bound of the same episodes: what no scheduler can beat."""
    gap_closed: float | None = None
    """Share of the gap between the best heuristic and the bound that PPO closes."""
    tuned_choice: str | None = None
    """What the `tuned` heuristic ran (chosen on training seeds)."""
    objective: Objective = "deadline"
    ppo_value: float | None = None
    """PPO's objective value (higher is better); `best_heuristic_score`, `gain` and `bound`
    are in the same units. For `deadline` it is the score."""
    heuristic_values: dict[str, float] = Field(default_factory=dict)


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
    iterations: list[IterationProgress] = Field(default_factory=list)
    """The round's per-iteration learner metrics; the workflow keeps them for its last
    rounds only (ITERATIONS_KEPT), by when the app has indexed them."""


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
    reason: str | None = Field(None, max_length=500, pattern=LABEL_PATTERN)


class StopResult(Model):
    status: Literal["stopping"] = "stopping"
    rounds_done: int


class NodeSpec(Model):
    """A node as a user describes a real cluster."""

    id: str = Field(min_length=1, max_length=200, pattern=LABEL_PATTERN)
    cpus: StrictNum = Field(ge=MIN_CPUS, le=MAX_CPUS)
    memory_gb: StrictNum = Field(0.0, ge=0, le=MAX_MEMORY_GB)
    gpus: dict[GpuType, StrictNum] = Field(
        default_factory=dict, max_length=MAX_GPU_TYPES, examples=[{"p5": 8}]
    )
    gpu_speed: dict[GpuType, StrictNum] | None = Field(None, max_length=MAX_GPU_TYPES, examples=[{"p5": 1.0}])
    status: Literal["OK", "BUSY", "DOWN"] = "OK"

    @model_validator(mode="after")
    def _gpus_valid(self) -> NodeSpec:
        for gpu_type, count in self.gpus.items():
            if not (count == 0 or MIN_GPUS <= count <= MAX_GPUS):
                raise ValueError(
                    f"node {self.id}: gpus[{gpu_type!r}] must be 0 or between {MIN_GPUS} and {MAX_GPUS}"
                )
            known = gpu_type in KNOWN_GPU_SPEEDS or gpu_type in (self.gpu_speed or {})
            if not known:
                raise ValueError(
                    f"node {self.id}: unknown GPU type {gpu_type!r}; known types are "
                    f"{', '.join(KNOWN_GPU_SPEEDS)}, or give its relative speed in gpu_speed"
                )
        for gpu_type, speed in (self.gpu_speed or {}).items():
            if not MIN_GPU_SPEED <= speed <= MAX_GPU_SPEED:
                raise ValueError(
                    f"node {self.id}: gpu_speed[{gpu_type!r}] must be between "
                    f"{MIN_GPU_SPEED} and {MAX_GPU_SPEED}"
                )
        return self


class JobSpec(Model):
    """A pending job; times are seconds from now."""

    id: str = Field(min_length=1, max_length=200, pattern=LABEL_PATTERN)
    cpus: StrictNum = Field(1.0, ge=MIN_CPUS, le=MAX_CPUS)
    memory_gb: StrictNum = Field(0.0, ge=0, le=MAX_MEMORY_GB)
    gpus: StrictNum = Field(0.0, ge=0, le=MAX_GPUS, description=f"0, or between {MIN_GPUS} and {MAX_GPUS}.")
    gpu_types: list[GpuType] | None = Field(
        None, max_length=MAX_GPU_TYPES, description="Allowed GPU types; null = any."
    )
    priority: StrictCount = Field(2, ge=1, le=3)
    runtime_estimate_s: StrictNum = Field(ge=MIN_SECONDS, le=MAX_RUNTIME_S)
    deadline_s: StrictNum | None = Field(None, ge=MIN_SECONDS, le=MAX_TIME_S)
    submit_s: StrictNum = Field(0.0, ge=0, le=MAX_TIME_S, description="Arrives this many seconds from now.")

    @field_validator("gpus")
    @classmethod
    def _whole_or_share(cls, gpus: float) -> float:
        if 0 < gpus < MIN_GPUS:
            raise ValueError(f"must be 0 or at least {MIN_GPUS} (a GPU share smaller than that is noise)")
        return gpus


class SyntheticSpec(Model):
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    seed: Seed = 0


def gpu_types_problem(nodes: list[NodeSpec] | None, jobs: list[JobSpec] | None) -> str | None:
    """Why a plan names too many distinct GPU types, or None."""
    types = {t for n in nodes or [] for t in (*n.gpus, *(n.gpu_speed or {}))}
    types |= {t for j in jobs or [] for t in j.gpu_types or []}
    if len(types) > MAX_GPU_TYPES:
        return f"a plan may name at most {MAX_GPU_TYPES} distinct GPU types; this one names {len(types)}"
    return None


class PolicyRef(Model):
    """The policy a plan uses, as the worker needs it: a checkpoint location or a name;
    or `deployed`: whatever the scheduler service workflow has deployed for class `name`
    when the plan runs (resolved there, so a deployment and the plans around it are
    ordered by the workflow itself), `fallback` when nothing is deployed."""

    kind: Literal["checkpoint", "heuristic", "deployed"]
    name: str
    checkpoint: str | None = None
    fallback: str | None = None
    keep_window: bool = False
    """deployed only: the request chose its window; otherwise a deployed checkpoint's
    training window is used."""

    @model_validator(mode="after")
    def _safe_names(self) -> PolicyRef:
        if self.kind == "checkpoint":
            _checked(id_problem(self.name, "checkpoint id"), self.name)
        elif self.kind == "deployed":
            _checked(policy_class_problem(self.name), self.name)
        if self.checkpoint:  # an empty one is plan_input_problem's to answer
            _checked(location_problem(self.checkpoint, "checkpoint"), self.checkpoint)
        return self


class PlanInput(Model):
    """Input of SchedulerWorkflow (and of the plan activity)."""

    nodes: list[NodeSpec] | None = Field(None, max_length=MAX_NODES)
    jobs: list[JobSpec] | None = Field(None, max_length=MAX_JOBS)
    synthetic: SyntheticSpec | None = None
    policy: PolicyRef
    baseline: str | None = "edf"
    """Heuristic planned alongside for comparison; None skips it (half the plan's cost)."""
    window: StrictCount = Field(32, ge=1, le=256)
    timeout_s: StrictNum | None = Field(None, ge=0.01, le=3600)
    """How long the caller waits (the API's RLSCHED_SCHEDULE_TIMEOUT_S): the worker gives up
    on the plan after this long instead of computing an answer nobody reads."""

    @model_validator(mode="after")
    def _one_source(self) -> PlanInput:
        if self.synthetic is None and (self.nodes is None or self.jobs is None):
            raise ValueError("give either nodes and jobs, or synthetic")
        if self.synthetic is not None and (self.nodes or self.jobs):
            raise ValueError("give either nodes and jobs, or synthetic, not both")
        if (problem := gpu_types_problem(self.nodes, self.jobs)) is not None:
            raise ValueError(problem)
        return self


def plan_input_problem(input: PlanInput) -> str | None:
    """Why a PlanInput that passed its own validation still cannot be planned (unknown
    baseline or heuristic, a checkpoint policy without a location), or None. Pure and
    cheap, so the service workflow's update validator can reject such input before
    anything is written to history; the plan activity raises the same messages."""
    if input.baseline is not None and (problem := heuristic_problem(input.baseline, "baseline")) is not None:
        return problem
    if input.policy.kind == "heuristic" and (problem := heuristic_problem(input.policy.name)) is not None:
        return problem
    fallback = input.policy.fallback if input.policy.kind == "deployed" else None
    if fallback is not None and (problem := heuristic_problem(fallback)) is not None:
        return f"fallback: {problem}"
    if input.policy.kind == "checkpoint" and not input.policy.checkpoint:
        return f"policy {input.policy.name!r} is a checkpoint policy but names no checkpoint"
    return None


class EvaluationEvidence(Model):
    """Why a checkpoint may be deployed: its round's held-out evaluation. Margins compare
    only between evidence with the same `seeds_key` (same episodes, same objective)."""

    run_id: str
    round: int
    workload: WorkloadConfig
    """The evaluation workload (a `:train` trace is evaluated on `:heldout`)."""
    objective: Objective = "deadline"
    seed: int
    episodes: int
    ppo_value: float
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
    """A checkpoint id (the app's) or a heuristic name."""
    kind: Literal["checkpoint", "heuristic"]
    checkpoint: str | None = None
    """The checkpoint's location, for the worker."""
    window: int | None = None
    evidence: EvaluationEvidence | None = None
    forced: bool = False
    """Deployed although not eligible (an operator's `force: true`)."""
    source: Literal["operator", "auto"] = "operator"
    deployed_at: datetime | None = None
    """Set by the workflow when the deployment lands."""

    @property
    def eligible(self) -> bool:
        return self.kind == "heuristic" or (self.evidence is not None and self.evidence.eligible)

    @field_validator("policy_class")
    @classmethod
    def _known_class(cls, name: str) -> str:
        return _checked(policy_class_problem(name), name)

    @model_validator(mode="after")
    def _policy_name(self) -> Deployment:
        """A checkpoint is named by its id; a heuristic name is checked by deploy_problem
        (so the validator answers DeployRejected), but never looks like a path."""
        if self.kind == "checkpoint":
            _checked(id_problem(self.policy, "checkpoint id"), self.policy)
        else:
            _checked(path_like_problem(self.policy), self.policy)
        return self

    @field_validator("checkpoint")
    @classmethod
    def _safe_location(cls, location: str | None) -> str | None:
        return location if not location else _checked(location_problem(location, "checkpoint"), location)

    def ref(self) -> PolicyRef:
        return PolicyRef(kind=self.kind, name=self.policy, checkpoint=self.checkpoint)


def deployed_note(policy_class: str, deployment: Deployment | None, fallback: str) -> str:
    """What a plan's `notes` say about the policy 'best' stood for."""
    if deployment is None:
        return f"nothing deployed for class {policy_class!r}: used the {fallback!r} heuristic for 'best'"
    margin = f", margin {deployment.evidence.margin:+.4f}" if deployment.evidence is not None else ""
    forced = ", forced: NOT eligible" if deployment.forced else ""
    what = f"{deployment.kind} {deployment.policy!r}"
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

    By hand: a heuristic needs a valid name; a checkpoint needs a location and a
    positive margin over the best heuristic on its held-out evaluation, unless forced.
    Automatically (`auto`): never forced; the checkpoint must be eligible and beat what
    is deployed on the same episodes: a deployed checkpoint evaluated on the same seeds
    (same workload, objective, seed and episode count) with a smaller margin, or a
    deployed heuristic that is in this evaluation's league with a lower value. Anything
    evaluated elsewhere is not comparable, so it stays until an operator decides."""
    wanted = request.deployment
    if wanted.kind == "heuristic":
        problem = heuristic_problem(wanted.policy)
        if problem is None and request.auto:
            return "automatic deployment is for checkpoints only"
        return problem
    if not wanted.checkpoint:
        return f"checkpoint {wanted.policy!r} has no stored location"
    evidence = wanted.evidence
    if evidence is None:
        if wanted.forced and not request.auto:
            return None
        return f"checkpoint {wanted.policy!r} has no held-out evaluation, so it is not eligible"
    if not evidence.eligible:
        if wanted.forced and not request.auto:
            return None
        return (
            f"checkpoint {wanted.policy!r} is not eligible: margin {evidence.margin:+.4f} over the best "
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


class PlacementOut(Model):
    job_id: str
    node_id: str
    gpu_type: str | None
    start_s: float
    finish_s: float
    meets_deadline: bool
    priority: int | None = None
    """The job's priority (1-3), so a plan can be drawn without its request."""


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
    policy_id: str | None = None
    """For a `deployed` request: the checkpoint id or heuristic the workflow chose."""
    notes: list[str] = Field(default_factory=list)


class SmokeInput(Model):
    workload: WorkloadConfig = Field(
        default_factory=lambda: WorkloadConfig(name="seed-demo", nodes=4, window=8, jobs=40)
    )
    iterations: StrictCount = Field(1, ge=1, le=100)
    seed: Seed = 0
    output_dir: str | None = None
    ppo: PPOParams = Field(
        default_factory=lambda: PPOParams(
            train_batch_size=256, minibatch_size=128, num_epochs=1, num_envs_per_env_runner=4
        )
    )

    @field_validator("output_dir")
    @classmethod
    def _safe_location(cls, location: str | None) -> str | None:
        return None if location is None else _checked(location_problem(location, "output_dir"), location)


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


class ArtifactStoreOptions(Model):
    """How to reach the artifact store (RLSCHED_ARTIFACT_STORE and its S3 options), read
    from the same environment by the app (for /readyz) and the worker."""

    uri: str
    """A URI (`s3://bucket/prefix`, `gs://...`, `file:///...`, any fsspec protocol)."""
    s3_endpoint_url: str | None = None
    """An S3-compatible server (MinIO, moto, ...): `http://host:port`; None = AWS."""
    s3_region: str | None = None
    connect_timeout_s: float = 5.0
    request_timeout_s: float = 60.0
    retries: int = 3
    """Attempts per request (pyarrow's AWS standard retry strategy)."""


def is_store_uri(location: str) -> bool:
    """True for URIs (`scheme://...`), which go through pyarrow.fs; plain paths are local."""
    return "://" in location


_AWS_CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")
_filesystems: dict[tuple[object, ...], Any] = {}
_filesystems_lock = threading.Lock()


def open_artifact_store(location: str, options: ArtifactStoreOptions) -> tuple[Any, str]:
    """(pyarrow FileSystem, path inside it) of a URI in the artifact store.

    `s3://` goes through pyarrow's own S3FileSystem (AWS SDK: credentials from the
    standard AWS_* variables, ~/.aws or an instance role; endpoint and region from the
    options); one filesystem per option set is reused, since building one looks up
    credentials. Other schemes pyarrow knows (gs, hdfs, abfs, file) go through
    `FileSystem.from_uri`; anything else through fsspec, wrapped for pyarrow.
    """
    import pyarrow.fs as pafs

    parts = urlsplit(location)
    if parts.scheme == "s3":
        credentials = tuple(os.environ.get(name) for name in _AWS_CREDENTIAL_VARIABLES)
        key = ("s3", options.s3_endpoint_url, options.s3_region, options.connect_timeout_s,
               options.request_timeout_s, options.retries, credentials)  # fmt: skip
        with _filesystems_lock:
            filesystem = _filesystems.get(key)
            if filesystem is None:
                endpoint: dict[str, str] = {}
                if options.s3_endpoint_url:
                    url = urlsplit(options.s3_endpoint_url)
                    endpoint = {"endpoint_override": url.netloc or url.path, "scheme": url.scheme or "https"}
                filesystem = _filesystems[key] = pafs.S3FileSystem(
                    region=options.s3_region,
                    connect_timeout=options.connect_timeout_s,
                    request_timeout=options.request_timeout_s,
                    retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=options.retries),
                    **endpoint,
                )
        return filesystem, f"{parts.netloc}{parts.path}".rstrip("/")
    try:
        filesystem, path = pafs.FileSystem.from_uri(location)
    except Exception:  # a scheme pyarrow doesn't know natively: ask fsspec
        import fsspec

        fs, path = fsspec.core.url_to_fs(location)
        filesystem = pafs.PyFileSystem(pafs.FSSpecHandler(fs))
    return filesystem, path.rstrip("/")


def artifact_store_problem(options: ArtifactStoreOptions, write: bool = False) -> str | None:
    """None if the store answers (and, with `write`, takes an object), else a message
    naming the store and what to fix: wrong credentials, a missing bucket, an endpoint
    that doesn't answer. Used by the worker at start and by the app's /readyz."""
    import pyarrow.fs as pafs

    where = options.uri + (f" at {options.s3_endpoint_url}" if options.s3_endpoint_url else "")
    try:
        filesystem, path = open_artifact_store(options.uri, options)
        if urlsplit(options.uri).scheme == "s3":
            bucket = path.split("/", 1)[0]
            if filesystem.get_file_info(bucket).type == pafs.FileType.NotFound:
                return f"artifact store {where}: bucket {bucket!r} does not exist; create it first"
        filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
        if write:
            probe = f"{path}/.rlsched-probe-{uuid.uuid4().hex}"
            with filesystem.open_output_stream(probe) as out:
                out.write(b"probe")
            filesystem.delete_file(probe)
    except Exception as error:  # pyarrow raises OSError / ArrowInvalid with the AWS error inside
        return f"artifact store {where}: {_store_hint(str(error))}{error}"
    return None


def _store_hint(message: str) -> str:
    if any(code in message for code in ("ACCESS_DENIED", "InvalidAccessKeyId", "SignatureDoesNotMatch")):
        return "credentials rejected (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE): "
    if "NO_SUCH_BUCKET" in message:
        return "the bucket does not exist: "
    if "NETWORK_CONNECTION" in message or "curlCode" in message:
        return "endpoint unreachable (check RLSCHED_S3_ENDPOINT_URL / AWS_ENDPOINT_URL and the network): "
    return ""
