"""POST /clusters refuses bad input with a 422 naming the field before anything reaches
Temporal or the worker (Temporal is unreachable here on purpose), and an endpoint only
when the operator's allow-list (RLSCHED_CLUSTER_ENDPOINTS) holds it."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.api import assert_problem, offline_settings

from app.main import create_app

GOOD = {
    "name": "lab",
    "kind": "slurm",
    "endpoint": "/etc/slurm/slurm.conf",
    "interval_s": 30,
    "mode": "advise",
}


def make_client(tmp_path: Path, allowed: str) -> TestClient:
    return TestClient(create_app(offline_settings(tmp_path, cluster_endpoints=allowed)))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "-lab"),
        ("name", "a" * 64),
        ("name", "lab/x"),
        ("kind", "pbs"),
        ("endpoint", "slurm.conf"),
        ("endpoint", "/etc/slurm/../shadow.conf"),
        ("endpoint", "/etc/slurm/"),
        ("endpoint", "/etc/passwd"),
        ("class", "../x"),
        ("interval_s", 0.5),
        ("interval_s", 86_401),
        ("interval_s", "30"),
        ("mode", "apply"),
        ("partition", "a b"),
        ("token", "secret"),
    ],
)
def test_a_bad_field_is_a_422_naming_it(tmp_path: Path, field: str, value: object) -> None:
    with make_client(tmp_path, "/etc/slurm") as client:
        body = assert_problem(client.post("/clusters", json={**GOOD, field: value}), 422)
    assert body["errors"][0]["loc"][-1] == field, body


def test_endpoints_need_the_operators_allow_list(tmp_path: Path) -> None:
    with make_client(tmp_path, "") as client:
        refused = assert_problem(client.post("/clusters", json=GOOD), 422)
    assert refused["errors"][0]["loc"] == ["body", "endpoint"]
    assert "RLSCHED_CLUSTER_ENDPOINTS=" in refused["detail"]
    with make_client(tmp_path, "/srv/a/slurm.conf, /etc/slurm") as client:
        sibling = client.post("/clusters", json={**GOOD, "endpoint": "/etc/slurmx/slurm.conf"})
        assert "not allowed" in assert_problem(sibling, 422)["detail"]
        other = client.post("/clusters", json={**GOOD, "endpoint": "/srv/a/other.conf"})
        assert "not allowed" in assert_problem(other, 422)["detail"]
        # allowed: past the checks, the reachability check needs Temporal, which is down here
        assert_problem(client.post("/clusters", json={**GOOD, "endpoint": "/srv/a/slurm.conf"}), 503)
        assert_problem(client.post("/clusters", json={**GOOD, "endpoint": "/etc/slurm/site/slurm.conf"}), 503)


def test_unknown_clusters_are_404_and_bad_names_422(tmp_path: Path) -> None:
    with make_client(tmp_path, "/etc/slurm") as client:
        assert client.get("/clusters").json() == {"data": [], "count": 0}
        for method, url in (
            ("GET", "/clusters/lab"),
            ("GET", "/clusters/lab/decisions"),
            ("DELETE", "/clusters/lab"),
        ):
            assert "GET /clusters lists them" in assert_problem(client.request(method, url), 404)["detail"]
        assert_problem(client.get("/clusters/a.b"), 422)
        assert_problem(client.get("/clusters/lab/decisions?limit=0"), 422)
        assert_problem(client.get("/clusters?limt=5"), 422)
