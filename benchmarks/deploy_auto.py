"""A distilling run started over the API with `deploy: "auto"` on the real `steady`
workload, end to end: does its checkpoint end up deployed for `steady`, and why.

How to run: `.venv/bin/python benchmarks/deploy_auto.py` (starts the stack `rlsched dev`
runs on free ports, by worker/stack.py; or `--url` for a running one). It posts one
training run (the residual recipe of the expert-iteration benchmark, `ppo.distill` with
its gate, `deploy: "auto"`), follows it round by round (held-out score beside the best
heuristic, the gate's validation score and verdict), then reads `GET /policy` until the
class's deployed policy is one of the run's checkpoints or the offer window passes. The
JSON says which round was deployed, with its margin, or why none was.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import typer
from provenance import provenance

RESULTS = Path(__file__).parent / "results" / "deploy_auto.json"
RECIPE = {"warm_start": "tuned", "prior": "tuned", "entropy_coeff": 0.0, "lr": 3e-4}
"""The residual PPO of policy_quality's expert-iteration rows (`lr_final` is no API field)."""
DISTILL = {"weight": 1.0, "episodes_per_round": 8, "options": {"depth": 1}}


def run_body(
    workload: str, nodes: int, jobs: int, rounds: int, iterations: int, episodes: int
) -> dict[str, Any]:
    return {
        "name": f"deploy-auto-{workload}",
        "workload": {"name": workload, "nodes": nodes, "window": 32, "jobs": jobs},
        "ppo": RECIPE | {"distill": DISTILL},
        "iterations_per_round": iterations,
        "max_rounds": rounds,
        "eval_episodes": episodes,
        "eval_search": {"enabled": False},
        "deploy": "auto",
    }


def follow(http: httpx.Client, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    run = http.post("/training-runs", json=body).raise_for_status().json()
    deadline, seen = time.monotonic() + timeout_s, 0
    while time.monotonic() < deadline:
        detail = http.get(f"/training-runs/{run['id']}").raise_for_status().json()
        for r in detail["rounds"][seen:]:
            print(
                f"round {r['round']}: {r['score']:.4f} vs {r['best_heuristic']} "
                f"{r['best_heuristic_score']:.4f}"
                f" (margin {r['margin']:+.4f}); validation {r['validation_score']}, kept {r['accepted']}",
                file=sys.stderr,
                flush=True,
            )
        seen = len(detail["rounds"])
        if detail["status"] in ("completed", "failed", "cancelled"):
            return detail
        time.sleep(5)
    raise SystemExit(f"run {run['id']} did not finish in {timeout_s:.0f} s")


def deployed_for(http: httpx.Client, policy_class: str, checkpoints: set[str], wait_s: float) -> dict | None:
    """The class's deployment once it is one of `checkpoints` (auto-deploy is offered when
    the app indexes a round), or whatever is deployed when `wait_s` has passed."""
    deadline = time.monotonic() + wait_s
    while True:
        policies = http.get("/policy").raise_for_status().json()["data"]
        found = next((p for p in policies if p["policy_class"] == policy_class), None)
        if (found and found.get("checkpoint_id") in checkpoints) or time.monotonic() > deadline:
            return found
        time.sleep(2)


def measure(url: str, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    started = time.monotonic()
    with httpx.Client(base_url=url, timeout=60) as http:
        detail = follow(http, body, timeout_s)
        checkpoints = {r["checkpoint_id"] for r in detail["rounds"] if r["checkpoint_id"]}
        deployment = deployed_for(http, body["workload"]["name"], checkpoints, wait_s=60)
    keys = (
        "round",
        "checkpoint_id",
        "iteration",
        "score",
        "best_heuristic",
        "best_heuristic_score",
        "margin",
    )
    rounds = [
        {k: r[k] for k in (*keys, "eligible", "validation_score", "accepted")} for r in detail["rounds"]
    ]
    deployed = deployment.get("checkpoint_id") if deployment else None
    ours = deployed in checkpoints
    return {
        "run": body,
        "status": detail["status"],
        "error": detail.get("error"),
        "rounds": rounds,
        "deployed": {k: deployment[k] for k in ("policy", "kind", "margin", "source", "eligible")}
        if deployment
        else None,
        "deployed_from_this_run": ours,
        "deployed_round": next(
            (r["round"] for r in rounds if ours and r["checkpoint_id"] == deployment["policy"]), None
        ),
        "wall_s": round(time.monotonic() - started),
    }


def main(
    url: str | None = typer.Option(None, help="A running API; default: start a stack."),
    workload: str = "steady",
    nodes: int = 16,
    jobs: int = typer.Option(200, help="Jobs per episode, as policy_quality's rows."),
    rounds: int = typer.Option(2, min=1),
    iterations: int = typer.Option(40, min=1, help="PPO iterations per round."),
    episodes: int = typer.Option(10, min=1, help="Held-out evaluation episodes per round."),
    timeout_s: float = 3600.0,
    out: Path = RESULTS,
) -> None:
    body = run_body(workload, nodes, jobs, rounds, iterations, episodes)
    if url is not None:
        result = measure(url, body, timeout_s)
    else:
        from worker.stack import running_stack

        with tempfile.TemporaryDirectory(prefix="rlsched-deploy-") as tmp, running_stack(Path(tmp)) as stack:
            result = measure(stack.api_url, body, timeout_s)
    document = provenance() | result
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    typer.run(main)
