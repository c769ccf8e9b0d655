"""`PUT /policy/{class}` with a search: what cannot be measured or served is a 422 naming the
field before anything starts (Temporal deliberately unreachable: the app alone answers),
as POST /schedule answers the same names and options."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

TINY = {"workload": {"name": "steady", "nodes": 4, "jobs": 40, "window": 8}, "eval_episodes": 1}


@pytest.mark.parametrize(
    ("policy_class", "body", "field"),
    [
        ("steady", {"policy": "search:nonsense"}, "policy"),
        ("steady", {"policy": "search:no+such"}, "policy"),
        ("steady", {"policy": "search:../etc"}, "policy"),
        ("steady", {"policy": "search:"}, "policy"),
        ("steady", {"policy": "search:search:tuned"}, "policy"),
        ("steady", {"policy": "search:no-such-checkpoint"}, "policy"),
        ("steady", {"policy": "search:tuned", "search": {"candidates": 0}}, "candidates"),
        ("steady", {"policy": "search:tuned", "search": {"budget_ms": 1e9}}, "budget_ms"),
        ("steady", {"policy": "search:tuned", "search": {"rollouts": 33}}, "rollouts"),
        ("steady", {"policy": "search:tuned", "search": {"candidate": 4}}, "candidate"),
        ("steady", {"policy": "search:tuned", "search": {"futures": "sampled"}}, "search"),
        ("steady", {"policy": "edf", "search": {"candidates": 4}}, "search"),
        ("steady", {"policy": "edf", "league": TINY}, "league"),
        ("steady", {"policy": "search:tuned", "league": {"eval_episodes": 0}}, "eval_episodes"),
        ("steady", {"policy": "search:tuned", "league": {"workload": {"name": "nope"}}}, "workload"),
        ("steady", {"policy": "search:tuned", "force": "yes"}, "force"),
        ("prod-a100", {"policy": "search:tuned"}, "workload"),
    ],
)
def test_a_search_that_cannot_be_measured_or_served_is_a_422_naming_the_field(
    client: TestClient, policy_class: str, body: dict, field: str
) -> None:
    answer = client.put(f"/policy/{policy_class}", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    locations = [error["loc"] for error in problem.get("errors") or []]
    assert any(field in loc for loc in locations) or field in problem["detail"], problem


def test_a_class_named_after_no_workload_is_measured_on_the_one_given(client: TestClient) -> None:
    """With league.workload the request passes validation; here it then needs Temporal (503)."""
    answer = client.put("/policy/prod-a100", json={"policy": "search:tuned", "league": TINY})
    assert answer.status_code == 503, answer.text


def test_an_unknown_search_deployment_is_404(client: TestClient) -> None:
    assert client.get("/policy-deployments/nope").status_code == 404
