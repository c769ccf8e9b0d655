"""The app's database: one engine per process, sessions per request, alembic migrations
run on start (and by `rlsched migrate`). SQLite gets WAL and `synchronous=NORMAL` so the
reconciler's writes do not block readers and a schedule request's insert costs well
under a millisecond."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, create_engine

from alembic import command
from app.core.config import Settings


def _project_root() -> Path:
    """Where alembic.ini and alembic/ are: next to the app package in a checkout or an
    editable install, else the working directory (a plain `pip install .`)."""
    for candidate in (Path(__file__).resolve().parents[1], Path.cwd()):
        if (candidate / "alembic.ini").is_file():
            return candidate
    raise RuntimeError("alembic.ini not found next to the app package or in the working directory")


ROOT = _project_root()
ALEMBIC_INI = ROOT / "alembic.ini"


def make_engine(settings: Settings) -> Engine:
    url = settings.sqlalchemy_url
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db_path = url.split("///", 1)[-1]
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def alembic_config(url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def migrate(settings: Settings, engine: Engine | None = None) -> None:
    """Upgrade to head; alembic's env.py reuses `engine`'s connection when given one."""
    config = alembic_config(settings.sqlalchemy_url)
    if engine is None:
        engine = make_engine(settings)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def migration_state(engine: Engine) -> tuple[str | None, str | None]:
    """(current revision, head revision): equal means the schema is up to date."""
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return current, head


def commit_row(session: Session, row: object) -> None:
    session.add(row)
    session.commit()


def insert_row(session: Session, row: object, *reload: object) -> bool:
    """Add and commit `row`; False, rolled back (see roll_back), when another writer
    inserted the same key first."""
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        roll_back(session, *reload)
        return False
    return True


def delete_row(session: Session, row: object) -> None:
    session.delete(row)
    session.commit()


def roll_back(session: Session, *rows: object) -> None:
    """Roll back, then reload `rows`: a rollback expires every row of the session, and
    reading an expired row queries. Called on a worker thread (run_in_threadpool), so the
    event loop, which reads these rows next, never waits for the database."""
    session.rollback()
    for row in rows:
        session.refresh(row)
