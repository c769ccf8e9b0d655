"""The worker's own Prometheus metrics, and where the worker serves them.

Two endpoints, because two libraries own them: ours (prometheus_client's default
registry: rounds, iterations, plan latency) on RLSCHED_WORKER_METRICS_PORT, and the
Temporal SDK's runtime telemetry (task slots, poll and schedule-to-start latencies,
activity and workflow task outcomes; exported by the SDK's Rust core) on
RLSCHED_WORKER_SDK_METRICS_PORT, default the next port. Both are off unless the port
is set. Activities record; workflow code never does (the sandbox replays it).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

TRAINING_ROUNDS = Counter(
    "rlsched_worker_training_rounds_total", "Training rounds finished by this worker", ["outcome"]
)
TRAINING_ITERATIONS = Counter("rlsched_worker_training_iterations_total", "PPO iterations trained")
PLAN_SECONDS = Histogram(
    "rlsched_worker_plan_seconds",
    "Time to compute a placement plan (the requested policy and its baseline)",
    ["policy_kind", "outcome"],
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60),
)


def start_metrics_server(port: int, host: str = "0.0.0.0") -> None:
    """Serve our metrics (the default registry) on `host:port` from a daemon thread."""
    start_http_server(port, addr=host)


def sdk_runtime(port: int, host: str = "0.0.0.0") -> Runtime:
    """A Temporal runtime exporting the SDK's metrics on `host:port`; pass it to
    Client.connect (one per process: the Rust core owns the listener)."""
    metrics = PrometheusConfig(
        bind_address=f"{host}:{port}", counters_total_suffix=True, durations_as_seconds=True
    )
    return Runtime(telemetry=TelemetryConfig(metrics=metrics))
