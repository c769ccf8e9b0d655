"""Names the app and the worker must spell alike: task queues, workflow, update and query
names, the ids of long-lived workflows, and the workloads, objectives and heuristics a
client may name."""

from __future__ import annotations

from typing import Literal

TRAINING_TASK_QUEUE = "rl-training"
"""Long, CPU-heavy work: at most one training activity per worker process."""
INFERENCE_TASK_QUEUE = "rl-inference"
"""Short work (plans, scenario generation): never stuck behind training. Evaluation runs on
the training queue: it takes seconds of CPU and reads the checkpoint training just wrote."""

TRAINING_LOOP_WORKFLOW = "TrainingLoopWorkflow"
SCHEDULER_WORKFLOW = "SchedulerWorkflow"
SMOKE_WORKFLOW = "SmokeWorkflow"
SEARCH_DEPLOYMENT_WORKFLOW = "SearchDeploymentWorkflow"
"""Measures a search on a class's held-out league, then deploys it if it is eligible
(worker/workflows/search_deployment.py); on the training queue, where evaluation runs."""

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
SEARCH_PREFIX = "search:"
"""`search:<base>`: decision-time search rolling out the base policy (worker/search)."""
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
