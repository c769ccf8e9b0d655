"""The dashboard's pages from the index (Temporal unreachable on purpose: pages answer
from what the reconciler stored), the Gantt chart of a stored plan, and the login that
puts the API key in a cookie. tests/integration/test_dashboard.py loads the same pages
in a real browser against a real stack."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session
from support.api import offline_settings
from test_history import apply, summary

from app.main import create_app
from app.models import Cluster, ClusterTick, Plan
from app.ui.auth import COOKIE
from worker.contracts import TrainingProgress
from worker.contracts.clusters import AppliedDecision, ClusterConfig, SkippedJob, TickRecord


def make_client(tmp_path: Path, api_key: str | None = None) -> TestClient:
    return TestClient(create_app(offline_settings(tmp_path, api_key=SecretStr(api_key) if api_key else None)))


def store_plan(client: TestClient) -> str:
    placements = [
        {
            "job_id": f"j{i}",
            "node_id": f"n{i % 3}",
            "gpu_type": "p5",
            "start_s": 100.0 * i,
            "finish_s": 100.0 * i + 250,
            "meets_deadline": i != 4,
            "priority": 1 + i % 3,
        }
        for i in range(6)
    ]
    metrics = {
        "score": 0.8,
        "mean_bounded_slowdown": 1.2,
        "p95_bounded_slowdown": 2.0,
        "mean_wait": 30.0,
        "gpu_utilization": 0.5,
        "cpu_utilization": 0.3,
        "makespan": 750.0,
        "jobs_finished": 6,
        "deadline_misses": 1,
        "unschedulable": 1,
    }
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        session.add(
            Plan(
                id="plan1",
                workflow_id="schedule-plan1",
                status="completed",
                requested_policy="best",
                policy="sjf+fastest",
                nodes=3,
                jobs=7,
                notes=["nothing deployed for class 'default'"],
                result={
                    "placements": placements,
                    "unplaced": [{"job_id": "huge", "reason": "needs 16 GPUs"}],
                    "metrics": metrics,
                    "baseline": None,
                },
            )
        )
        session.commit()
    return "plan1"


def test_pages_render_runs_curves_league_and_gantt(client: TestClient) -> None:
    apply(
        client,
        TrainingProgress(run_id="h1", rounds_done=2, rounds=[summary(1, 0.6, True), summary(2, 0.7, True)]),
    )
    runs = client.get("/ui")
    assert runs.status_code == 200 and "text/html" in runs.headers["content-type"]
    assert 'href="/ui/runs/h1"' in runs.text and "completed" in runs.text

    run = client.get("/ui/runs/h1").text
    assert 'id="round-scores"' in run and 'id="iteration-returns"' in run and run.count("<svg") == 2
    assert "best heuristic" in run and "empty-cluster bound" in run and "h1-r2" in run

    assert "search over PPO" not in run and "Its search" not in run  # the run evaluated none
    assert "Distill CE" not in run

    league = client.get("/ui/league").text
    assert "trace:alibaba-default:heldout" in league and "h1-r1" in league and "edf" in league

    store_plan(client)
    plan = client.get("/ui/plans/plan1").text
    assert 'id="gantt"' in plan and "<svg" in plan and "misses deadline (1)" in plan
    assert "priority 3" in plan and "needs 16 GPUs" in plan
    assert 'href="/ui/plans/plan1"' in client.get("/ui/plans").text
    old = client.get("/ui/schedules/plan1", follow_redirects=False)  # the page's first address
    assert old.status_code == 308 and old.headers["location"] == "/ui/plans/plan1"
    assert client.get("/ui/schedules", follow_redirects=False).headers["location"] == "/ui/plans"

    policies = client.get("/ui/policies")  # Temporal is down: the page says so
    assert policies.status_code == 200 and "Could not ask the scheduler service" in policies.text
    assert client.get("/ui/plans/nope").status_code == 404


def test_a_run_page_shows_each_rounds_search_beside_its_policy(client: TestClient) -> None:
    gate = {
        1: {"validation_score": 0.965, "accepted": True},
        2: {"validation_score": 0.731, "accepted": False},
    }
    rounds = [
        summary(r, 0.6 + r / 100, True).model_copy(update={"search_score": 0.7 + r / 100} | gate[r])
        for r in (1, 2)
    ]
    last = rounds[-1].iterations[-1]
    rounds[-1].iterations[-1] = last.model_copy(
        update={"distill_cross_entropy": 1.5, "distill_agreement": 0.75, "distill_episodes": 8}
        | {"distill_decisions": 2999}
    )
    apply(client, TrainingProgress(run_id="h1", rounds_done=2, rounds=rounds))
    run = client.get("/ui/runs/h1").text
    assert "search over PPO" in run  # the curve over rounds
    table = run[run.index('<table id="rounds">') : run.index("</table>", run.index('<table id="rounds">'))]
    assert "Its search" in table and 'title="search:h1-r2"' in table and "0.7200" in table
    assert "Validation" in table and "0.9650" in table and "0.7310" in table
    assert table.index(">kept<") < table.index(">not kept<"), "round 2 is marked as not kept by the gate"
    detail = client.get("/training-runs/h1").json()
    verdicts = [(r["validation_score"], r["accepted"]) for r in detail["rounds"]]
    assert verdicts == [(0.965, True), (0.731, False)]
    assert "Distill CE" in run and "8 / 2999" in run
    assert "search:h1-r2" in client.get("/ui/league").text


def test_dashboard_wants_the_api_key_when_one_is_set(tmp_path: Path) -> None:
    with make_client(tmp_path, api_key="s3cret") as client:
        first = client.get("/ui/league", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"].startswith(
            "/ui/login?next=%2Fui%2Fleague"
        )
        assert client.get("/ui/login").status_code == 200

        wrong = client.post("/ui/login", data={"key": "nope", "next": "/ui/league"}, follow_redirects=False)
        assert wrong.status_code == 200 and "not right" in wrong.text and COOKIE not in client.cookies

        right = client.post("/ui/login", data={"key": "s3cret", "next": "/ui/league"}, follow_redirects=False)
        assert right.status_code == 303 and right.headers["location"] == "/ui/league"
        cookie = right.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
        assert "s3cret" not in cookie
        assert client.get("/ui/league").status_code == 200
        assert client.get("/training-runs").status_code == 401  # the cookie is no API credential

        client.cookies.clear()
        by_query = client.get("/ui/league?key=s3cret", follow_redirects=False)
        assert by_query.status_code == 303 and by_query.headers["location"] == "/ui/league"
        assert client.get("/ui/league").status_code == 200
        client.cookies.clear()
        assert client.get("/ui", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        offsite = client.post(
            "/ui/login", data={"key": "s3cret", "next": "//evil.example"}, follow_redirects=False
        )
        assert offsite.headers["location"] == "/ui"


def store_cluster(client: TestClient) -> None:
    """A registered cluster and two ticks as the index records them from its loop."""
    config = ClusterConfig(name="lab", endpoint="/etc/slurm/slurm.conf", mode="enforce", interval_s=5)
    when = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    ticks = [
        TickRecord(tick=1, at=when, mode="enforce", error="read_cluster failed: is slurmctld up?"),
        TickRecord(
            tick=2,
            at=when + timedelta(seconds=10),
            mode="enforce",
            policy="easy:edf+fastest",
            nodes=8,
            pending=3,
            decisions=[
                AppliedDecision(job_id="101", action="start", node="p5n2", outcome="applied"),
                AppliedDecision(
                    job_id="102",
                    action="start",
                    node="p5n3",
                    outcome="skipped",
                    reason="job 102 is no longer pending",
                ),
            ],
            skipped=[SkippedJob(job_id="103", reason="heterogeneous job")],
        ),
    ]
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        session.add(
            Cluster(
                name="lab",
                workflow_id="cluster-lab",
                endpoint=config.endpoint,
                policy_class="default",
                interval_s=5,
                mode="enforce",
                config=config.model_dump(mode="json"),
                status="stopped",
                ticks=2,
                failed_ticks=1,
                outcomes={"applied": 1, "skipped": 1},
            )
        )
        session.flush()
        for record in ticks:
            session.add(
                ClusterTick(
                    cluster="lab", tick=record.tick, at=record.at, record=record.model_dump(mode="json")
                )
            )
        session.commit()


def test_cluster_pages_show_the_registration_counters_and_decisions(client: TestClient) -> None:
    assert "No cluster registered yet" in client.get("/ui/clusters").text
    store_cluster(client)
    listing = client.get("/ui/clusters").text
    assert 'href="/ui/clusters/lab"' in listing and "stopped" in listing and 'href="/ui/clusters"' in listing

    page = client.get("/ui/clusters/lab")
    assert page.status_code == 200
    decisions = page.text.split('id="decisions"')[1]
    rows = decisions.split("<tr>")[2:]  # newest tick first, after the header
    assert "101" in rows[0] and "p5n2" in rows[0] and "applied" in rows[0]
    assert "102" in rows[1] and "skipped" in rows[1] and "no longer pending" in rows[1]
    assert "103" in rows[2] and "heterogeneous job" in rows[2]
    assert "tick failed" in rows[3] and "is slurmctld up?" in rows[3]
    assert "/etc/slurm/slurm.conf" in page.text and "applied 1" in page.text and "(1 failed)" in page.text
    assert client.get("/ui/clusters/nope").status_code == 404
