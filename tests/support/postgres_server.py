"""A real, throwaway PostgreSQL server for the tests: `initdb` + `postgres` from the
machine's PostgreSQL binaries, in a temp dir, on a free loopback port, with its unix
socket in that dir. Tests get a fresh database each (`create_database`), so they never
see each other's rows.

PostgreSQL refuses to run as root. Tests may well run as root (CI here does), so then
the server runs as an unprivileged user (`postgres` if the machine has one, else
`nobody`) through `setpriv`, and its directory is handed to that user. Durability is
switched off (fsync, synchronous_commit, full_page_writes): a crash only loses a test
database, and on a loaded 2-core machine the fsyncs would dominate.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from worker.devserver import free_port

SEARCH_DIRS = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin", "/usr/pgsql-*/bin")


def find_binaries() -> Path | None:
    """The directory holding `initdb` and `postgres`: PATH first, then the usual
    Debian/RPM locations (newest version first). None when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found and (Path(found).resolve().parent / "postgres").exists():
        return Path(found).resolve().parent
    candidates = sorted(
        (Path(p) for pattern in SEARCH_DIRS for p in glob.glob(pattern)),
        key=lambda p: [int(s) if s.isdigit() else 0 for s in p.parent.name.split(".")],
        reverse=True,
    )
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "postgres").exists():
            return directory
    return None


def _unprivileged_user() -> pwd.struct_passwd | None:
    """Who runs the server when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists")


@dataclass
class PostgresServer:
    process: subprocess.Popen
    root: Path
    port: int
    bindir: Path
    superuser: str = "postgres"

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{self.superuser}@{self.host}:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.url(driver="postgresql"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, close connections, stop)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres(bindir: Path, timeout_s: float = 60.0) -> PostgresServer:
    """initdb (trust auth, superuser `postgres`) and start a server; returns once it
    accepts connections. Raises with the server's log tail if it does not come up."""
    import psycopg

    user = _unprivileged_user()
    root = Path(tempfile.mkdtemp(prefix="rls-pg-", dir="/tmp"))
    data, log = root / "data", root / "server.log"
    log.touch()
    demote: list[str] = []
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
        os.chown(log, user.pw_uid, user.pw_gid)
        demote = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"]
    env = {**os.environ, "LC_ALL": "C", "TZ": "UTC"}
    subprocess.run(
        [
            *demote,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        env=env,
        cwd=root,
    )
    port = free_port()
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [
                *demote,
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-k",
                str(root),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=root,
            start_new_session=True,
        )
    server = PostgresServer(process=process, root=root, port=port, bindir=bindir)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with psycopg.connect(server.url(driver="postgresql"), connect_timeout=2):
                return server
        except psycopg.OperationalError:
            time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:]
    server.stop()
    raise RuntimeError(f"PostgreSQL did not start on port {port} within {timeout_s:.0f}s:\n{tail}")
