"""`rlsched`: one command line for the whole service."""

from __future__ import annotations

import typer

from worker.cli import cli as worker_cli

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.callback()
def root() -> None:
    """rl-scheduler: train RL cluster-scheduling policies and serve their decisions."""


for command in worker_cli.registered_commands:
    app.registered_commands.append(command)


def main() -> None:
    app()
