"""Structural checks: the API process stays light, the migration matches the models (on
SQLite and PostgreSQL), the settings read what the README says, and docker-compose.yml is
valid against the Compose Specification's schema and has the structure we rely on (there
is no container engine here, so that is what we can check)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from jsonschema import Draft7Validator
from sqlalchemy import MetaData, create_engine, inspect, text
from sqlmodel import SQLModel

from alembic import command
from app.core.config import Settings
from app.db import alembic_config

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_app_loads_no_ray_torch_or_simulator() -> None:
    code = (
        "import sys, app.main, app.cli; "
        "heavy = [m for m in ('ray', 'torch', 'worker.sim', 'worker.rl', 'numba') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "", f"app imports heavy modules: {out.stdout}"


def insert_run(connection: Any, tables: MetaData, when: datetime, rounds_done: int) -> None:
    """Run `r1` as a migration test's older schema stores it, to hang rounds on."""
    connection.execute(
        tables.tables["runs"].insert(),
        {"id": "r1", "workflow_id": "w1", "status": "completed", "config": {}, "rounds_done": rounds_done}
        | {"created_at": when, "updated_at": when},
    )


def upgrade_with_run(database_url: str, config: Any, revision: str) -> datetime:
    """Migrate to `revision` and store run `r1` there; returns the rows' timestamp."""
    command.upgrade(config, revision)
    engine = create_engine(database_url)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.begin() as connection:
        tables = MetaData()
        tables.reflect(connection)
        insert_run(connection, tables, when, rounds_done=1)
    engine.dispose()
    return when


def test_migration_creates_exactly_the_models_and_downgrades(database_url: str) -> None:
    """On SQLite and on a real PostgreSQL server: upgrade to head leaves no difference
    between the migrated schema and the models (types included), downgrade removes it all."""
    url = database_url
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
    assert {"runs", "rounds", "checkpoints", "schedule_requests"} <= set(inspect(engine).get_table_names())
    engine.dispose()
    command.downgrade(alembic_config(url), "base")
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_the_margin_migration_keeps_every_round_and_checkpoint_value(database_url: str) -> None:
    """Upgrading from the release whose columns were named `gain` carries each value over
    to `margin` (what the API answers), and downgrading carries it back."""
    config = alembic_config(database_url)
    command.upgrade(config, "0004_bigint_env_steps")
    engine = create_engine(database_url)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    scores = {"iteration": 2, "env_steps": 3, "score": 0.9, "best_heuristic": "edf"}
    scores |= {"best_heuristic_score": 0.8, "heuristic_scores": {}}
    with engine.begin() as connection:
        tables = MetaData()
        tables.reflect(connection)
        insert_run(connection, tables, when, rounds_done=1)
        connection.execute(
            tables.tables["rounds"].insert(),
            {"run_id": "r1", "round": 1, "gain": 0.125} | scores,
        )
        connection.execute(
            tables.tables["checkpoints"].insert(),
            {"id": "r1-r1", "run_id": "r1", "round": 1, "location": "/c", "gain": -0.25}
            | {"window": 8, "created_at": when}
            | scores,
        )
    engine.dispose()
    command.upgrade(config, "head")
    engine = create_engine(database_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT margin FROM rounds")).scalar_one() == 0.125
        assert connection.execute(text("SELECT margin FROM checkpoints")).scalar_one() == -0.25
    engine.dispose()
    command.downgrade(config, "0004_bigint_env_steps")
    engine = create_engine(database_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT gain FROM rounds")).scalar_one() == 0.125
    engine.dispose()


def test_database_url_defaults_to_sqlite_under_the_data_dir_and_accepts_postgres(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("RLSCHED_DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert Settings(data_dir=tmp_path).sqlalchemy_url == f"sqlite:///{(tmp_path / 'rlsched.db').resolve()}"
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db:5432/rlsched")
    assert Settings().sqlalchemy_url == "postgresql+psycopg://u:p@db:5432/rlsched"
    monkeypatch.setenv("RLSCHED_DATABASE_URL", "postgresql+psycopg://x@y/z")
    assert Settings().sqlalchemy_url == "postgresql+psycopg://x@y/z"
    monkeypatch.setenv("RLSCHED_API_PORT", "9123")
    monkeypatch.setenv("RLSCHED_API_KEY", "k")
    settings = Settings()
    assert settings.api_port == 9123 and settings.api_key is not None
    assert settings.api_host == "127.0.0.1" and settings.temporal_address == "localhost:7233"


def test_docker_compose_structure() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgresql", "temporal", "temporal-admin-tools", "temporal-ui", "api", "worker"} <= set(services)
    for name, service in services.items():
        if "image" in service:
            image = service["image"]
            assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image tag ({image})"
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker, (
        "workers must scale with --scale worker=N"
    )
    assert "build" in services["api"] and "build" in worker
    for app_service in (services["api"], worker):
        env = app_service["environment"]
        assert env["RLSCHED_TEMPORAL_ADDRESS"] == "temporal:7233"
        assert any(str(v).startswith("checkpoints:") for v in app_service["volumes"]), (
            "shared checkpoint volume"
        )
    scrape = yaml.safe_load(compose["configs"]["prometheus-config"]["content"])["scrape_configs"]
    targets = {c["job_name"]: c for c in scrape}
    assert targets["rlsched-api"]["static_configs"][0]["targets"] == ["api:8000"]
    assert targets["rlsched-worker"]["dns_sd_configs"][0]["port"] == int(
        worker["environment"]["RLSCHED_WORKER_METRICS_PORT"]
    )
    assert "prometheus" in services
    assert (
        "DATABASE_URL" in services["api"]["environment"]
        or "RLSCHED_DATABASE_URL" in services["api"]["environment"]
    )
    assert "checkpoints" in compose["volumes"]
    temporal = services["temporal"]
    assert temporal["depends_on"]["temporal-admin-tools"]["condition"] == "service_completed_successfully"
    mounted = {c["source"]: c["target"] for c in temporal["configs"]}
    assert mounted["temporal-dynamic-config"].endswith(temporal["environment"]["DYNAMIC_CONFIG_FILE_PATH"])
    dynamic = yaml.safe_load(compose["configs"]["temporal-dynamic-config"]["content"])
    assert dynamic["history.transferProcessorMaxPollRPS"][0]["value"] >= 1000
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11" in dockerfile and "alembic.ini" in dockerfile


COMPOSE_SCHEMA = ROOT / "tests" / "compose" / "compose-spec.json"
"""The Compose Specification's own JSON schema, vendored (tests/compose/README.md)."""


def compose_errors(document: object) -> list[str]:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)
    return [f"{error.json_path}: {error.message}" for error in validator.iter_errors(document)]


def test_docker_compose_is_valid_against_the_compose_specification_schema() -> None:
    """What `docker compose config` would check first; there is no engine here to run it."""
    Draft7Validator.check_schema(json.loads(COMPOSE_SCHEMA.read_text()))
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose_errors(compose) == []


def test_the_compose_schema_check_catches_a_misplaced_key() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    compose["services"]["worker"]["replica"] = 4  # deploy.replicas is the real one
    compose["services"]["api"]["depends_on"]["postgresql"]["condition"] = "service_up"
    errors = compose_errors(compose)
    assert any("worker" in e and "'replica'" in e for e in errors), errors
    assert any("api.depends_on" in e and "service_up" in e for e in errors), errors


def test_rlsched_migrate_creates_the_database_under_the_data_dir(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if "DATABASE_URL" not in k}
    env["RLSCHED_DATA_DIR"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "migrate"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "database at head" in out.stdout
    engine = create_engine(f"sqlite:///{tmp_path / 'rlsched.db'}")
    assert {"runs", "rounds", "checkpoints", "schedule_requests"} <= set(inspect(engine).get_table_names())


def test_the_clusters_migration_adds_its_tables_and_downgrades_keeping_the_rest(database_url: str) -> None:
    """0006 adds registered clusters and their decision history (ticks reference their
    cluster); downgrading removes exactly those two tables and leaves the runs."""
    config = alembic_config(database_url)
    when = upgrade_with_run(database_url, config, "0005_round_margin")
    command.upgrade(config, "0006_clusters")
    engine = create_engine(database_url)
    with engine.begin() as connection:
        tables = MetaData()
        tables.reflect(connection)
        connection.execute(
            tables.tables["clusters"].insert(),
            {"name": "lab", "workflow_id": "cluster-lab", "kind": "slurm", "endpoint": "/e/slurm.conf"}
            | {"policy_class": "default", "interval_s": 30.0, "mode": "advise", "config": {}}
            | {"status": "running", "ticks": 1, "failed_ticks": 0, "created_at": when, "updated_at": when},
        )
        connection.execute(
            tables.tables["cluster_ticks"].insert(), {"cluster": "lab", "tick": 1, "at": when, "record": {}}
        )
        assert connection.execute(text("SELECT tick FROM cluster_ticks")).scalar_one() == 1
    engine.dispose()
    command.downgrade(config, "0005_round_margin")
    engine = create_engine(database_url)
    names = set(inspect(engine).get_table_names())
    assert "clusters" not in names and "cluster_ticks" not in names
    with engine.connect() as connection:
        assert connection.execute(text("SELECT id FROM runs")).scalar_one() == "r1"
    engine.dispose()


def test_the_search_deployments_migration_adds_its_table_and_downgrades_keeping_the_rest(
    database_url: str,
) -> None:
    """0007 adds the searches deployed by PUT /policy; downgrading removes exactly that
    table and leaves the runs and clusters."""
    config = alembic_config(database_url)
    when = upgrade_with_run(database_url, config, "0006_clusters")
    command.upgrade(config, "0007_search_deployments")
    engine = create_engine(database_url)
    with engine.begin() as connection:
        tables = MetaData()
        tables.reflect(connection)
        connection.execute(
            tables.tables["search_deployments"].insert(),
            {"id": "d1", "workflow_id": "search-deployment-d1", "policy_class": "steady"}
            | {"policy": "search:tuned", "force": False, "request": {"evaluation": {}}, "status": "refused"}
            | {"result": {"detail": "margin -0.0100"}, "created_at": when},
        )
        row = connection.execute(text("SELECT status, result FROM search_deployments")).one()
        result = row.result if isinstance(row.result, dict) else json.loads(row.result)
        assert row.status == "refused" and result == {"detail": "margin -0.0100"}
    engine.dispose()
    command.downgrade(config, "0006_clusters")
    engine = create_engine(database_url)
    names = set(inspect(engine).get_table_names())
    assert "search_deployments" not in names and {"runs", "clusters"} <= names
    with engine.connect() as connection:
        assert connection.execute(text("SELECT id FROM runs")).scalar_one() == "r1"
    engine.dispose()


def test_the_round_search_migration_backfills_bounds_and_downgrades_keeping_every_round(
    database_url: str,
) -> None:
    """0008 puts each round's bound beside its score (taken from its league's `bound` row),
    adds the search row's score and the distillation metrics; downgrading drops exactly
    those columns and keeps the rounds and iterations."""
    config = alembic_config(database_url)
    command.upgrade(config, "0007_search_deployments")
    engine = create_engine(database_url)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    scores = {"iteration": 2, "env_steps": 3, "score": 0.9, "best_heuristic": "edf"}
    scores |= {"best_heuristic_score": 0.8, "heuristic_scores": {}, "margin": 0.1}
    with engine.begin() as connection:
        tables = MetaData()
        tables.reflect(connection)
        insert_run(connection, tables, when, rounds_done=2)
        connection.execute(
            tables.tables["rounds"].insert(), [{"run_id": "r1", "round": r} | scores for r in (1, 2)]
        )
        league = {"run_id": "r1", "workload": "steady", "objective": "deadline"}
        connection.execute(
            tables.tables["league_entries"].insert(),
            [
                league | {"round": 1, "policy": "bound", "kind": "bound", "value": 0.97},
                league | {"round": 1, "policy": "ppo", "kind": "ppo", "value": 0.9},
                league | {"round": 2, "policy": "ppo", "kind": "ppo", "value": 0.9},
            ],
        )
        connection.execute(
            tables.tables["iteration_metrics"].insert(),
            {"run_id": "r1", "round": 1, "iteration": 1, "iterations_in_round": 1, "env_steps": 4}
            | {"recorded_at": when},
        )
    engine.dispose()
    command.upgrade(config, "0008_round_search")
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT round, bound, search_score FROM rounds ORDER BY round"))
        assert [tuple(row) for row in rows] == [(1, 0.97, None), (2, None, None)]
        distill = connection.execute(
            text("SELECT distill_cross_entropy, distill_decisions FROM iteration_metrics")
        )
        assert tuple(distill.one()) == (None, None)
    engine.dispose()
    command.downgrade(config, "0007_search_deployments")
    engine = create_engine(database_url)
    columns = {c["name"] for c in inspect(engine).get_columns("rounds")}
    assert "bound" not in columns and "search_score" not in columns and "margin" in columns
    assert not {c["name"] for c in inspect(engine).get_columns("iteration_metrics")} & {
        "distill_cross_entropy",
        "distill_decisions",
    }
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM rounds")).scalar_one() == 2
        assert connection.execute(text("SELECT count(*) FROM iteration_metrics")).scalar_one() == 1
    engine.dispose()


def test_the_round_gate_migration_adds_the_gate_s_verdict_and_downgrades_keeping_every_round(
    database_url: str,
) -> None:
    """0009 adds a round's validation score and the gate's verdict, empty for rounds made
    before any run was gated; downgrading drops exactly those columns."""
    config = alembic_config(database_url)
    command.upgrade(config, "0008_round_search")
    engine = create_engine(database_url)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    scores = {"iteration": 2, "env_steps": 3, "score": 0.9, "best_heuristic": "edf"}
    scores |= {"best_heuristic_score": 0.8, "heuristic_scores": {}, "margin": 0.1, "search_score": 0.95}
    with engine.begin() as connection:
        tables = MetaData()
        tables.reflect(connection)
        insert_run(connection, tables, when, rounds_done=1)
        connection.execute(tables.tables["rounds"].insert(), {"run_id": "r1", "round": 1} | scores)
    engine.dispose()
    command.upgrade(config, "0009_round_gate")
    engine = create_engine(database_url)
    with engine.connect() as connection:
        row = connection.execute(text("SELECT search_score, validation_score, accepted FROM rounds")).one()
        assert tuple(row) == (0.95, None, None)
    engine.dispose()
    command.downgrade(config, "0008_round_search")
    engine = create_engine(database_url)
    columns = {c["name"] for c in inspect(engine).get_columns("rounds")}
    assert not columns & {"validation_score", "accepted"} and "search_score" in columns
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM rounds")).scalar_one() == 1
    engine.dispose()
