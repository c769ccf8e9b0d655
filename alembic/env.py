"""Alembic environment: metadata from the app's SQLModel tables, URL from the app's
settings (or the caller's connection when the app migrates itself on start). Batch mode
on SQLite, which cannot ALTER most things in place."""

from __future__ import annotations

from logging.config import fileConfig

from sqlalchemy import Connection
from sqlmodel import SQLModel

from alembic import context
from app import models  # noqa: F401  (registers the tables on SQLModel.metadata)

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name)

target_metadata = SQLModel.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from app.core.config import Settings

    return Settings().sqlalchemy_url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    url = _url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from app.core.config import Settings
    from app.db import make_engine

    settings = Settings()
    engine = make_engine(settings) if not config.get_main_option("sqlalchemy.url") else None
    if engine is None:
        from sqlalchemy import create_engine

        engine = create_engine(_url())
    with engine.begin() as conn:
        _run(conn)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
