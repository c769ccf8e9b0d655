"""A real, throwaway Ray cluster for the tests: `ray start --head --block` on loopback,
every port chosen free, its temp dir (sessions, sockets, logs) a short dir of its own.

`ray stop` is not used to end it: it kills every Ray process on the machine, other
people's and other tests' included. The head runs in its own process session; stopping
sends SIGTERM to that session (`--block` then tears its processes down), and whatever is
left is found by the unique temp dir in its command line and killed, so nothing outside
this cluster is touched.

Ray 2.60 enables token authentication for a cluster started this way (the token is
~/.ray/auth_token, made on first use); a driver attaching to it must say so too
(`RAY_AUTH_MODE=token`), else the GCS refuses it and `ray.init` fails after a minute.
Ray also turns a loopback address into the machine's routable IP: the node registers as
that IP, and the GCS listens on every interface (the token is what guards it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from worker.devserver import free_port

AUTH_MODE = "token"
READY_TIMEOUT_S = 180.0
"""Generous: a head on a loaded 2-core machine takes seconds to tens of seconds."""


def ray_cli() -> str:
    """The `ray` CLI of this interpreter's environment (its workers then run this Python)."""
    beside = Path(sys.executable).parent / "ray"
    found = str(beside) if beside.exists() else shutil.which("ray")
    if not found:
        raise RuntimeError("the ray CLI is missing: install ray[rllib]")
    return found


@dataclass
class RayCluster:
    process: subprocess.Popen
    temp_dir: Path
    address: str
    log: Path

    @property
    def driver_env(self) -> dict[str, str]:
        """What a process needs in its environment to train on this cluster."""
        return {"RAY_ADDRESS": self.address, "RAY_AUTH_MODE": AUTH_MODE}

    def processes(self) -> list[int]:
        """Pids of processes whose command line names this cluster's temp dir."""
        marker = str(self.temp_dir).encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if marker in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
        return found

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout_s)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        deadline = time.monotonic() + 30
        while (left := self.processes()) and time.monotonic() < deadline:
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def start_head(num_cpus: int = 2, env: dict[str, str] | None = None) -> RayCluster:
    """Start a head node and return once a driver can attach (`ray.init(address=...)`).
    `env` is the head's environment, which its worker processes inherit (PYTHONPATH,
    so they import this checkout's code)."""
    temp_dir = Path(tempfile.mkdtemp(prefix="rls-ray-", dir="/tmp"))  # unix socket paths: keep it short
    log = temp_dir / "head.log"
    gcs_port = free_port()
    ports = {
        "--port": gcs_port,
        "--node-manager-port": free_port(),
        "--object-manager-port": free_port(),
        "--dashboard-agent-listen-port": free_port(),
        "--dashboard-agent-grpc-port": free_port(),
        "--metrics-export-port": free_port(),
        "--runtime-env-agent-port": free_port(),
    }
    command = [
        ray_cli(),
        "start",
        "--head",
        "--block",
        "--node-ip-address",
        "127.0.0.1",
        "--num-cpus",
        str(num_cpus),
        "--include-dashboard=false",
        "--disable-usage-stats",
        "--temp-dir",
        str(temp_dir),
        "--object-store-memory",
        str(256 * 1024**2),
        *(str(part) for flag, port in ports.items() for part in (flag, port)),
    ]
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RAY_AUTH_MODE": AUTH_MODE, **(env or {})},
            start_new_session=True,
        )
    cluster = RayCluster(process=process, temp_dir=temp_dir, address=f"127.0.0.1:{gcs_port}", log=log)
    try:
        _wait_until_attachable(cluster, num_cpus)
    except BaseException:
        cluster.stop()  # never leave a head behind, whatever went wrong
        raise
    return cluster


def _wait_until_attachable(cluster: RayCluster, num_cpus: int) -> None:
    probe = (
        f"import ray; ray.init(address={cluster.address!r}, logging_level='ERROR'); "
        f"assert ray.cluster_resources().get('CPU') == {num_cpus}"
    )
    deadline = time.monotonic() + READY_TIMEOUT_S
    time.sleep(2)  # a head that fails on its arguments exits within this
    while time.monotonic() < deadline:
        if cluster.process.poll() is not None:
            break
        with contextlib.suppress(subprocess.TimeoutExpired):
            attached = subprocess.run(
                [sys.executable, "-c", probe],
                capture_output=True,
                timeout=90,
                env={**os.environ, **cluster.driver_env},
            )
            if attached.returncode == 0:
                return
        time.sleep(1)
    tail = cluster.log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"the Ray head at {cluster.address} did not come up:\n{tail}")
