"""A real Slurm 22.05 cluster on this machine for tests: munge, slurmctld and eight
emulated slurmd, everything (keys, sockets, config, state, logs) under one directory.

Nothing here is mocked: the daemons are Debian's (`slurmctld slurmd slurm-client munge`).
The nodes are emulated the way Slurm's own developers do it: one slurmd per node, each
started with `-N <node>` on its own loopback port; `SlurmdParameters=config_overrides` lets
a node claim more CPUs and memory than the machine has; its GPUs are character devices
made with `mknod` and declared in gres.conf (`gpu:p5` and `gpu:p4`, our simulator's types).
Jobs are `sleep` jobs run as root with no cgroups (`proctrack/linuxproc`, `task/none`).

Slurm schedules with its defaults (sched/backfill), so a plain job starts within about
three seconds of its submission; `submit_deferred` submits one whose start is leased to a
later time, as the adapter's `enforce` ticks do, so a test can read it while it waits.
docs/guides/slurm.md shows the same steps as shell commands.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SLURM_PROGRAMS = ("slurmctld", "slurmd", "munged", "mungekey", "sbatch", "squeue", "sinfo", "scontrol")
START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class EmulatedNode:
    """One slurmd: its Slurm name, size and fake GPUs."""

    name: str
    cpus: int
    memory_mb: int
    gpu_type: str | None = None
    gpus: int = 0


DEFAULT_NODES: tuple[EmulatedNode, ...] = (
    *(EmulatedNode(f"p5n{i}", 32, 256_000, "p5", 8) for i in range(1, 5)),
    *(EmulatedNode(f"p4n{i}", 16, 128_000, "p4", 4) for i in range(1, 4)),
    EmulatedNode("cpun1", 64, 512_000),
)
"""Eight nodes: four with 8 p5 GPUs, three with 4 p4 GPUs, one CPU-only."""
PARTITION = "batch"
LEASE_MARK = "rlsched:action=defer"
"""The admin comment an `enforce` tick leaves on a job it deferred (worker/clusters/slurm.py)."""


SEARCH_PATH = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"
"""Daemons live in /usr/sbin, which a non-root PATH often lacks."""


def program(name: str) -> str:
    found = shutil.which(name, path=SEARCH_PATH)
    if found is None:
        raise RuntimeError(f"{name} not found")
    return found


def missing_programs() -> list[str]:
    return [p for p in SLURM_PROGRAMS if shutil.which(p, path=SEARCH_PATH) is None]


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (held open together, so none is handed out twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class SlurmCluster:
    root: Path
    nodes: tuple[EmulatedNode, ...]
    partition: str = PARTITION
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def conf(self) -> Path:
        return self.root / "etc" / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """The environment a Slurm client command needs to reach this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=30)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def submit(self, *options: str, command: str = "sleep 300") -> str:
        """sbatch a job; returns its id."""
        out = self.run(
            "sbatch",
            "--parsable",
            f"--partition={self.partition}",
            f"--chdir={self.root}",
            "--output=/dev/null",
            *options,
            f"--wrap={command}",
        )
        return out.strip().split(";")[0]

    def submit_deferred(self, *options: str, command: str = "sleep 300") -> str:
        """A job whose start an earlier `enforce` tick deferred: pending (reason BeginTime)
        under the adapter's lease mark, so it waits until a tick starts it."""
        job_id = self.submit("--begin=now+3600", *options, command=command)
        self.run("scontrol", "update", f"jobid={job_id}", f"AdminComment={LEASE_MARK}")
        return job_id

    def scontrol_show(self, what: str, name: str = "") -> dict[str, str]:
        """`scontrol show -o <what> <name>` as a key=value dict (Slurm's own record)."""
        line = self.run("scontrol", "show", "-o", what, *([name] if name else [])).strip()
        record: dict[str, str] = {}
        for token in line.split():
            key, _, value = token.partition("=")
            record[key] = value
        return record

    def job_state(self, job_id: str) -> str:
        return self.scontrol_show("job", job_id)["JobState"]

    def wait_job_state(self, job_id: str, states: Sequence[str], timeout_s: float = 20.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout_s
        while True:
            record = self.scontrol_show("job", job_id)
            if record["JobState"] in states:
                return record
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {record['JobState']} after {timeout_s} s: {record}")
            time.sleep(0.2)

    def start_controller(self, clean: bool = False) -> subprocess.Popen[bytes]:
        """Start slurmctld (`clean`: with no saved state) and wait until it answers."""
        args = [program("slurmctld"), "-D", "-i", *(["-c"] if clean else [])]
        ctld = _daemon(args, self.root / "log" / "slurmctld.out", self.env)
        self.processes.insert(1, ctld)  # after munge, before the slurmd: stop() goes in reverse
        log = self.root / "log" / "slurmctld.log"
        _wait("slurmctld", lambda: self.run("scontrol", "ping", check=False).find("UP") >= 0, ctld, log)
        return ctld

    def stop_controller(self) -> None:
        ctld = self.processes.pop(1)
        ctld.send_signal(signal.SIGTERM)
        ctld.wait(timeout=30)

    def cancel_all(self) -> None:
        self.run("scancel", "--full", f"--partition={self.partition}", check=False)
        deadline = time.monotonic() + 20
        while self.run("squeue", "-h", "-o", "%i", check=False).strip() and time.monotonic() < deadline:
            time.sleep(0.2)

    def stop(self) -> None:
        """Cancel every job (slurmstepd outlives its slurmd otherwise), stop the daemons,
        then kill whatever still runs from this cluster's directory."""
        controller_up = any(str(p.args[0]).endswith("slurmctld") and p.poll() is None for p in self.processes)
        if controller_up:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.cancel_all()
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        kill_leftovers(self.root)


def kill_leftovers(root: Path) -> None:
    """SIGKILL processes whose command line or working directory lies under `root`: job
    steps of this cluster only (jobs run with `--chdir` there), never anything else."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if str(root) in cmdline or Path(cwd).is_relative_to(root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)


StartSlurm = Callable[[Sequence[EmulatedNode]], SlurmCluster]
"""The `start_slurm` fixture of tests/clusters: starts a cluster of these nodes."""


def slurm_conf(
    root: Path,
    nodes: Sequence[EmulatedNode],
    ctld_port: int,
    node_ports: Sequence[int],
    extra: Sequence[str] = (),
) -> str:
    host = socket.gethostname()
    lines = [
        "ClusterName=rlsched",
        f"SlurmctldHost={host}(127.0.0.1)",
        f"SlurmctldPort={ctld_port}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={root / 'munge' / 'munge.socket'}",
        f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool' / '%n'}",
        f"SlurmctldPidFile={root / 'run' / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'run' / 'slurmd-%n.pid'}",
        f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'log' / 'slurmd-%n.log'}",
        "SlurmctldDebug=info",
        "SlurmdDebug=info",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "MpiDefault=none",
        "SwitchType=switch/none",
        "MailProg=/bin/true",
        "ReturnToService=2",
        "SlurmdParameters=config_overrides",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "DefMemPerCPU=1000",
        "MaxArraySize=10001",
        "GresTypes=gpu",
        "SchedulerType=sched/backfill",
        "PriorityType=priority/basic",
        "MinJobAge=300",
        "KillWait=1",
        *extra,
    ]
    for node, port in zip(nodes, node_ports, strict=True):
        gres = f" Gres=gpu:{node.gpu_type}:{node.gpus}" if node.gpus else ""
        lines.append(
            f"NodeName={node.name} NodeAddr=127.0.0.1 NodeHostname={host} Port={port} "
            f"CPUs={node.cpus} RealMemory={node.memory_mb}{gres} State=UNKNOWN"
        )
    lines.append(f"PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP")
    return "\n".join(lines) + "\n"


def gres_conf(root: Path, nodes: Sequence[EmulatedNode]) -> str:
    lines = []
    for node in nodes:
        if node.gpus:
            files = f"{root / 'dev' / node.name}-gpu[0-{node.gpus - 1}]"
            lines.append(f"NodeName={node.name} Name=gpu Type={node.gpu_type} File={files}")
    return "\n".join(lines) + "\n"


def make_gpu_devices(root: Path, nodes: Sequence[EmulatedNode]) -> None:
    """Character devices standing in for GPUs (major 195, NVIDIA's); slurmd only checks
    that the files exist."""
    (root / "dev").mkdir()
    for node in nodes:
        for index in range(node.gpus):
            os.mknod(root / "dev" / f"{node.name}-gpu{index}", 0o600 | 0o020000, os.makedev(195, index))


def start_munge(root: Path) -> subprocess.Popen[bytes]:
    directory = root / "munge"
    directory.mkdir(mode=0o700)
    key = directory / "munge.key"
    subprocess.run([program("mungekey"), "--create", f"--keyfile={key}"], check=True, capture_output=True)
    process = _daemon(
        [
            program("munged"),
            "--foreground",
            "--force",
            f"--socket={directory / 'munge.socket'}",
            f"--key-file={key}",
            f"--pid-file={directory / 'munged.pid'}",
            f"--log-file={directory / 'munged.log'}",
            f"--seed-file={directory / 'munged.seed'}",
        ],
        directory / "munged.out",
        os.environ.copy(),
    )
    _wait("munged", lambda: (directory / "munge.socket").exists(), process, directory / "munged.log")
    return process


def start_slurm_cluster(
    root: Path, nodes: Sequence[EmulatedNode] = DEFAULT_NODES, extra_conf: Sequence[str] = ()
) -> SlurmCluster:
    """Start munge, slurmctld and one slurmd per node under `root` (an empty directory
    with a short path) and wait until every node is idle; `extra_conf` lines join
    slurm.conf (e.g. `SchedulerParameters=...`)."""
    if missing := missing_programs():
        raise RuntimeError(f"Slurm programs not found: {', '.join(missing)}")
    for sub in ("etc", "state", "spool", "run", "log"):
        (root / sub).mkdir(parents=True)
    ports = free_ports(len(nodes) + 1)
    cluster = SlurmCluster(root, tuple(nodes))
    cluster.conf.write_text(slurm_conf(root, nodes, ports[0], ports[1:], extra_conf))
    (root / "etc" / "gres.conf").write_text(gres_conf(root, nodes))
    make_gpu_devices(root, nodes)
    try:
        cluster.processes.append(start_munge(root))
        ctld = cluster.start_controller(clean=True)
        for node in nodes:
            (root / "spool" / node.name).mkdir()
            out = root / "log" / f"slurmd-{node.name}.out"
            cluster.processes.append(_daemon([program("slurmd"), "-D", "-N", node.name], out, cluster.env))
        _wait("every node idle", lambda: _all_idle(cluster), ctld, root / "log" / "slurmctld.log")
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _all_idle(cluster: SlurmCluster) -> bool:
    states = cluster.run("sinfo", "-h", "-N", "-o", "%N %T", check=False).split("\n")
    states = [s for s in states if s.strip()]
    return len(states) == len(cluster.nodes) and all(s.split()[1] == "idle" for s in states)


def _daemon(args: list[str], out: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A daemon in the foreground, its stdout and stderr in `out`."""
    with out.open("ab") as sink:
        return subprocess.Popen(args, env=env, stdout=sink, stderr=subprocess.STDOUT)


def _wait(what: str, ready: Callable[[], bool], process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
            raise RuntimeError(f"{what} did not come up (exit {process.poll()}); {log}:\n{tail}")
        time.sleep(0.05)
