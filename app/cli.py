"""`rlsched`: one command line for the whole service. The API's commands (`api`, `migrate`,
`dev`) live here; the worker's (`worker`, `eval`, ...) are mounted from worker/cli.py,
which imports the simulator and Ray only inside its commands."""

from __future__ import annotations

import os
import signal
import time
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


def _raise_keyboard_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


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
    from app.core.config import get_settings
    from app.db import migrate
    from worker.devserver import wait_for_port
    from worker.settings import default_inference_workers
    from worker.stack import Stack, StackError

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

    inference_workers = inference_workers or default_inference_workers()
    env = {
        "RLSCHED_TEMPORAL_ADDRESS": settings.temporal_address,
        "RLSCHED_TEMPORAL_NAMESPACE": settings.temporal_namespace,
        "RLSCHED_SCHEDULE_SERVICE_INSTANCES": os.environ.get(
            "RLSCHED_SCHEDULE_SERVICE_INSTANCES", str(2 * inference_workers)
        ),
    }
    stack = Stack(data_dir, logs_dir=logs, env=env, api_host=settings.api_host, api_port=settings.api_port)
    host, _, port_text = settings.temporal_address.rpartition(":")
    try:
        try:
            wait_for_port(host or "127.0.0.1", int(port_text), timeout_s=0.3)
            stack.use_temporal(settings.temporal_address)
            typer.echo(f"using the Temporal server already listening at {settings.temporal_address}")
        except TimeoutError:
            server = stack.start_temporal(
                port=int(port_text),
                ui_port=settings.temporal_ui_port,
                db_file=data_dir / "temporal.db",
                namespace=settings.temporal_namespace,
            )
            typer.echo(f"Temporal dev server on {server.address} (state in {data_dir / 'temporal.db'})")
        stack.start_worker("training", name="worker")
        for i in range(inference_workers):
            stack.start_worker("inference", name=f"worker-inference-{i}")
        stack.start_api()
        try:
            stack.wait_ready(ready_timeout_s)
        except StackError as error:
            typer.echo(f"{error}\nlogs in {logs}")
            raise typer.Exit(1) from None
        base = stack.api_url
        auth = " -H 'Authorization: Bearer $RLSCHED_API_KEY'" if settings.api_key else ""
        typer.echo(
            f"""
ready.
  API docs     {base}/docs
  dashboard    {base}/ui
  Temporal UI  {settings.temporal_ui_url if stack.temporal else "(external server)"}
  logs         {logs}

try:
  curl -s -X POST {base}/training-runs{auth} -H 'Content-Type: application/json' \\
    -d '{{"workload": {{"name": "steady", "nodes": 16}}, "max_rounds": 2}}'
  curl -s -X POST {base}/schedule{auth} -H 'Content-Type: application/json' \\
    -d '{{"synthetic": {{"workload": {{"name": "steady", "nodes": 16, "jobs": 100}}}}}}'

Ctrl-C stops everything."""
        )
        while (gone := stack.exited()) is None:
            time.sleep(0.5)
        typer.echo(
            f"{gone.name} exited with {gone.returncode}; last lines of {gone.log_file}:\n{gone.tail(20)}"
        )
        raise typer.Exit(1)
    except KeyboardInterrupt:
        typer.echo("")
    finally:
        stack.stop(say=typer.echo)
        typer.echo("stopped.")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
