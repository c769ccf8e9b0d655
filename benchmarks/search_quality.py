"""Search quality: `search:<base>` beside the standard league and the empty-cluster bound.

How to run (one process at a time on a shared machine; each call merges its rows into
`benchmarks/results/search_quality.json`, so the table fills over several runs):

- `.venv/bin/python benchmarks/search_quality.py quality --workload steady [--nodes 16
  --episodes 20 --options '{"margin": 1}']`: the standard heuristics, `tuned` and
  `search:tuned` with the default options (or `--options`) on the same held-out episodes
  as benchmarks/policy_quality.py (seed 20240601, 200 jobs, window 32; traces at load
  0.9); prints the row `{"workload", "nodes", "search": {"policy", "options", "score",
  "ms_per_decision", "changed_share"}, "best_heuristic", "best_heuristic_score",
  "tuned_score", "bound", "gap_closed", "beats_best_heuristic"}`.
- `.venv/bin/python benchmarks/search_quality.py select [--workload steady ...
  --episodes 8]`: how the defaults were chosen: every option set of `GRID` against
  `tuned` on training-side validation episodes (the training split for traces; seeds
  from policy_quality's VALIDATION_SEED_OFFSET, never a held-out episode); the chosen set
  has the best mean gain over `tuned` across all of them. Recorded as `"selection"`.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import typer

sys.path.insert(0, str(Path(__file__).parent))
from policy_quality import VALIDATION_SEED_OFFSET, workload_spec

RESULTS = Path(__file__).parent / "results" / "search_quality.json"
EVAL_SEED = 20_240_601
"""benchmarks/policy_quality.py's held-out episodes."""
JOBS = 200
WINDOW = 32
SELECTION_WORKLOADS = ["steady", "deadline-tight", "bursty", "trace:alibaba-default:heldout"]
"""Selection runs on their training side (the held-out trace's training split)."""
GRID: list[dict[str, Any]] = [
    {"margin": 0.0},
    {"margin": 0.5},
    {"margin": 1.0},
    {"margin": 2.0},
    {"margin": 1.0, "candidates": 24},
    {"runtimes": "sampled", "rollouts": 8, "z": 1.0, "budget_ms": 1000},
    {"runtimes": "sampled", "rollouts": 8, "z": 2.0, "budget_ms": 1000},
    {"margin": 1.0, "futures": "sampled", "rollouts": 4, "horizon": 40, "budget_ms": 1000},
]

app = typer.Typer(add_completion=False)


def load(path: Path) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text())
    return {"workloads": [], "selection": None, "budget_curve": [], "cost": [], "plans": None}


def save(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n")


def make_search(base_name: str, spec: Any, options: dict[str, Any]):  # -> SearchPolicy
    from worker.search.options import SearchOptions
    from worker.search.policy import SearchPolicy
    from worker.sim.league import build_heuristics

    built, skipped = build_heuristics([base_name], spec, WINDOW)
    if skipped:
        raise typer.BadParameter(f"base {base_name!r} does not apply to {spec.name}")
    return SearchPolicy(built[0], SearchOptions(**options), workload=spec)


@app.command()
def quality(
    workload: str = typer.Option(..., help="One workload per call (a preset or trace name)."),
    nodes: int = 16,
    episodes: int = typer.Option(20, min=1, help="Held-out episodes."),
    base: str = typer.Option("tuned", help="The search's base policy (a heuristic name or tuned)."),
    options: str = typer.Option("{}", help="JSON object of SearchOptions fields (default: the defaults)."),
    out: Path = RESULTS,
) -> None:
    from worker.sim.bound import gap_closed
    from worker.sim.league import run_league

    spec = workload_spec(workload, nodes, JOBS)
    search = make_search(base, spec, json.loads(options))
    started = time.perf_counter()
    league = run_league(spec, WINDOW, episodes, EVAL_SEED, "standard", [search])
    score = league.row(search.name).value
    tuned = next((r for r in league.rows if r.chose), None)
    best = league.best_heuristic_score
    gap = None if league.bound is None else gap_closed(score, best, league.bound)
    stats = search.stats
    row = {
        "workload": workload,
        "nodes": nodes,
        "load": spec.load,
        "episodes": episodes,
        "eval_seed": EVAL_SEED,
        "search": {
            "policy": search.name,
            "options": search.options.model_dump(),
            "score": round(score, 4),
            "ms_per_decision": round(stats.ms_per_decision, 2),
            "changed_share": round(stats.changed / max(stats.decisions, 1), 4),
            "out_of_time_share": round(stats.out_of_time / max(stats.decisions, 1), 4),
        },
        "best_heuristic": league.best_heuristic,
        "best_heuristic_score": round(best, 4),
        "tuned_choice": None if tuned is None else tuned.chose,
        "tuned_score": None if tuned is None else round(tuned.value, 4),
        "bound": None if league.bound is None else round(league.bound, 4),
        "gap_closed": None if gap is None else round(gap, 3),
        "beats_best_heuristic": score > best,
        "seconds": round(time.perf_counter() - started, 1),
        "command": " ".join(["benchmarks/search_quality.py", *sys.argv[1:]]),
    }
    print(json.dumps(row), flush=True)
    document = load(out)
    key = (workload, nodes, base)
    document["workloads"] = [
        r
        for r in document["workloads"]
        if (r["workload"], r["nodes"], r["search"]["policy"].removeprefix("search:")) != key
    ] + [row]
    save(out, document)


def scores_of(policy: Any, scenarios: list[Any], seeds: list[int]) -> list[float]:
    from worker.sim.evaluate import run_episode

    return [
        run_episode(policy, sc, WINDOW, s).metrics().score for sc, s in zip(scenarios, seeds, strict=True)
    ]


@app.command()
def select(
    workload: list[str] = typer.Option(SELECTION_WORKLOADS, help="Workloads to choose on (repeat)."),
    nodes: int = 16,
    episodes: int = typer.Option(8, min=1, help="Validation episodes per workload."),
    grid: str = typer.Option("", help="JSON list of option sets (default: GRID)."),
    out: Path = RESULTS,
) -> None:
    from worker.sim.heuristics.tuned import make_tuned, tuning_spec
    from worker.sim.workloads import make_scenario

    option_sets = json.loads(grid) if grid else GRID
    gains: dict[int, list[float]] = {i: [] for i in range(len(option_sets))}
    per_workload = []
    for name in workload:
        spec = workload_spec(name, nodes, JOBS)
        validation = tuning_spec(spec)
        seeds = [VALIDATION_SEED_OFFSET + EVAL_SEED + i for i in range(episodes)]
        scenarios = [make_scenario(validation, s) for s in seeds]
        tuned = make_tuned(spec, WINDOW)
        base_scores = scores_of(tuned, scenarios, seeds)
        entry: dict[str, Any] = {
            "workload": name,
            "validated_on": validation.name,
            "tuned_choice": tuned.choice.choice,
            "tuned_score": round(statistics.fmean(base_scores), 4),
            "runs": [],
        }
        for i, options in enumerate(option_sets):
            search = make_search("tuned", spec, options)
            scores = scores_of(search, scenarios, seeds)
            gain = [a - b for a, b in zip(scores, base_scores, strict=True)]
            gains[i] += gain
            run = {
                "options": options,
                "score": round(statistics.fmean(scores), 4),
                "gain_over_tuned": round(statistics.fmean(gain), 4),
                "episodes_below_tuned": sum(g < -1e-9 for g in gain),
                "ms_per_decision": round(search.stats.ms_per_decision, 2),
            }
            entry["runs"].append(run)
            print(json.dumps({"workload": name, **run}), file=sys.stderr, flush=True)
        per_workload.append(entry)
    chosen = max(range(len(option_sets)), key=lambda i: (statistics.fmean(gains[i]), -i))
    selection = {
        "episodes": episodes,
        "nodes": nodes,
        "seeds": f"VALIDATION_SEED_OFFSET + {EVAL_SEED} + i, i < {episodes}",
        "rule": "the option set with the best mean gain over tuned across all validation episodes",
        "chosen": option_sets[chosen],
        "mean_gain": {json.dumps(option_sets[i]): round(statistics.fmean(g), 4) for i, g in gains.items()},
        "workloads": per_workload,
        "command": " ".join(["benchmarks/search_quality.py", *sys.argv[1:]]),
    }
    print(json.dumps(selection), flush=True)
    document = load(out)
    document["selection"] = selection
    save(out, document)


if __name__ == "__main__":
    app()
