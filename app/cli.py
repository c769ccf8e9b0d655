"""`rlsched`: one command line for the whole service. The API's commands (`api`, `migrate`,
`dev`) live here; the worker's (`worker`, `eval`, ...) are mounted from worker/cli.py,
which imports the simulator and Ray only inside its commands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from worker.cli import cli as worker_cli

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.callback()
def root() -> None:
    """rl-scheduler: train RL cluster-scheduling policies and serve their decisions."""


for command in worker_cli.registered_commands:
    app.registered_commands.append(command)


@app.command("migrate")
def migrate_command() -> None:
    """Create or upgrade the app's database (RLSCHED_DATABASE_URL / DATABASE_URL)."""
    from app.core.config import get_settings
    from app.db import migrate

    settings = get_settings()
    migrate(settings)
    typer.echo(f"database at head: {settings.sqlalchemy_url}")


@app.command("api")
def api_command(
    host: Annotated[str | None, typer.Option(help="Default RLSCHED_API_HOST (127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Default RLSCHED_API_PORT (8000).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="uvicorn worker processes (RLSCHED_API_WORKERS).")
    ] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
) -> None:
    """Serve the REST API with uvicorn."""
    import uvicorn

    from app.core.config import get_settings

    settings = get_settings()
    uvicorn.run(
        "app.main:app",
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers or settings.api_workers,
        access_log=access_log,
        log_level="info",
    )


def _spawn(args: list[str], log_file: Path, env: dict[str, str]) -> subprocess.Popen:
    log = open(log_file, "ab")  # noqa: SIM115  (owned by the child for its lifetime)
    command = (
        [sys.executable, "-m", "worker.main"]
        if args == ["--worker-module"]
        else [sys.executable, "-m", "app.cli", *args]
    )
    return subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # Ctrl-C reaches `dev` only, which then stops children in order
    )


def _spawn_worker(queue: str, log_file: Path, env: dict[str, str]) -> subprocess.Popen:
    if any(c.name == "worker" for c in app.registered_commands):
        return _spawn(["worker", "--queue", queue], log_file, env)
    return _spawn(["--worker-module"], log_file, {**env, "RLSCHED_WORKER_QUEUE": queue})


def _stop(process: subprocess.Popen, name: str, timeout_s: float = 20.0) -> None:
    if process.poll() is not None:
        return
    typer.echo(f"stopping {name} ...")
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _raise_keyboard_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@app.command("dev")
def dev_command(
    ready_timeout_s: Annotated[float, typer.Option(help="How long to wait for /readyz.")] = 180.0,
    inference_workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Inference worker processes; default one per core (at most 8)."),
    ] = None,
) -> None:
    """The whole stack on this machine: migrate, Temporal dev server (persisted under the data
    dir, UI on 8233), a training worker, inference workers and the API; waits until ready;
    Ctrl-C stops everything.

    Plans are CPU-bound Python: one worker process runs one at a time (the GIL), so
    several inference processes use several cores. Unless RLSCHED_SCHEDULE_SERVICE_INSTANCES
    is set, the API spreads plans over two scheduler service workflows per inference worker
    (each workflow's plans run in the worker that holds it)."""
    import httpx

    from app.core.config import get_settings
    from app.db import migrate
    from worker.devserver import start_dev_server, wait_for_port

    # Ctrl-C and SIGTERM (systemd, a CI runner) take the same clean path below, even when
    # the shell that started us had SIGINT ignored (background jobs).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    settings = get_settings()
    data_dir = settings.data_dir.resolve()
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    migrate(settings)
    typer.echo(f"database migrated: {settings.sqlalchemy_url}")

    host, _, port_text = settings.temporal_address.rpartition(":")
    temporal_port = int(port_text)
    server = None
    try:
        wait_for_port(host or "127.0.0.1", temporal_port, timeout_s=0.3)
        typer.echo(f"using the Temporal server already listening at {settings.temporal_address}")
    except TimeoutError:
        server = start_dev_server(
            port=temporal_port,
            ui_port=settings.temporal_ui_port,
            db_file=data_dir / "temporal.db",
            namespace=settings.temporal_namespace,
            log_file=logs / "temporal.log",
        )
        typer.echo(f"Temporal dev server on {server.address} (state in {data_dir / 'temporal.db'})")

    env = {
        **os.environ,
        "RLSCHED_DATA_DIR": str(data_dir),
        "RLSCHED_TEMPORAL_ADDRESS": settings.temporal_address,
        "RLSCHED_TEMPORAL_NAMESPACE": settings.temporal_namespace,
    }
    from worker.settings import default_inference_workers

    inference_workers = inference_workers or default_inference_workers()
    env.setdefault("RLSCHED_SCHEDULE_SERVICE_INSTANCES", str(2 * inference_workers))
    children = {"worker": (_spawn_worker("training", logs / "worker.log", env), logs / "worker.log")}
    for i in range(inference_workers):
        log_file = logs / f"worker-inference-{i}.log"
        children[f"inference worker {i}"] = (_spawn_worker("inference", log_file, env), log_file)
    children["api"] = (_spawn(["api", "--no-access-log"], logs / "api.log", env), logs / "api.log")
    base = f"http://{settings.api_host}:{settings.api_port}"
    headers = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"} if settings.api_key else {}
    try:
        deadline = time.monotonic() + ready_timeout_s
        last = "starting"
        while True:
            for name, (process, log_file) in children.items():
                if process.poll() is not None:
                    typer.echo(f"{name} exited with {process.returncode}; see {log_file}:\n{_tail(log_file)}")
                    raise typer.Exit(1)
            try:
                response = httpx.get(f"{base}/readyz", timeout=2)
                if response.status_code == 200:
                    break
                checks = response.json().get("checks", {})
                last = "; ".join(f"{k}: {v['detail']}" for k, v in checks.items() if not v["ok"])
            except httpx.HTTPError:
                last = "API not listening yet"
            if time.monotonic() > deadline:
                typer.echo(f"not ready after {ready_timeout_s:.0f}s: {last}; logs in {logs}")
                raise typer.Exit(1)
            time.sleep(0.5)
        auth = " -H 'Authorization: Bearer $RLSCHED_API_KEY'" if headers else ""
        typer.echo(
            f"""
ready.
  API docs     {base}/docs
  dashboard    {base}/ui
  Temporal UI  {settings.temporal_ui_url if server else "(external server)"}
  logs         {logs}

try:
  curl -s -X POST {base}/training-runs{auth} -H 'Content-Type: application/json' \\
    -d '{{"workload": {{"name": "steady", "nodes": 16}}, "max_rounds": 2}}'
  curl -s -X POST {base}/schedule{auth} -H 'Content-Type: application/json' \\
    -d '{{"synthetic": {{"workload": {{"name": "steady", "nodes": 16, "jobs": 100}}}}}}'

Ctrl-C stops everything."""
        )
        while all(process.poll() is None for process, _ in children.values()):
            time.sleep(0.5)
        for name, (process, log_file) in children.items():
            if process.poll() is not None:
                typer.echo(
                    f"{name} exited with {process.returncode}; last lines of {log_file}:\n{_tail(log_file)}"
                )
        raise typer.Exit(1)
    except KeyboardInterrupt:
        typer.echo("")
    finally:
        _stop(children.pop("api")[0], "API")
        for name, (process, _) in children.items():
            _stop(process, name, timeout_s=30)
        if server is not None:
            typer.echo("stopping Temporal ...")
            server.stop()
        typer.echo("stopped.")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
