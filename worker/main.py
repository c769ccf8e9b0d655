"""The worker process: `rlsched worker` or `python -m worker.main`.

One Temporal client, and one Worker per task queue served (`all`: both in one process).
The training worker runs at most one activity at a time (a PPO round owns the CPUs);
the inference worker runs many, so a schedule request never waits behind training.

SIGTERM / SIGINT shut the workers down gracefully: new tasks stop, running activities
get `GRACEFUL_SHUTDOWN` to finish (a training round checkpoints at its next iteration
boundary and hands over to a retry), then Ray is shut down.

Configuration comes from the environment (worker/settings.py: RLSCHED_DATA_DIR,
RLSCHED_TEMPORAL_ADDRESS, RLSCHED_WORKER_METRICS_PORT, ...) plus RLSCHED_WORKER_QUEUE
(training | inference | all) and RLSCHED_TASK_QUEUE_PREFIX (tests give each worker its own pair of queues).
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Literal

from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Worker

from worker.activities.clusters import apply_cluster_plan, plan_cluster, probe_cluster, read_cluster
from worker.activities.deployment import deploy_policy
from worker.activities.evaluation import evaluate_policy, evaluate_search, validate_policy
from worker.activities.inference import plan_schedule
from worker.activities.labels import label_round
from worker.activities.scenario import generate_scenario
from worker.activities.training import store_checkpoint, train_policy
from worker.codec import DATA_CONVERTER
from worker.contracts import INFERENCE_TASK_QUEUE, TRAINING_TASK_QUEUE
from worker.settings import WorkerSettings, get_settings
from worker.workflows.cluster_loop import ClusterLoopWorkflow
from worker.workflows.cluster_probe import ClusterProbeWorkflow
from worker.workflows.scheduler import SchedulerWorkflow
from worker.workflows.scheduler_service import SchedulerServiceWorkflow
from worker.workflows.search_deployment import SearchDeploymentWorkflow
from worker.workflows.smoke import SmokeWorkflow
from worker.workflows.training_loop import TrainingLoopWorkflow

QueueChoice = Literal["training", "inference", "all"]
QUEUE_CHOICES: tuple[QueueChoice, ...] = ("training", "inference", "all")
GRACEFUL_SHUTDOWN = timedelta(seconds=30)
INFERENCE_CONCURRENCY = 8

log = logging.getLogger("worker")


async def connect(
    settings: WorkerSettings | None = None, address: str | None = None, runtime: Runtime | None = None
) -> Client:
    settings = settings or get_settings()
    return await Client.connect(
        address or settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=DATA_CONVERTER,
        runtime=runtime,
    )


def start_metrics(settings: WorkerSettings) -> Runtime | None:
    """Start serving our metrics when RLSCHED_WORKER_METRICS_PORT is set; returns the
    Temporal runtime exporting the SDK's metrics to connect with (None: the default)."""
    from worker.metrics import sdk_runtime, start_metrics_server

    host = settings.worker_metrics_host
    if settings.worker_metrics_port is not None:
        start_metrics_server(settings.worker_metrics_port, host)
        log.info("worker metrics on http://%s:%d/metrics", host, settings.worker_metrics_port)
    port = settings.sdk_metrics_port
    if port is None:
        return None
    log.info("Temporal SDK metrics on http://%s:%d/metrics", host, port)
    return sdk_runtime(port, host)


def build_workers(client: Client, queues: QueueChoice = "all", prefix: str = "") -> list[Worker]:
    """The Worker objects for the queues served (not started)."""
    workers: list[Worker] = []
    if queues in ("training", "all"):
        workers.append(
            Worker(
                client,
                task_queue=prefix + TRAINING_TASK_QUEUE,
                workflows=[TrainingLoopWorkflow, SmokeWorkflow, SearchDeploymentWorkflow],
                activities=[
                    label_round,
                    train_policy,
                    evaluate_policy,
                    evaluate_search,
                    validate_policy,
                    store_checkpoint,
                ],
                activity_executor=ThreadPoolExecutor(max_workers=2, thread_name_prefix="training"),
                max_concurrent_activities=1,
                # Heartbeats reach the server within a second: a crash loses at most the
                # iterations since the last checkpoint, not a throttle interval's worth.
                max_heartbeat_throttle_interval=timedelta(seconds=1),
                graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
            )
        )
    if queues in ("inference", "all"):
        workers.append(
            Worker(
                client,
                task_queue=prefix + INFERENCE_TASK_QUEUE,
                workflows=[
                    SchedulerWorkflow,
                    SchedulerServiceWorkflow,
                    ClusterLoopWorkflow,
                    ClusterProbeWorkflow,
                ],
                activities=[
                    plan_schedule,
                    generate_scenario,
                    read_cluster,
                    probe_cluster,
                    plan_cluster,
                    apply_cluster_plan,
                    deploy_policy,
                ],
                activity_executor=ThreadPoolExecutor(
                    max_workers=INFERENCE_CONCURRENCY, thread_name_prefix="inference"
                ),
                max_concurrent_activities=INFERENCE_CONCURRENCY,
                max_concurrent_local_activities=INFERENCE_CONCURRENCY,
                graceful_shutdown_timeout=timedelta(seconds=10),
            )
        )
    return workers


def prewarm() -> None:
    """Import the simulator and torch and compile the simulator's kernels now, so the
    first schedule request doesn't pay seconds for it.

    Torch is limited to one intra-op thread: the policy's forward passes are tiny, and
    with two OpenMP threads on a busy 2-core machine (training, the server, the API)
    a 100-job plan measured 450-1,700 ms p50 instead of 40-50 ms with one.
    """
    import torch

    import worker.rl.inference  # noqa: F401  (the module cache)

    torch.set_num_threads(1)
    from worker.contracts import JobSpec, NodeSpec, PlanInput, PolicyRef

    nodes = [NodeSpec(id="n0", cpus=8, gpus={"p5": 8})]
    jobs = [JobSpec(id="j0", gpus=1, runtime_estimate_s=60)]
    request = PlanInput(nodes=nodes, jobs=jobs, policy=PolicyRef(kind="heuristic", name="fifo"))
    plan_schedule(request)


async def serve(
    client: Client,
    queues: QueueChoice = "all",
    prefix: str = "",
    stop: asyncio.Event | None = None,
    warm: bool = True,
) -> None:
    """Run the workers until `stop` is set (or forever)."""
    stop = stop or asyncio.Event()
    if warm and queues in ("inference", "all"):
        try:
            await asyncio.to_thread(prewarm)
        except Exception:
            log.exception("prewarm failed; the first request will be slower")
    workers = build_workers(client, queues, prefix)
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        log.info("serving %s", ", ".join(w.task_queue for w in workers))
        await stop.wait()
        log.info("shutting down (graceful timeout %ss)", GRACEFUL_SHUTDOWN.total_seconds())


def _shutdown_ray() -> None:
    if "ray" not in sys.modules:
        return
    try:
        from worker.rl.runtime import shutdown_ray

        shutdown_ray()
        log.info("Ray stopped")
    except Exception:
        log.exception("Ray shutdown failed")


def check_artifact_store(settings: WorkerSettings, queues: QueueChoice) -> None:
    """Refuse to start against a remote artifact store that doesn't answer.

    Checked before serving, not when a round needs it: a worker that cannot write
    checkpoints would still take training tasks off the queue and fail each one
    (or, worse, train a round and lose it at the upload), while a process that exits
    at once with the reason shows the misconfiguration where it is deployed and leaves
    the tasks to healthy workers. Training workers must be able to write (a probe object
    is written and deleted); inference-only workers only read.
    """
    from worker.storage import artifact_store_problem

    options = settings.store_options
    if options is None:
        return
    started = time.monotonic()
    problem = artifact_store_problem(options, write=queues in ("training", "all"))
    if problem is not None:
        log.error("not starting: %s", problem)
        raise SystemExit(f"rlsched worker: {problem}")
    log.info("artifact store %s answered in %.2f s", options.uri, time.monotonic() - started)


async def run(queues: QueueChoice = "all", prefix: str = "", settings: WorkerSettings | None = None) -> None:
    """The process entry point: check the artifact store, connect, serve, stop on
    SIGTERM/SIGINT, then stop Ray."""
    settings = settings or get_settings()
    check_artifact_store(settings, queues)  # seconds at most (connect timeout), before anything runs
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = await connect(settings, runtime=start_metrics(settings))
    log.info("connected to %s (namespace %s)", settings.temporal_address, settings.temporal_namespace)
    try:
        await serve(client, queues, prefix, stop)
        log.info("workers stopped")
    finally:
        _shutdown_ray()  # on the main thread: Ray's shutdown is not thread-safe


def run_and_exit(queues: QueueChoice = "all", prefix: str = "") -> None:
    """Run the worker process to a clean stop, then leave without interpreter teardown.

    After a training round was interrupted by the shutdown, native threads left by
    torch / RLlib abort the interpreter's final teardown (SIGABRT) even though the
    workers drained and Ray stopped; by then there is nothing left to clean up, so the
    process exits 0 directly once logs are flushed.
    """
    asyncio.run(run(queues, prefix))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main() -> None:
    faulthandler.enable(all_threads=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    queues = os.environ.get("RLSCHED_WORKER_QUEUE", "all")
    if queues not in QUEUE_CHOICES:
        raise SystemExit(f"RLSCHED_WORKER_QUEUE must be one of {', '.join(QUEUE_CHOICES)}, not {queues!r}")
    niceness = get_settings().training_niceness
    if queues == "training" and niceness:
        os.nice(niceness)  # before Ray starts, so its workers inherit it
        log.info("training worker at niceness +%d: plans get the CPU first", niceness)
    run_and_exit(queues, os.environ.get("RLSCHED_TASK_QUEUE_PREFIX", ""))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
