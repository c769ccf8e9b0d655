"""A run's training history in the index: iterations seen live (heartbeat) and again in
the round's summary, and again on the next reconcile pass, are stored once; league rows
per round; GET /training-runs/{id}/metrics pages them as JSON and CSV. Progress is
applied directly, as the reconciler would; Temporal is unreachable on purpose (a read
then answers from the index)."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from app.models import IterationMetric, LeagueEntry, Run
from app.services.history import record_iterations
from app.services.runs import _apply_progress
from worker.contracts import (
    EvaluationResult,
    IterationProgress,
    PolicyMetrics,
    RoundSummary,
    TrainingProgress,
)


def iteration(global_: int, in_round: int, ret: float) -> IterationProgress:
    return IterationProgress(
        iteration=global_,
        iterations_in_round=in_round,
        env_steps=global_ * 256,
        env_steps_per_second=1000.0,
        episode_return_mean=ret,
        episode_score_mean=ret / 10,
        policy_loss=-0.01,
        vf_loss=0.5,
        entropy=2.0 - global_ / 10,
        kl=0.01,
    )


def metrics(policy: str, score: float) -> PolicyMetrics:
    return PolicyMetrics(
        policy=policy,
        score=score,
        mean_bounded_slowdown=2.0,
        p95_bounded_slowdown=5.0,
        mean_wait=10.0,
        gpu_utilization=0.5,
        cpu_utilization=0.4,
        makespan=100.0,
        jobs_finished=40,
    )


def summary(round_: int, score: float, with_evaluation: bool) -> RoundSummary:
    evaluation = None
    if with_evaluation:
        evaluation = EvaluationResult(
            ppo=metrics("ppo", score),
            heuristics=[metrics("edf", 0.5), metrics("fifo", 0.4)],
            best_heuristic="edf",
            best_heuristic_score=0.5,
            gain=score - 0.5,
            bound=0.95,
        )
    return RoundSummary(
        round=round_,
        checkpoint=f"/ckpt/r{round_}",
        iteration=round_ * 2,
        env_steps=round_ * 512,
        score=score,
        best_heuristic="edf",
        best_heuristic_score=0.5,
        gain=score - 0.5,
        heuristic_scores={"edf": 0.5, "fifo": 0.4},
        evaluation=evaluation,
        iterations=[iteration(round_ * 2 - 1, 1, round_ * 10.0), iteration(round_ * 2, 2, round_ * 10.0 + 5)],
    )


def apply(
    client: TestClient, progress: TrainingProgress, live: list[IterationProgress] | None = None
) -> None:
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        run = session.get(Run, "h1") or Run(
            id="h1",
            workflow_id="training-run-h1",
            status="completed",
            config={
                "workload": {"name": "trace:alibaba-default:train", "window": 8},
                "objective": "deadline",
            },
        )
        session.add(run)
        _apply_progress(session, run, progress)
        if live:
            record_iterations(session, run.id, progress.rounds_done + 1, live)
        session.add(run)
        session.commit()


def counts(client: TestClient) -> tuple[int, int]:
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        iterations = session.exec(select(func.count()).select_from(IterationMetric)).one()
        league = session.exec(select(func.count()).select_from(LeagueEntry)).one()
    return iterations, league


def test_each_iteration_and_league_row_is_stored_once(client: TestClient) -> None:
    # Round 2 is running: its first iteration arrives by heartbeat before the round ends.
    apply(
        client,
        TrainingProgress(run_id="h1", rounds_done=1, rounds=[summary(1, 0.6, True)]),
        [iteration(3, 1, 19.0)],
    )
    assert counts(client) == (3, 4)  # ppo, edf, fifo, bound
    # Round 2 ends (its summary repeats iteration 3 with final values); passes repeat.
    done = TrainingProgress(
        run_id="h1", rounds_done=2, rounds=[summary(1, 0.6, True), summary(2, 0.7, False)]
    )
    for _ in range(3):
        apply(client, done)
    assert counts(client) == (4, 4 + 3)  # round 2 without its evaluation: no bound

    page = client.get("/training-runs/h1/metrics?limit=3").json()
    assert page["series"] == "iterations" and page["count"] == 4 and page["next_offset"] == 3
    assert [r["iteration"] for r in page["data"]] == [1, 2, 3]
    assert page["data"][2]["episode_return_mean"] == 20.0 and page["data"][2]["round"] == 2
    rest = client.get("/training-runs/h1/metrics?limit=3&offset=3").json()
    assert [r["iteration"] for r in rest["data"]] == [4] and rest["next_offset"] is None

    rounds = client.get("/training-runs/h1/metrics?series=rounds").json()["data"]
    assert [(r["round"], r["score"], r["bound"]) for r in rounds] == [(1, 0.6, 0.95), (2, 0.7, None)]
    league = client.get("/training-runs/h1/metrics?series=league").json()["data"]
    first = [r for r in league if r["round"] == 1]
    assert {r["policy"]: r["kind"] for r in first} == {
        "ppo": "ppo",
        "edf": "heuristic",
        "fifo": "heuristic",
        "bound": "bound",
    }
    assert all(r["workload"] == "trace:alibaba-default:heldout" for r in league)
    ppo = next(r for r in first if r["policy"] == "ppo")
    assert ppo["checkpoint_id"] == "h1-r1" and ppo["metrics"]["score"] == 0.6


def test_metrics_as_csv_with_paging_headers(client: TestClient) -> None:
    apply(
        client,
        TrainingProgress(run_id="h1", rounds_done=2, rounds=[summary(1, 0.6, True), summary(2, 0.7, True)]),
    )
    response = client.get("/training-runs/h1/metrics?limit=2", headers={"Accept": "text/csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.headers["x-total-count"] == "4"
    assert "offset=2" in response.headers["link"] and 'rel="next"' in response.headers["link"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [int(r["iteration"]) for r in rows] == [1, 2]
    assert {"entropy", "kl", "policy_loss", "vf_loss", "env_steps_per_second", "episode_score_mean"} <= set(
        rows[0]
    )
    rounds = client.get("/training-runs/h1/metrics?series=rounds", headers={"Accept": "text/csv"})
    header = rounds.text.splitlines()[0].split(",")
    assert "bound" in header and "eligible" in header and "heuristic_scores" not in header
    assert "link" not in rounds.headers


def test_a_round_shows_its_policy_its_search_the_best_heuristic_and_the_bound(client: TestClient) -> None:
    # Round 1 as a workflow carrying its evaluation reports it (the search row inside it);
    # round 2's evaluation is no longer carried, its summary keeps the search and the bound.
    first = summary(1, 0.6, True)
    assert first.evaluation is not None
    first.evaluation.search = metrics("search:ppo", 0.75)
    first.evaluation.search_value = 0.75
    second = summary(2, 0.7, False).model_copy(update={"search_score": 0.8, "bound": 0.96})
    distilled = iteration(4, 2, 25.0).model_copy(
        update={
            "distill_cross_entropy": 1.25,
            "distill_value_loss": 0.5,
            "distill_agreement": 0.625,
            "distill_episodes": 8,
            "distill_decisions": 3000,
        }
    )
    second.iterations[-1] = distilled
    apply(client, TrainingProgress(run_id="h1", rounds_done=2, rounds=[first, second]))

    side_by_side = [
        (1, 0.6, "search:h1-r1", 0.75, "edf", 0.5, 0.95),
        (2, 0.7, "search:h1-r2", 0.8, "edf", 0.5, 0.96),
    ]
    keys = ("round", "score", "search", "search_score", "best_heuristic", "best_heuristic_score", "bound")
    detail = client.get("/training-runs/h1").json()
    assert [tuple(r[k] for k in keys) for r in detail["rounds"]] == side_by_side
    series = client.get("/training-runs/h1/metrics?series=rounds").json()["data"]
    assert [tuple(r[k] for k in keys) for r in series] == side_by_side

    league = client.get("/training-runs/h1/metrics?series=league").json()["data"]
    searches = [r for r in league if r["kind"] == "search"]
    assert [(r["round"], r["policy"], r["value"], r["checkpoint_id"]) for r in searches] == [
        (1, "search:ppo", 0.75, "h1-r1"),
        (2, "search:ppo", 0.8, "h1-r2"),
    ]
    assert searches[0]["metrics"]["score"] == 0.75
    assert {(r["round"], r["value"]) for r in league if r["kind"] == "bound"} == {(1, 0.95), (2, 0.96)}

    stored = client.get("/training-runs/h1/metrics?series=iterations").json()["data"][-1]
    assert stored["iteration"] == 4
    assert {k: v for k, v in stored.items() if k.startswith("distill_")} == {
        "distill_cross_entropy": 1.25,
        "distill_value_loss": 0.5,
        "distill_agreement": 0.625,
        "distill_episodes": 8,
        "distill_decisions": 3000,
    }


def test_unknown_run_and_bad_series(client: TestClient) -> None:
    assert client.get("/training-runs/nope/metrics").status_code == 404
    assert client.get("/training-runs/nope/metrics?series=bogus").status_code == 422
