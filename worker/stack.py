"""The stack of processes on one machine: a Temporal dev server, worker processes and the
API, each logging to its own file.

One launcher for `rlsched dev`, the tests that run the stack for real (integration and
fault tests) and the benchmarks, so that all of them start the same processes the same
way and stop them in the same order. It only starts subprocesses (stdlib, httpx and
worker.devserver), so app/cli.py imports it without loading Ray, torch or the simulator.

Every child runs in its own session: killing its process group takes Ray's helper
processes along, as a lost machine would, and Ctrl-C in a terminal reaches only the
process that owns the stack, which then stops the children in order (API, workers,
Temporal).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal

import httpx

from worker.devserver import DevServer, free_port, start_dev_server

ROOT = Path(__file__).resolve().parents[1]
"""The checkout the children import `app` and `worker` from."""

WorkerQueue = Literal["training", "inference", "all"]
"""What a worker serves (RLSCHED_WORKER_QUEUE of worker.main)."""


class StackError(RuntimeError):
    """A child exited or the stack did not become ready; the message names the process,
    what it was waiting for and the tail of the logs."""


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class Child:
    """One process of the stack: its command, environment and log file. Restartable:
    `start()` again after `stop()` or `kill()` runs the same command, appending to the
    same log."""

    name: str
    command: list[str]
    env: dict[str, str] = field(repr=False)
    log_file: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        if self.process is None:
            raise StackError(f"{self.name} was never started")
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (worker.main and uvicorn both shut down gracefully on it), then after
        `timeout_s` SIGKILL to the whole process group, which also reaps what the child
        left behind (Ray's helpers)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout_s)
        self.kill()

    def kill(self) -> None:
        """SIGKILL to the process group: no graceful shutdown, like a crash or the OOM killer."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def restart(self, timeout_s: float = 30.0) -> Child:
        self.stop(timeout_s)
        return self.start()

    def tail(self, lines: int = 40) -> str:
        return tail(self.log_file, lines)


@dataclass
class Stack:
    """The processes of one stack under `data_dir`. `env` is what every child gets on top
    of this process's environment (RLSCHED_DATA_DIR and, once known, the Temporal
    address are set here); each `start_*` takes more for that child alone."""

    data_dir: Path
    logs_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    api_host: str = "127.0.0.1"
    api_port: int = field(default_factory=free_port)
    temporal: DevServer | None = None
    temporal_address: str | None = None
    workers: list[Child] = field(default_factory=list)
    api: Child | None = None
    _temporal_options: dict[str, object] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.logs_dir = self.logs_dir or self.data_dir

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def logs(self) -> list[Path]:
        assert self.logs_dir is not None
        return sorted(self.logs_dir.glob("*.log"))

    @property
    def children(self) -> list[Child]:
        return [*self.workers, *([self.api] if self.api is not None else [])]

    def pids(self) -> dict[str, int]:
        """Every live process by name, Temporal included: what a benchmark samples."""
        out = {"temporal": self.temporal.process.pid} if self.temporal is not None else {}
        return {**out, **{child.name: child.pid for child in self.children if child.running}}

    def child_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        environment = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
            "RLSCHED_DATA_DIR": str(self.data_dir),
            **self.env,
            **(extra or {}),
        }
        if self.temporal_address is not None:
            environment.setdefault("RLSCHED_TEMPORAL_ADDRESS", self.temporal_address)
        return environment

    def start_temporal(
        self,
        port: int | None = None,
        ui_port: int | None = None,
        db_file: Path | None = None,
        namespace: str = "default",
    ) -> DevServer:
        """A dev server (worker/devserver.py), headless unless `ui_port`, in memory unless
        `db_file`. Called again after `stop_temporal()` with no arguments, it restarts
        the same server on the same port and file, with its state."""
        if port is None and ui_port is None and db_file is None and self._temporal_options:
            options = self._temporal_options
        else:
            options = {"port": port or free_port(), "ui_port": ui_port, "db_file": db_file}
            options["namespace"] = namespace
        assert self.logs_dir is not None
        self.temporal = start_dev_server(**options, log_file=self.logs_dir / "temporal.log")  # type: ignore[arg-type]
        self._temporal_options = options
        self.temporal_address = self.temporal.address
        return self.temporal

    def use_temporal(self, address: str) -> None:
        """A Temporal server this stack did not start (and will not stop)."""
        self.temporal_address = address

    def stop_temporal(self) -> None:
        if self.temporal is not None:
            self.temporal.stop()
            self.temporal = None

    def start_worker(
        self,
        queue: WorkerQueue = "all",
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
    ) -> Child:
        """`python -m worker.main` (or `command`) serving `queue`, logging to `<name>.log`."""
        name = name or f"worker-{queue}-{len(self.workers)}"
        assert self.logs_dir is not None
        child = Child(
            name=name,
            command=list(command or [sys.executable, "-m", "worker.main"]),
            env=self.child_env({"RLSCHED_WORKER_QUEUE": queue, **(env or {})}),
            log_file=self.logs_dir / f"{name}.log",
        )
        self.workers.append(child.start())
        return child

    def kill_worker(self, worker: Child) -> None:
        """SIGKILL one worker and its helpers; the others keep serving."""
        worker.kill()
        self.workers.remove(worker)

    def start_api(
        self,
        env: Mapping[str, str] | None = None,
        uvicorn_workers: int = 1,
        access_log: bool = False,
        ready_timeout_s: float | None = None,
    ) -> Child:
        """`rlsched api` on api_host:api_port, logging to `api.log`; with
        `ready_timeout_s`, returns once GET /readyz answers 200."""
        assert self.logs_dir is not None
        command = [sys.executable, "-m", "app.cli", "api", "--host", self.api_host]
        command += ["--port", str(self.api_port), "--workers", str(uvicorn_workers)]
        command.append("--access-log" if access_log else "--no-access-log")
        self.api = Child("api", command, self.child_env(env), self.logs_dir / "api.log").start()
        if ready_timeout_s is not None:
            self.wait_ready(ready_timeout_s)
        return self.api

    def kill_api(self) -> None:
        """SIGKILL: no lifespan shutdown, like a crashed or OOM-killed API."""
        if self.api is not None:
            self.api.kill()
            self.api = None

    def readiness(self) -> str | None:
        """None once GET /readyz answers 200, else what is not ready yet."""
        try:
            response = httpx.get(f"{self.api_url}/readyz", timeout=2)
        except httpx.HTTPError:
            return "the API is not listening yet"
        if response.status_code == 200:
            return None
        checks = response.json().get("checks", {})
        return "; ".join(f"{k}: {v['detail']}" for k, v in checks.items() if not v["ok"]) or "not ready"

    def exited(self) -> Child | None:
        """The first child that is no longer running, if any."""
        return next((child for child in self.children if not child.running), None)

    def wait_ready(self, timeout_s: float, poll_s: float = 0.5) -> None:
        """Until GET /readyz answers 200 (Temporal reachable, database migrated, a worker
        on each queue); StackError as soon as a child exits, or after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            gone = self.exited()
            if gone is not None:
                raise StackError(
                    f"{gone.name} exited with {gone.returncode}; see {gone.log_file}:\n{gone.tail(20)}"
                )
            last = self.readiness()
            if last is None:
                return
            if time.monotonic() > deadline:
                tails = "".join(f"\n--- {log.name}:\n{tail(log)}" for log in self.logs)
                raise StackError(f"not ready after {timeout_s:.0f}s: {last}{tails}")
            time.sleep(poll_s)

    def stop(self, say: Callable[[str], None] = lambda _: None, timeout_s: float = 30.0) -> None:
        """The API first (no new work), then the workers (each finishes or hands back its
        task), then Temporal."""
        if self.api is not None:
            say("stopping the API ...")
            self.api.stop(timeout_s)
            self.api = None
        for worker in self.workers:
            if worker.running:
                say(f"stopping {worker.name} ...")
                worker.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]  # all at once
        for worker in self.workers:
            worker.stop(timeout_s)
        if self.temporal is not None:
            say("stopping Temporal ...")
            self.stop_temporal()

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


@contextlib.contextmanager
def running_stack(
    data_dir: Path,
    training_workers: int = 1,
    inference_workers: int = 1,
    env: Mapping[str, str] | None = None,
    temporal_db: bool = False,
    uvicorn_workers: int = 1,
    ready_timeout_s: float = 240.0,
) -> Iterator[Stack]:
    """The stack `rlsched dev` runs, on free ports under `data_dir`, ready when yielded
    and stopped afterwards: what the benchmarks measure."""
    stack = Stack(data_dir=data_dir, env={**(env or {})})
    stack.env.setdefault("RLSCHED_API_HOST", stack.api_host)
    stack.env.setdefault("RLSCHED_API_PORT", str(stack.api_port))
    with stack:
        stack.start_temporal(db_file=data_dir / "temporal.db" if temporal_db else None)
        for i in range(training_workers):
            stack.start_worker("training", name="worker-training" + (f"-{i}" if training_workers > 1 else ""))
        for i in range(inference_workers):
            stack.start_worker("inference", name=f"worker-inference-{i}")
        stack.start_api(uvicorn_workers=uvicorn_workers, ready_timeout_s=ready_timeout_s)
        yield stack
