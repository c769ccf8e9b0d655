"""Deploying a search: `PUT /policy/{class}` with `search:<base>` answers 202 and a workflow
measures the search on the class's held-out league on the worker; it lands (and `best`
plans are then the search's) only when it beat the best heuristic there, or when forced.

Real parts: the session's Temporal dev server, the worker's real training and inference
Workers (worker.main.build_workers) in a thread, the app with its lifespan. The class's
workload is tiny (4 nodes, 40 jobs, 3 held-out episodes) and the search's budget never
binds, so the measurement is deterministic and takes seconds."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.inference_thread import worker_thread

from app.core.config import Settings
from app.main import create_app

pytestmark = pytest.mark.integration

CLUSTER = {
    "nodes": [{"id": "a", "cpus": 16, "gpus": {"p5": 8}}, {"id": "b", "cpus": 16, "gpus": {"p4": 4}}],
    "jobs": [
        {
            "id": f"j{i}",
            "cpus": 2,
            "gpus": 1 + i % 3,
            "runtime_estimate_s": 600 + 200 * i,
            "deadline_s": 1500 + 300 * i,
        }
        for i in range(8)
    ],
}
LEAGUE = {"workload": {"name": "steady", "nodes": 4, "jobs": 40, "window": 8}, "eval_episodes": 3, "seed": 2}
"""A tiny class whose held-out episodes `search:tuned` (OPTIONS) wins (by +0.0245, measured)."""
OPTIONS = {"candidates": 12, "depth": 1, "budget_ms": 10_000}
FALLBACK = Settings.model_fields["fallback_heuristic"].default


@pytest.fixture
def client(temporal_address: str, tmp_path: Path) -> Iterator[TestClient]:
    """A fresh pair of queues per test: its own service workflow, nothing deployed."""
    prefix = f"dsr-{uuid.uuid4().hex[:6]}-"
    settings = Settings(
        data_dir=tmp_path,
        temporal_address=temporal_address,
        task_queue_prefix=prefix,
        schedule_timeout_s=30,
        reconcile_interval_s=0,
    )
    with (
        worker_thread(temporal_address, prefix, "all", ready_timeout_s=30),
        TestClient(create_app(settings)) as test_client,
    ):
        yield test_client


def measured(client: TestClient, policy_class: str, body: dict) -> dict:
    """PUT the search, then poll where the 202 says until it is no longer being measured."""
    accepted = client.put(f"/policy/{policy_class}", json=body)
    assert accepted.status_code == 202, accepted.text
    pending = accepted.json()
    assert pending["status"] == "evaluating" and pending["policy"] == body["policy"]
    assert accepted.headers["location"] == f"/policy-deployments/{pending['id']}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        state = client.get(accepted.headers["location"]).json()
        if state["status"] != "evaluating":
            return state
        time.sleep(0.5)
    raise AssertionError(f"still measuring after 180 s: {state}")


def plan(client: TestClient, **extra: object) -> dict:
    answer = client.post("/schedule", json={**CLUSTER, **extra})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_search_that_beats_the_best_heuristic_is_deployed_and_serves_best(client: TestClient) -> None:
    state = measured(client, "steady", {"policy": "search:tuned", "search": OPTIONS, "league": LEAGUE})
    assert state["status"] == "deployed", state
    assert state["margin"] > 0 and state["detail"] is None
    assert state["episodes"] == 3 and state["workload"]["nodes"] == 4
    assert state["seed"] == (2 + 1_000_000_007) % (2**31 - 1)  # a run with seed 2 evaluates there
    league = state["evaluation"]
    assert state["margin"] == pytest.approx(league["ppo_value"] - league["best_heuristic_score"])
    runs = state["deployment"]["runs"]  # what `tuned` chose for this workload
    assert runs == league["tuned_choice"] and runs

    (shown,) = client.get("/policy").json()["data"]
    assert shown["policy_class"] == "steady" and shown["kind"] == "search" and shown["eligible"]
    assert shown["policy"] == "search:tuned" and shown["search"]["candidates"] == 12
    assert (
        shown["evidence"]["margin"] == pytest.approx(state["margin"]) and shown["evidence"]["run_id"] is None
    )
    assert client.get("/policy").json()["search_deployments"][0]["id"] == state["id"]

    served = plan(client, **{"class": "steady"})
    assert served["policy"] == "search:tuned" and served["checkpoint_id"] is None
    assert (
        "deployed search 'search:tuned'" in served["notes"][0] and f"tuned runs {runs}" in served["notes"][0]
    )
    searched = f"search over {runs}: 12 candidates, 1 rollout(s), depth 1"
    assert any(searched in note for note in served["notes"]), served
    # It is that search, with the options and the window it was measured with.
    explicit = plan(client, policy=f"search:{runs}", search=OPTIONS, window=8)
    assert served["placements"] == explicit["placements"]
    assert plan(client)["policy"] == FALLBACK  # other classes are untouched
    # A workflow per request (`async`) serves the same search, options included.
    queued = client.post("/schedule", json={**CLUSTER, "class": "steady", "async": True})
    assert queued.status_code == 202, queued.text
    deadline = time.monotonic() + 60
    while (done := client.get(f"/schedule/{queued.json()['id']}").json())["status"] == "running":
        assert time.monotonic() < deadline, done
        time.sleep(0.2)
    assert done["placements"] == explicit["placements"], done
    assert any(searched in note for note in done["notes"]), done

    page = client.get("/ui/policies")
    assert page.status_code == 200 and "search:tuned" in page.text and "deployed" in page.text


def test_a_search_that_does_not_beat_the_best_heuristic_is_refused_unless_forced(client: TestClient) -> None:
    """`search:fifo` with one candidate is fifo itself: never above the league's best."""
    body = {"policy": "search:fifo", "search": {"candidates": 1}, "league": LEAGUE}
    state = measured(client, "steady", body)
    assert state["status"] == "refused" and state["deployment"] is None, state
    assert state["margin"] <= 0
    assert f"margin {state['margin']:+.4f}" in state["detail"] and "force" in state["detail"]
    assert client.get("/policy").json()["count"] == 0
    assert plan(client, **{"class": "steady"})["policy"] == FALLBACK  # never served by `best`

    forced = measured(client, "steady", {**body, "force": True})
    assert forced["status"] == "deployed" and forced["margin"] == pytest.approx(state["margin"])
    assert forced["deployment"]["forced"] and not forced["deployment"]["eligible"]
    served = plan(client, **{"class": "steady"})
    assert served["policy"] == "search:fifo" and "forced: NOT eligible" in served["notes"][0]


def test_a_base_that_does_not_apply_to_the_workload_fails_saying_why(client: TestClient) -> None:
    """A deadline rule on a workload without deadlines is refused as the heuristic is."""
    lublin = {"workload": {"name": "trace:lublin-1", "nodes": 1, "jobs": 40}, "eval_episodes": 1}
    state = measured(client, "trace:lublin-1", {"policy": "search:edf", "league": lublin})
    assert state["status"] == "failed" and "does not apply" in state["detail"], state
    assert client.get("/policy").json()["count"] == 0
