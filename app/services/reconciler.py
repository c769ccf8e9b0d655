"""Background task in the app's lifespan that keeps the index current without anyone
polling: every live run is refreshed from its workflow, so rounds and checkpoints appear
(and a run's end is recorded) even if no client asks, and a restarted app catches up on
what happened while it was down. Requests answered 202/504 get their plans fetched too,
searches being measured for deployment their outcome, and runs fired by training
schedules are indexed first, so they are refreshed like the rest from the same pass on."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from app.core.config import Settings
from app.metrics import LIVE_RUNS, RECONCILE_SECONDS
from app.models import Plan, Run, utcnow
from app.services.clusters import refresh_live_clusters
from app.services.plans import refresh_plan
from app.services.rediscover import rediscover
from app.services.runs import refresh_run
from app.services.search_deployments import measuring, refresh_search_deployment
from app.services.temporal import TemporalGateway
from app.services.training_schedules import index_all_schedules

log = logging.getLogger(__name__)

SCHEDULE_LOOKBACK = timedelta(days=1)
"""Older pending plans are left alone (their workflows are long gone)."""


async def reconcile_once(engine: Engine, temporal: TemporalGateway, settings: Settings) -> int:
    """Refresh every live run, pending plan, search being measured and live cluster loop;
    returns how many were refreshed."""
    refreshed = 0
    session = Session(engine, expire_on_commit=False)
    try:
        with RECONCILE_SECONDS.time():
            await index_all_schedules(session, temporal, settings)
            runs = await run_in_threadpool(_live_runs, session)
            LIVE_RUNS.set(len(runs))
            for run_id in [run.id for run in runs]:
                # A failed refresh rolls back, which expires every row of the session:
                # get() answers from the session's rows, loading one again (off the event
                # loop) only then.
                run = await run_in_threadpool(session.get, Run, run_id)
                if run is not None:
                    refreshed += await refresh_run(session, temporal, settings, run)
            for row in await run_in_threadpool(_pending_plans, session):
                await refresh_plan(session, temporal, settings, row)
                refreshed += 1
            for deployment in await run_in_threadpool(measuring, session):
                await refresh_search_deployment(session, temporal, settings, deployment)
                refreshed += 1
            refreshed += await refresh_live_clusters(session, temporal, settings)
    finally:
        await run_in_threadpool(session.close)
    return refreshed


def _live_runs(session: Session) -> Sequence[Run]:
    return session.exec(select(Run).where(col(Run.status).in_(("running", "stopping")))).all()


def _pending_plans(session: Session) -> Sequence[Plan]:
    return session.exec(
        select(Plan).where(Plan.status == "running", Plan.created_at > utcnow() - SCHEDULE_LOOKBACK)
    ).all()


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
