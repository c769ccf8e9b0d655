"""The dashboard at /ui: server-rendered pages over the same index and services as the
API (runs, a run's curves, the league, deployed policies, a plan's Gantt chart,
registered clusters and their decisions).

Pages read the index the reconciler keeps current; a run's page refreshes that run from
Temporal first (bounded, as GET /training-runs/{id} does). Pages that only read the
index are plain `def` (FastAPI runs them on its thread pool); the others read it through
run_in_threadpool, so the event loop never waits for the database. Plots are inline SVG
from app/ui/plots.py, drawn on a worker thread. Pages with live runs reload themselves every
few seconds (a meta refresh: no JavaScript)."""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from app.api.deps import SessionDep, SettingsDep, TemporalDep
from app.errors import ProblemError
from app.models import Cluster, ClusterPublic, IterationMetric, LeagueEntry, Plan, Run, TrainingRunDetail
from app.services import clusters as cluster_service
from app.services import history
from app.services import runs as run_service
from app.services.plans import get_plan
from app.services.policy import list_policies
from app.ui import plots
from app.ui.auth import COOKIE, LoginRequired, key_is_right, require_ui_login, safe_next, with_cookie
from worker.contracts import SEARCH_PREFIX
from worker.contracts.clusters import TickRecord

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
LIVE_REFRESH_S = 5
RUN_REFRESH_BUDGET_S = 2.0
PLOT_ITERATIONS = 5_000
"""The newest iterations a run's return curve shows."""

router = APIRouter(prefix="/ui", include_in_schema=False)
"""The login pages, open to all."""
pages = APIRouter(prefix="/ui", include_in_schema=False, dependencies=[Depends(require_ui_login)])
"""Everything else: behind the API key when one is set."""


def install(app: FastAPI) -> None:
    """Mount the dashboard and answer its login redirects."""

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        return exc.response

    app.include_router(router)
    app.include_router(pages)


def _page(request: Request, template: str, **context: Any) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, template, context)


@router.get("/login")
async def login_form(request: Request, next: str | None = None, failed: int = 0) -> HTMLResponse:
    return _page(request, "login.html", next=safe_next(next), failed=bool(failed), title="Log in")


@router.post("/login")
async def login(request: Request, settings: SettingsDep) -> Response:
    """A plain form post (application/x-www-form-urlencoded), parsed here so the app
    needs no multipart dependency for one field."""
    fields = parse_qs((await request.body()).decode(errors="replace"))
    key = (fields.get("key") or [""])[0]
    target = safe_next((fields.get("next") or ["/ui"])[0])
    if not key_is_right(settings, key):
        return _page(request, "login.html", next=target, failed=True, title="Log in")
    return with_cookie(RedirectResponse(target, status_code=303), request, settings)


@router.get("/logout")
async def logout() -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


@pages.get("")
def runs_page(request: Request, session: SessionDep, offset: Annotated[int, Query(ge=0)] = 0) -> HTMLResponse:
    page = run_service.list_runs(session, None, offset, 50)
    rows = []
    for run in page.data:
        target = int(run.config.get("iterations_per_round") or 1)
        done = run.live_progress.iterations_done if run.live_progress else 0
        rows.append(
            {"run": run, "target": target, "done": min(done, target), "pct": round(100 * done / target)}
        )
    live = any(r["run"].status in ("running", "stopping") for r in rows)
    return _page(
        request,
        "runs.html",
        title="Training runs",
        rows=rows,
        count=page.count,
        offset=offset,
        refresh=LIVE_REFRESH_S if live else None,
    )


@pages.get("/runs/{run_id}")
async def run_page(
    request: Request, run_id: str, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> HTMLResponse:
    run = await run_in_threadpool(run_service.get_run_row, session, run_id)
    fresh = await run_service.refresh_run(session, temporal, settings, run, RUN_REFRESH_BUDGET_S)
    detail, iterations = await run_in_threadpool(_run_history, session, run, not fresh)
    objective = str(run.config.get("objective", "deadline"))
    rounds = detail.rounds
    score_svg = returns_svg = None
    if rounds:
        score_svg = await asyncio.to_thread(
            plots.round_scores_svg,
            [r.round for r in rounds],
            [r.score for r in rounds],
            [r.best_heuristic_score for r in rounds],
            [r.bound for r in rounds],
            objective,
            [r.search_score for r in rounds],
        )
    if iterations:
        returns_svg = await asyncio.to_thread(
            plots.iteration_returns_svg,
            [i.iteration for i in iterations],
            [i.episode_return_mean for i in iterations],
            [i.round for i in iterations],
        )
    target = int(run.config.get("iterations_per_round") or 1)
    live = detail.live_progress
    done = min(live.iterations_done, target) if live else 0
    return _page(
        request,
        "run.html",
        title=f"Run {run.id}",
        run=detail,
        objective=objective,
        searched=any(r.search_score is not None for r in rounds),
        gated=any(r.accepted is not None for r in rounds),
        distilled=any(i.distill_cross_entropy is not None for i in iterations),
        score_svg=score_svg,
        returns_svg=returns_svg,
        iterations=iterations[-20:][::-1],
        iteration_count=len(iterations),
        target=target,
        done=done,
        pct=round(100 * done / target),
        refresh=LIVE_REFRESH_S if detail.status in ("running", "stopping") else None,
    )


def _run_history(session: Session, run: Run, stale: bool) -> tuple[TrainingRunDetail, list[IterationMetric]]:
    """The run's rounds and its last iterations, read in one go."""
    detail = run_service.run_detail(session, run, stale=stale)
    return detail, history.iterations(session, run.id)[-PLOT_ITERATIONS:]


@pages.get("/league")
def league_page(request: Request, session: SessionDep) -> HTMLResponse:
    """Per evaluation workload: every checkpoint's value (its round's held-out episodes)
    and every heuristic's mean over the rounds that evaluated it, best first."""
    entries = history.league(session)
    by_workload: dict[tuple[str, str], list[LeagueEntry]] = defaultdict(list)
    for entry in entries:
        by_workload[(entry.workload, entry.objective)].append(entry)
    tables = []
    for (workload, objective), rows in sorted(by_workload.items()):
        grouped: dict[tuple[str, str], list[float]] = defaultdict(list)
        for entry in rows:
            name = entry.policy
            if entry.kind == "ppo" and entry.checkpoint_id:
                name = entry.checkpoint_id
            elif entry.kind == "search" and entry.checkpoint_id:
                name = f"{SEARCH_PREFIX}{entry.checkpoint_id}"
            grouped[(entry.kind, name)].append(entry.value)
        table = [
            {"kind": kind, "policy": name, "value": sum(values) / len(values), "evaluations": len(values)}
            for (kind, name), values in grouped.items()
        ]
        table.sort(key=lambda r: (r["kind"] != "bound", -r["value"]))
        tables.append({"workload": workload, "objective": objective, "rows": table})
    return _page(request, "league.html", title="League", tables=tables)


@pages.get("/policies")
async def policies_page(
    request: Request, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> HTMLResponse:
    error = None
    policies = None
    try:
        policies = await list_policies(session, temporal, settings)
    except ProblemError as problem:
        error = problem.detail
    measuring = policies is not None and any(d.status == "evaluating" for d in policies.search_deployments)
    return _page(
        request,
        "policies.html",
        title="Deployed policies",
        policies=policies,
        error=error,
        refresh=LIVE_REFRESH_S if measuring else None,
    )


@pages.get("/plans")
def plans_page(request: Request, session: SessionDep) -> HTMLResponse:
    rows = session.exec(select(Plan).order_by(col(Plan.created_at).desc()).limit(100)).all()
    return _page(request, "plans.html", title="Plans", rows=rows)


@pages.get("/schedules")
async def old_plans_page() -> RedirectResponse:
    """The page's first address, kept for bookmarks."""
    return RedirectResponse("/ui/plans", status_code=308)


@pages.get("/schedules/{plan_id}")
async def old_plan_page(plan_id: str) -> RedirectResponse:
    return RedirectResponse(f"/ui/plans/{quote(plan_id, safe='')}", status_code=308)


def _natural(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


@pages.get("/plans/{plan_id}")
async def plan_page(
    request: Request, plan_id: str, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> HTMLResponse:
    plan = await get_plan(session, temporal, settings, plan_id)
    bars = [
        plots.Bar(p.job_id, p.node_id, p.start_s, p.finish_s, p.priority or 2, p.meets_deadline)
        for p in plan.placements
    ]
    nodes = sorted({b.node_id for b in bars}, key=_natural)
    gantt = await asyncio.to_thread(plots.gantt_svg, bars, nodes) if bars else None
    misses = sum(1 for b in bars if not b.meets_deadline)
    return _page(
        request, "plan.html", title=f"Plan {plan.id}", plan=plan, gantt=gantt, misses=misses, nodes=nodes
    )


CLUSTER_TICKS_SHOWN = 50


@pages.get("/clusters")
def clusters_page(request: Request, session: SessionDep) -> HTMLResponse:
    page = cluster_service.list_clusters(session, 0, 200)
    live = any(c.status in ("running", "stopping") for c in page.data)
    return _page(
        request,
        "clusters.html",
        title="Clusters",
        clusters=page.data,
        count=page.count,
        refresh=LIVE_REFRESH_S if live else None,
    )


@pages.get("/clusters/{name}")
async def cluster_page(
    request: Request, name: str, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> HTMLResponse:
    """The registration, counters and the last ticks' decisions, one table row per
    decision, skipped job (with the reason) or failed tick."""
    row = await run_in_threadpool(cluster_service.get_row, session, name)
    fresh = await cluster_service.refresh_cluster(session, temporal, settings, row, RUN_REFRESH_BUDGET_S)
    cluster, ticks = await run_in_threadpool(_cluster_history, session, row, not fresh)
    return _page(
        request,
        "cluster.html",
        title=f"Cluster {cluster.name}",
        cluster=cluster,
        ticks=ticks,
        refresh=LIVE_REFRESH_S if cluster.status in ("running", "stopping") else None,
    )


def _cluster_history(session: Session, row: Cluster, stale: bool) -> tuple[ClusterPublic, list[TickRecord]]:
    detail = cluster_service.cluster_detail(session, row, stale)
    return detail, cluster_service.decisions_page(session, row, 0, CLUSTER_TICKS_SHOWN).data
