"""Worker-side commands of `rlsched`: evaluate and train without Temporal, run a worker.

Imports of the simulator and RL stack happen inside the commands, so the API process
(which mounts these commands in `app.cli`) never loads numpy-heavy code, Ray or torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

cli = typer.Typer(no_args_is_help=True, add_completion=False)
console = Console()

METRIC_COLUMNS = (
    ("score", "score", "{:.3f}"),
    ("mean_bounded_slowdown", "mean bsld", "{:.2f}"),
    ("p95_bounded_slowdown", "p95 bsld", "{:.2f}"),
    ("mean_wait", "mean wait s", "{:.0f}"),
    ("gpu_utilization", "gpu util", "{:.2f}"),
    ("cpu_utilization", "cpu util", "{:.2f}"),
    ("makespan", "makespan s", "{:.0f}"),
    ("jobs_finished", "finished", "{:.1f}"),
)

WorkloadOpt = Annotated[str, typer.Option(help="Preset (steady, bursty, ...) or trace name.")]
NodesOpt = Annotated[int, typer.Option(min=1, help="Cluster size (nodes).")]
LoadOpt = Annotated[float | None, typer.Option(min=0.01, help="Offered load; default: the preset's.")]
WindowOpt = Annotated[int, typer.Option(min=1, help="Job window K the policy sees.")]
JobsOpt = Annotated[int, typer.Option(min=1, help="Jobs per episode.")]


@cli.command("eval")
def eval_command(
    workload: WorkloadOpt = "steady",
    policy: Annotated[
        list[str] | None, typer.Option(help="Heuristic to compare (repeat); default all.")
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Add the trained policy in this checkpoint as 'ppo'.")
    ] = None,
    episodes: Annotated[int, typer.Option(min=1)] = 10,
    seed: int = 0,
    nodes: NodesOpt = 16,
    load: LoadOpt = None,
    window: WindowOpt = 32,
    jobs: JobsOpt = 400,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Compare policies on the same episodes of a workload."""
    from worker.sim.evaluate import evaluate_policies
    from worker.sim.heuristics import HEURISTICS, make_heuristic
    from worker.sim.workloads import WorkloadSpec

    spec = WorkloadSpec(workload, nodes, load, jobs)
    try:
        policies = [make_heuristic(name) for name in (policy or list(HEURISTICS))]
        if checkpoint is not None:
            from worker.rl.inference import PPOPolicy, load_module

            policies.insert(0, PPOPolicy(load_module(str(checkpoint))))
        results = evaluate_policies(policies, spec, window, episodes, seed)
    except ValueError as error:  # unknown names, bad traces, bad checkpoints
        raise typer.BadParameter(str(error)) from error
    rows = [{"policy": r.policy, **r.metrics} for r in results]
    if as_json:
        print(json.dumps({"workload": workload, "episodes": episodes, "seed": seed, "results": rows}))
        return
    table = Table(title=f"{workload}: {episodes} episodes, {nodes} nodes, seed {seed}")
    table.add_column("policy", no_wrap=True, min_width=8)
    for _, header, _ in METRIC_COLUMNS:
        table.add_column(header, justify="right")
    best = max(r["score"] for r in rows)
    for row in rows:
        cells = [fmt.format(row[key]) for key, _, fmt in METRIC_COLUMNS]
        style = "bold green" if row["score"] == best else None
        table.add_row(row["policy"], *cells, style=style)
    console.print(table)
