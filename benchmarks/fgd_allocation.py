"""FGD's inflation experiment (Weng et al., ATC'23) on our engine, beside their numbers.

How to run: `.venv/bin/python benchmarks/fgd_allocation.py [--seeds 10] [--out
benchmarks/results]`. Prints one JSON line `{"rows": [{"pod_list", "policy", "ours_100",
"ours_130", "theirs_100", "theirs_130"}], ...}` (GPU allocation, % of the cluster's GPU
capacity, after 100% and 130% of it has arrived; mean over seeds 42, 43, ...) and writes
`fgd_allocation.json` and `fgd_allocation.png` (allocation vs arrived GPU %, one panel per
pod list, like their figure) under `--out`. Their numbers are
../shared/anchors/fgd_allocation_openb.csv (mean over their seeds 42-51).

The held-out pod lists (gpuspec33, multigpu50) are fine here: these are fixed heuristics,
nothing is tuned on them. The experiment itself is worker/sim/allocation.py.

`--train-minutes N` adds a learned placement: PPO on `trace:openb-inflation` (slices of
`--train-nodes` openb nodes drawn per episode, the default pod list only, training-side
seeds; objective `allocation`, window 1), `--training-seeds` runs, each judged on the
whole cluster and the three pod lists at the seeds above beside `fgd` on the same
episodes. With `--select-every`, each run keeps its checkpoint (the warm-started start
included) with the highest allocation on `--select-episodes` selection episodes of
`--select-nodes` nodes (default: the training slices; the whole cluster is 1213), drawn
from the default list at selection seeds, never 42-51. Held out: gpuspec33 and multigpu50
are never trained or selected on, and no evaluation seed is a training seed. Those rows go
to `fgd_allocation_learned.json`.

`--search` adds `search:fgd` rows (worker/search over `fifo+fgd`, objective `allocation`)
on the same episodes, beside `fgd`: each pod is offered on FGD's best nodes and each
candidate rolled out by FGD over the next arrivals sampled from the default pod list (the
training file, whatever list is evaluated) on seeds no evaluation uses. Its options are
the set of `SEARCH_GRID` with the highest mean allocation (at 100% and 130%) on
`--search-validation` training-side episodes (`trace:openb-inflation`, the whole cluster,
the default list, policy_quality's validation seeds), recorded as `search_selection`
(`--search-options` gives them instead). `--quick` checks the plumbing in minutes: one
seed, one validation episode, a slice of `QUICK_NODES` nodes, a temporary `--out`.
`--search-seeds k` runs the search rows on the first k seeds only (a search episode on the
whole cluster takes minutes where FGD's takes seconds), each beside FGD on the same k.
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import typer
from provenance import provenance

POD_LISTS = ("default", "gpuspec33", "multigpu50")
THEIR_NAMES = {
    "random": "01-Random",
    "dotprod": "02-DotProd",
    "gpuclustering": "03-GpuClustering",
    "gpupacking": "04-GpuPacking",
    "bestfit": "05-BestFit",
    "fgd": "06-FGD",
}


SEARCH_GRID: list[dict[str, Any]] = [
    {"nodes_per_job": 3, "candidates": 3, "rollouts": 2, "arrivals": 8, "z": 1.0},
    {"nodes_per_job": 4, "candidates": 4, "rollouts": 4, "arrivals": 16, "z": 1.0},
]
"""Option sets tried on the validation episodes, on top of `SEARCH_FIXED`."""
SEARCH_FIXED: dict[str, Any] = {"depth": 1, "futures": "sampled", "margin": 0.0, "budget_ms": 60_000.0}
"""What every option set shares: one level, sampled futures (with none, every candidate
earns the same: nothing else arrives), no margin beyond the paired test (an allocation
gain is a share of the cluster's GPUs) and a budget that never binds (reproducible)."""
QUICK_NODES = 100
ENV_OPTIONS = {"objective": "allocation", "observe": False}


def theirs(anchor: Path) -> dict[tuple[str, str], tuple[float, float, list[float]]]:
    """(pod list, their policy name) -> (mean at 100%, mean at 130%, mean curve)."""
    runs: dict[tuple[str, str], list[list[float]]] = {}
    with anchor.open(newline="") as f:
        for row in csv.DictReader(f):
            key = (row["workload"].removeprefix("openb_pod_list_"), row["sc_policy"])
            runs.setdefault(key, []).append([float(row[str(i)]) for i in range(131)])
    out = {}
    for key, curves in runs.items():
        mean = [statistics.fmean(c[i] for c in curves) for i in range(131)]
        out[key] = (mean[100], mean[130], mean)
    return out


def plot(curves: dict[tuple[str, str], list[float]], anchor: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(POD_LISTS), figsize=(15, 4.2), sharey=True)
    for ax, pod_list in zip(axes, POD_LISTS, strict=True):
        for i, (policy, their_name) in enumerate(THEIR_NAMES.items()):
            color = f"C{i}"
            ours = curves.get((pod_list, policy))
            if ours:
                ax.plot(range(len(ours)), ours, color=color, label=f"{policy} (ours)")
            if (pod_list, their_name) in anchor:
                ax.plot(range(131), anchor[(pod_list, their_name)][2], color=color, linestyle=":", alpha=0.8)
        searched = curves.get((pod_list, "search"))
        if searched:
            ax.plot(range(131), searched, color="black", linestyle="--", label="search:fgd (ours)")
        ax.set_xlim(60, 130)
        ax.set_ylim(55, 100)
        ax.set_title(f"openb {pod_list} (dotted: FGD paper)")
        ax.set_xlabel("arrived GPU requests, % of capacity")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("GPU allocation, % of capacity")
    axes[-1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def learned_rows(
    minutes: float, training_seeds: int, train_nodes: int, select_every: int, select_nodes: int,
    select_episodes: int, overrides: dict[str, Any], seeds: int, pod_lists: list[str], published: dict,
) -> list[dict[str, Any]]:  # fmt: skip
    """Train `training_seeds` placements and judge each on every pod list at seeds 42...,
    beside `fgd` on the same episodes."""
    import tempfile

    from policy_quality import train_and_select

    from worker.rl.inference import PPOPolicy, load_module
    from worker.sim.allocation import allocation_curve, inflation_scenario, run_inflation
    from worker.sim.evaluate import run_episode
    from worker.sim.traces import OPENB_INFLATION, openb_cluster, openb_pod_shapes
    from worker.sim.workloads import WorkloadSpec

    nodes = openb_cluster()
    spec = WorkloadSpec(OPENB_INFLATION, train_nodes, None)
    select_spec = WorkloadSpec(OPENB_INFLATION, select_nodes, None)
    with tempfile.TemporaryDirectory(prefix="fgd-") as tmp:
        checkpoints = [
            train_and_select(
                spec, "allocation", 1, minutes, Path(tmp), seed, overrides, select_every, "openb-inflation",
                select_spec, select_episodes,
            )
            for seed in range(training_seeds)
        ]  # fmt: skip
        policies = [PPOPolicy(load_module(c)) for c in checkpoints]
        rows = []
        for name in pod_lists:
            shapes = openb_pod_shapes(name)
            fgd = [run_inflation(nodes, shapes, "fgd", 42 + s) for s in range(seeds)]
            per_seed = []
            episodes = [(inflation_scenario(nodes, shapes, 42 + s), 42 + s) for s in range(seeds)]
            for policy in policies:
                curves = [allocation_curve(run_episode(policy, sc, 1, e).sim, "rl") for sc, e in episodes]
                per_seed.append([statistics.fmean(c.at(p) for c in curves) for p in (100, 130)])
            their = published.get((name, THEIR_NAMES["fgd"]))
            rows.append(
                {
                    "pod_list": name,
                    "policy": "learned",
                    "ours_100": round(statistics.fmean(p[0] for p in per_seed), 2),
                    "ours_130": round(statistics.fmean(p[1] for p in per_seed), 2),
                    "per_training_seed": [[round(v, 2) for v in p] for p in per_seed],
                    "selected_checkpoints": [Path(c).name for c in checkpoints],
                    "fgd_100": round(statistics.fmean(c.at(100) for c in fgd), 2),
                    "fgd_130": round(statistics.fmean(c.at(130) for c in fgd), 2),
                    "theirs_fgd_100": None if their is None else round(their[0], 2),
                    "theirs_fgd_130": None if their is None else round(their[1], 2),
                    "seeds": seeds,
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def search_policy(options: dict[str, Any], nodes: int):  # -> SearchPolicy
    from worker.contracts.search import SearchOptions
    from worker.search.policy import SearchPolicy
    from worker.sim.heuristics import make_heuristic
    from worker.sim.traces import OPENB_INFLATION
    from worker.sim.workloads import WorkloadSpec

    futures = WorkloadSpec(OPENB_INFLATION, nodes, None)
    return SearchPolicy(make_heuristic("fifo+fgd"), SearchOptions(**(SEARCH_FIXED | options)), futures)


def allocation_at(policy: Any, scenario: Any, seed: int) -> Any:  # -> AllocationCurve
    from worker.sim.allocation import allocation_curve
    from worker.sim.evaluate import run_episode

    return allocation_curve(run_episode(policy, scenario, 1, seed, ENV_OPTIONS).sim, policy.name)


def select_search(grid: list[dict[str, Any]], episodes: int, nodes: int) -> dict[str, Any]:
    """The option set of `grid` with the highest mean allocation (at 100% and 130%) on
    training-side episodes of the whole cluster, beside `fgd` on the same episodes."""
    from policy_quality import VALIDATION_SEED_OFFSET

    from worker.sim.heuristics import make_heuristic
    from worker.sim.traces import OPENB_INFLATION
    from worker.sim.workloads import WorkloadSpec, make_scenario

    seeds = [VALIDATION_SEED_OFFSET + i for i in range(episodes)]
    spec = WorkloadSpec(OPENB_INFLATION, nodes, None)
    scenarios = [make_scenario(spec, s) for s in seeds]

    def mean_at(policy: Any) -> tuple[float, float]:
        curves = [allocation_at(policy, sc, s) for sc, s in zip(scenarios, seeds, strict=True)]
        return statistics.fmean(c.at(100) for c in curves), statistics.fmean(c.at(130) for c in curves)

    fgd = mean_at(make_heuristic("fifo+fgd"))
    runs = []
    for options in grid:
        search = search_policy(options, nodes)
        started = time.perf_counter()
        at_100, at_130 = mean_at(search)
        runs.append(
            {
                "options": options,
                "ours_100": round(at_100, 3),
                "ours_130": round(at_130, 3),
                "gain_over_fgd": round((at_100 + at_130 - sum(fgd)) / 2, 3),
                "ms_per_decision": round(search.stats.ms_per_decision, 2),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        print(json.dumps({"selection": runs[-1]}), file=sys.stderr, flush=True)
    best = max(range(len(grid)), key=lambda i: (runs[i]["gain_over_fgd"], -i))
    return {
        "workload": OPENB_INFLATION,
        "nodes": nodes,
        "episodes": episodes,
        "seeds": "policy_quality.VALIDATION_SEED_OFFSET + i (the default pod list)",
        "rule": "the option set with the highest mean allocation at 100% and 130%",
        "fixed": SEARCH_FIXED,
        "fgd_100": round(fgd[0], 3),
        "fgd_130": round(fgd[1], 3),
        "runs": runs,
        "chosen": grid[best],
    }


def search_row(
    name: str,
    nodes: tuple,
    shapes: Any,
    options: dict[str, Any],
    seeds: int,
    fgd: list[float],
    published: dict,
) -> tuple[dict[str, Any], list[float]]:
    """`search:fgd` on the pod list's episodes (seeds 42, ...), and its mean curve; `fgd` is
    FGD's mean curve on the same seeds."""
    from worker.sim.allocation import inflation_scenario

    search = search_policy(options, len(nodes))
    started = time.perf_counter()
    curves = [allocation_at(search, inflation_scenario(nodes, shapes, 42 + s), 42 + s) for s in range(seeds)]
    mean = [statistics.fmean(c.allocated[i] for c in curves) for i in range(131)]
    stats = search.stats
    their = published.get((name, THEIR_NAMES["fgd"]))
    row = {
        "pod_list": name,
        "policy": "search:fgd",
        "ours_100": round(mean[100], 2),
        "ours_130": round(mean[130], 2),
        "theirs_100": None,
        "theirs_130": None,
        "fgd_100": round(fgd[100], 2),
        "fgd_130": round(fgd[130], 2),
        "theirs_fgd_100": None if their is None else round(their[0], 2),
        "theirs_fgd_130": None if their is None else round(their[1], 2),
        "per_seed": [[round(c.at(100), 2), round(c.at(130), 2)] for c in curves],
        "options": search.options.model_dump(),
        "ms_per_decision": round(stats.ms_per_decision, 2),
        "changed_share": round(stats.changed / max(stats.decisions, 1), 5),
        "settled_at_ceiling_share": round(stats.at_ceiling / max(stats.decisions, 1), 4),
        "seeds": seeds,
        "seconds": round(time.perf_counter() - started, 1),
    }
    return row, mean


def main(
    seeds: int = typer.Option(10, min=1, max=10, help="Seeds 42, 43, ... (theirs: 42-51)."),
    pod_list: list[str] = typer.Option(list(POD_LISTS), help="Pod lists (repeat)."),
    policy: list[str] = typer.Option(list(THEIR_NAMES), help="Placers (repeat)."),
    anchor: Path = typer.Option(None, help="Their CSV; default ../shared/anchors/fgd_allocation_openb.csv."),
    out: Path | None = typer.Option(None, help="Where the JSON and the PNG go (default benchmarks/results)."),
    train_minutes: float = typer.Option(0.0, help="Train a learned placement this long per seed (0: none)."),
    training_seeds: int = typer.Option(3, min=1, help="Training seeds of the learned placement (0, 1, ...)."),
    train_nodes: int = typer.Option(152, min=1, help="openb nodes per training episode (an eighth: 152)."),
    select_every: int = typer.Option(0, help="Save every N iterations, keep the best on selection episodes."),
    select_nodes: int = typer.Option(0, min=0, help="openb nodes per selection episode (0: --train-nodes)."),
    select_episodes: int = typer.Option(10, min=1, help="Selection episodes per checkpoint."),
    overrides: str = typer.Option("{}", help='PPOHyperparams fields as JSON, e.g. {"prior": "fifo+fgd"}.'),
    search: bool = typer.Option(False, help="Add search:fgd rows (hours on the whole cluster)."),
    search_validation: int = typer.Option(2, min=1, help="Training-side episodes the search is chosen on."),
    search_grid: str = typer.Option(
        "", help="JSON list of option sets to choose from (default: SEARCH_GRID)."
    ),
    search_options: str = typer.Option("", help="JSON SearchOptions fields: use them, choose nothing."),
    search_seeds: int = typer.Option(
        0, min=0, max=10, help="Seeds of the search rows, the first of --seeds (0: all of them)."
    ),
    quick: bool = typer.Option(False, help="One seed, a slice of the cluster, a temporary --out."),
) -> None:
    from worker.sim.allocation import run_inflation
    from worker.sim.traces import openb_cluster, openb_pod_shapes, traces_dir

    if quick:
        seeds, search_validation = 1, 1
        out = out or Path(tempfile.mkdtemp(prefix="fgd-quick-"))
    out = out or Path("benchmarks/results")
    anchor = anchor or traces_dir().parent / "anchors" / "fgd_allocation_openb.csv"
    published = theirs(anchor) if anchor.is_file() else {}
    if train_minutes > 0:
        select_nodes = select_nodes or train_nodes
        rows = learned_rows(
            train_minutes, training_seeds, train_nodes, select_every, select_nodes, select_episodes,
            json.loads(overrides), seeds, pod_list, published,
        )  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        document = {
            **provenance(),
            "rows": rows,
            "train_minutes": train_minutes,
            "training_seeds": training_seeds,
            "train_nodes": train_nodes,
            "select_every": select_every,
            "select_nodes": select_nodes,
            "select_episodes": select_episodes,
            "overrides": json.loads(overrides),
        }
        (out / "fgd_allocation_learned.json").write_text(json.dumps(document, indent=1) + "\n")
        print(json.dumps(document))
        return
    nodes = openb_cluster()[:QUICK_NODES] if quick else openb_cluster()
    selection: dict[str, Any] | None = None
    chosen: dict[str, Any] = {}
    if search and search_options:
        chosen = json.loads(search_options)
        selection = {"chosen": chosen, "rule": "given with --search-options"}
    elif search:
        grid = json.loads(search_grid) if search_grid else SEARCH_GRID
        selection = select_search(grid[:1] if quick else grid, search_validation, len(nodes))
        chosen = selection["chosen"]
    rows: list[dict[str, Any]] = []
    curves: dict[tuple[str, str], list[float]] = {}
    fgd_runs: list[Any] = []
    for name in pod_list:
        shapes = openb_pod_shapes(name)
        placers = list(dict.fromkeys([*policy, "fgd"])) if search else policy
        for placer in placers:
            started = time.perf_counter()
            runs = [run_inflation(nodes, shapes, placer, 42 + s) for s in range(seeds)]
            if placer == "fgd":
                fgd_runs = runs
            mean = [statistics.fmean(r.allocated[i] for r in runs) for i in range(131)]
            curves[(name, placer)] = mean
            their = published.get((name, THEIR_NAMES[placer]))
            rows.append(
                {
                    "pod_list": name,
                    "policy": placer,
                    "ours_100": round(mean[100], 2),
                    "ours_130": round(mean[130], 2),
                    "theirs_100": None if their is None else round(their[0], 2),
                    "theirs_130": None if their is None else round(their[1], 2),
                    "seeds": seeds,
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        if search:
            searched = min(search_seeds or seeds, seeds)
            fgd = [statistics.fmean(r.allocated[i] for r in fgd_runs[:searched]) for i in range(131)]
            row, curves[(name, "search")] = search_row(name, nodes, shapes, chosen, searched, fgd, published)
            rows.append(row)
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    document = {**provenance(), "rows": rows, "nodes": len(nodes), "inflation": 1.3}
    if selection is not None:
        document["search_selection"] = selection
    (out / "fgd_allocation.json").write_text(json.dumps(document, indent=1) + "\n")
    plot(curves, published, out / "fgd_allocation.png")
    print(json.dumps(document))


if __name__ == "__main__":
    typer.run(main)
