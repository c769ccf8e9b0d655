"""Training schedules without a Temporal server: validation names the field (cron and
intervals are checked by the app, before Temporal is asked), unknown ids are 404, the
API key guards the routes, and Temporal being down is 503 for what needs it and a stale
read for GET. The schedules against a real server are in tests/integration/test_training_schedules.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from support.api import PROBLEM, offline_settings

from app.core.durations import format_duration, parse_duration
from app.main import create_app
from app.models import TrainingSchedule
from worker.contracts import scheduled_run_id, training_schedule_id

RUN = {"max_rounds": 1, "iterations_per_round": 1}


def problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    return response.json()


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"cron": "61 * * * *"}, "cron", "not a cron expression"),
        ({"cron": "every night"}, "cron", "not a cron expression"),
        ({"cron": "0 3 * * * *"}, "cron", "5 fields"),
        ({"every": "30x"}, "every", "not a duration"),
        ({"every": "0s"}, "every", "between 1s"),
        ({"every": "-5s"}, "every", "not a duration"),
        ({"every": "30s", "jitter": "soon"}, "jitter", "not a duration"),
        ({"every": "30s", "overlap": "sometimes"}, "overlap", ""),
        ({"every": "30s", "run": {**RUN, "max_rounds": 0}}, "run.max_rounds", ""),
    ],
)
def test_bad_schedule_is_422_naming_the_field(client: TestClient, body: dict, field: str, words: str) -> None:
    response = client.post("/training-schedules", json={"name": "bad", "run": RUN, **body})
    answer = problem(response, 422)
    assert answer["detail"].startswith(f"{field}:") and words in answer["detail"], answer
    assert [".".join(map(str, e["loc"])) for e in answer["errors"]] == [field]


@pytest.mark.parametrize("spec", [{}, {"every": "30s", "cron": "0 3 * * *"}])
def test_exactly_one_of_every_and_cron(client: TestClient, spec: dict) -> None:
    answer = problem(client.post("/training-schedules", json={"name": "x", "run": RUN, **spec}), 422)
    assert "exactly one of `every`" in answer["detail"]


def test_unknown_schedule_is_404_everywhere(client: TestClient) -> None:
    for method, path in [
        ("GET", "/training-schedules/nope"),
        ("POST", "/training-schedules/nope/pause"),
        ("POST", "/training-schedules/nope/unpause"),
        ("POST", "/training-schedules/nope/trigger"),
        ("DELETE", "/training-schedules/nope"),
    ]:
        answer = problem(client.request(method, path), 404)
        assert "no training schedule 'nope'" in answer["detail"]


def test_temporal_down_is_503_for_changes_and_stale_for_reads(client: TestClient) -> None:
    valid = {"name": "nightly", "cron": "0 3 * * *", "run": RUN}
    answer = problem(client.post("/training-schedules", json=valid), 503)
    assert "unreachable" in answer["detail"]
    assert client.get("/training-schedules").json() == {"data": [], "count": 0}  # nothing half-made
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        session.add(
            TrainingSchedule(
                id="abc", name="kept", temporal_id=training_schedule_id("abc"), every_s=90, run=RUN
            )
        )
        session.commit()
    read = client.get("/training-schedules/abc").json()
    assert read["stale"] is True and read["state"] is None and read["every"] == "1m30s"
    for action in ("pause", "unpause", "trigger"):
        problem(client.post(f"/training-schedules/abc/{action}"), 503)
    problem(client.delete("/training-schedules/abc"), 503)
    assert client.get("/training-schedules").json()["count"] == 1


def test_api_key_guards_schedules(tmp_path: Path) -> None:
    with TestClient(create_app(offline_settings(tmp_path, api_key="s3cret"))) as locked:
        problem(locked.get("/training-schedules"), 401)
        problem(locked.post("/training-schedules", json={"name": "x", "every": "1m", "run": RUN}), 401)
        problem(locked.post("/training-schedules/x/trigger"), 401)
        ok = locked.get("/training-schedules", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


def test_durations_round_trip() -> None:
    assert parse_duration("1h30m").total_seconds() == 5400
    assert format_duration(parse_duration("90s")) == "1m30s"
    assert format_duration(parse_duration("1d")) == "1d"


def test_scheduled_run_ids_come_from_the_workflow_id() -> None:
    fired = f"{training_schedule_id('0a1b2c3d4e5f')}-2026-11-24T03:00:00Z"
    assert scheduled_run_id(fired) == "0a1b2c3d4e5f-20261124T030000Z"
    # Any other id: the first 12 hex digits of its sha256, the same in the workflow and the app.
    assert scheduled_run_id("started-by-hand") == "577b6e8bf0d3"
    assert scheduled_run_id("started-by-hand-2") != scheduled_run_id("started-by-hand")
