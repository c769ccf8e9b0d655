"""Structural checks: the API process stays light, the migration matches the models, the
settings read what the README says, and docker-compose.yml is well formed (there is no
Docker engine here, so its structure is what we can check)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect
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


def test_migration_creates_exactly_the_models_and_downgrades(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
    assert {"runs", "rounds", "checkpoints", "schedule_requests"} <= set(inspect(engine).get_table_names())
    command.downgrade(alembic_config(url), "base")
    assert set(inspect(create_engine(url)).get_table_names()) <= {"alembic_version"}


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
