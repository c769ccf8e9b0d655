"""Search over the distilled policy against search over `tuned`, at the same options.

How to run, after `benchmarks/policy_quality.py --distill ... --keep DIR --out
benchmarks/results/policy_quality_distill.json` kept the runs' checkpoints:
`.venv/bin/python benchmarks/distilled_search.py --workload steady [--options '{"depth": 1}'
--episodes 20]`. Every training seed's final checkpoint of that workload (the `training`
rows of the JSON) is the base of one `search:<checkpoint>` (its top pairs by logit are the
candidates, it plays the rollouts); each is judged in one league with `search:tuned` at the
same options, the standard heuristics and the empty-cluster bound, on the held-out episodes
of policy_quality's rows. The result is merged into the same JSON as `"searches"`.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import typer
from provenance import provenance

sys.path.insert(0, str(Path(__file__).parent))
from policy_quality import EVALUATED_ON, workload_spec

RESULTS = Path(__file__).parent / "results" / "policy_quality_distill.json"
EVAL_SEED = 20_240_601
JOBS = 200
WINDOW = 32


def main(
    workload: str = typer.Option(..., help="A training workload of the JSON's runs."),
    nodes: int = 16,
    episodes: int = typer.Option(20, min=1, help="Held-out episodes."),
    options: str = typer.Option('{"depth": 1}', help="JSON SearchOptions for both searches."),
    out: Path = RESULTS,
) -> None:
    from worker.contracts.search import SearchOptions
    from worker.rl.inference import PPOPolicy, load_module
    from worker.search.policy import SearchPolicy
    from worker.sim.heuristics.tuned import make_tuned
    from worker.sim.league import run_league

    document = json.loads(out.read_text())
    runs = [t for t in document["training"] if t["workload"] == workload]
    if not runs:
        raise typer.BadParameter(f"no training run of {workload!r} in {out}")
    judged_on = EVALUATED_ON.get(workload, [workload])[0]
    spec = workload_spec(judged_on, nodes, JOBS)
    settings = SearchOptions(**json.loads(options))
    plain = [PPOPolicy(load_module(t["checkpoint"]), f"ppo-{t['seed']}") for t in runs]
    distilled = [SearchPolicy(p, settings, workload=spec) for p in plain]
    over_tuned = SearchPolicy(make_tuned(spec, WINDOW), settings, workload=spec)
    league = run_league(spec, WINDOW, episodes, EVAL_SEED, "standard", [*plain, *distilled, over_tuned])
    scores = [league.row(p.name).value for p in distilled]
    row = {
        "workload": judged_on,
        "trained_on": workload,
        "nodes": nodes,
        "episodes": episodes,
        "options": settings.model_dump(),
        "policy_scores": [round(league.row(p.name).value, 4) for p in plain],
        "search_scores": [round(s, 4) for s in scores],
        "search_mean": round(statistics.fmean(scores), 4),
        "search_gap_closed": [league.row(p.name).gap_closed for p in distilled],
        "search_ms_per_decision": [round(p.stats.ms_per_decision, 2) for p in distilled],
        "search_tuned_score": round(league.row(over_tuned.name).value, 4),
        "search_tuned_gap_closed": league.row(over_tuned.name).gap_closed,
        "search_tuned_ms_per_decision": round(over_tuned.stats.ms_per_decision, 2),
        "best_heuristic": league.best_heuristic,
        "best_heuristic_score": round(league.best_heuristic_score, 4),
        "bound": None if league.bound is None else round(league.bound, 4),
        **provenance(),
    }
    print(json.dumps(row), flush=True)
    document = json.loads(out.read_text())
    kept = [s for s in document.get("searches", []) if (s["trained_on"], s["nodes"]) != (workload, nodes)]
    document["searches"] = [*kept, row]
    out.write_text(json.dumps(document, indent=1) + "\n")


if __name__ == "__main__":
    typer.run(main)
