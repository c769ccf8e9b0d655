"""Background task in the app's lifespan that keeps the index current without anyone
polling: every live run is refreshed from its workflow, so rounds and checkpoints appear
(and a run's end is recorded) even if no client asks, and a restarted app catches up on
what happened while it was down. Requests answered 202/504 get their plans fetched too,
and runs fired by training schedules are indexed first, so they are refreshed like the
rest from the same pass on."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.core.config import Settings
from app.metrics import LIVE_RUNS, RECONCILE_SECONDS
from app.models import Plan, Run, utcnow
from app.services.plans import refresh_plan
from app.services.rediscover import rediscover
from app.services.runs import refresh_run
from app.services.temporal import TemporalGateway
from app.services.training_schedules import index_all_schedules

log = logging.getLogger(__name__)

SCHEDULE_LOOKBACK = timedelta(days=1)
"""Older pending plans are left alone (their workflows are long gone)."""


async def reconcile_once(engine: Engine, temporal: TemporalGateway, settings: Settings) -> int:
    """Refresh every live run and pending plan; returns how many were refreshed."""
    refreshed = 0
    with RECONCILE_SECONDS.time(), Session(engine, expire_on_commit=False) as session:
        await index_all_schedules(session, temporal, settings)
        runs = session.exec(select(Run).where(col(Run.status).in_(("running", "stopping")))).all()
        LIVE_RUNS.set(len(runs))
        for run in runs:
            refreshed += await refresh_run(session, temporal, settings, run)
        pending = session.exec(
            select(Plan).where(Plan.status == "running", Plan.created_at > utcnow() - SCHEDULE_LOOKBACK)
        ).all()
        for row in pending:
            await refresh_plan(session, temporal, settings, row)
            refreshed += 1
    return refreshed


async def run_reconciler(engine: Engine, temporal: TemporalGateway, settings: Settings) -> None:
    """Rediscover once (retrying until Temporal answers), then reconcile forever."""
    rediscovered = not settings.rediscover_on_start
    failures = 0
    while True:
        if not rediscovered:
            try:
                await rediscover(engine, temporal, settings)
                rediscovered = True
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Temporal not up yet: the next pass tries again
                failures += 1
                (log.warning if failures == 1 else log.debug)("rediscovery failed, retrying: %s", error)
        try:
            await reconcile_once(engine, temporal, settings)
        except asyncio.CancelledError:
            raise
        except Exception:  # keep reconciling; one bad row must not stop the index updating
            log.exception("reconcile pass failed")
        await asyncio.sleep(settings.reconcile_interval_s)
