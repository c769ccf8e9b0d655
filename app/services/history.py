"""A run's training history in the index: every PPO iteration's learner metrics and
every round's league (PPO, its search when evaluated, each heuristic, the bound on the
same held-out episodes).

Both are written by `refresh_run` from what Temporal says: iterations from the live
heartbeat (the current round so far) and from each round's summary (the whole round),
league rows from each round's evaluation. Every write is an upsert on a unique key
((run, iteration); (run, round, policy)), so seeing the same iteration in a heartbeat,
then in the round, then again after an app restart stores it once. Reads page through
one series at a time, as JSON or CSV.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from sqlmodel import Session, col, func, select

from app.models import (
    IterationMetric,
    IterationMetricPublic,
    IterationMetricsPage,
    LeagueEntry,
    LeagueEntryPublic,
    LeagueMetricsPage,
    MetricsPage,
    MetricsSeries,
    Round,
    RoundHistoryPublic,
    RoundMetricsPage,
    Run,
)
from worker.contracts import (
    SEARCH_PREFIX,
    IterationProgress,
    LearnerMetrics,
    RoundSummary,
    WorkloadConfig,
    evaluation_workload,
)

ITERATION_FIELDS = tuple(LearnerMetrics.model_fields)
"""What an IterationMetric row takes from a heartbeated IterationProgress."""
SEARCH_ROW = f"{SEARCH_PREFIX}ppo"
"""The league row of the search over a round's checkpoint (`ppo` is the checkpoint's)."""


def record_iterations(session: Session, run_id: str, round_: int, items: Sequence[IterationProgress]) -> int:
    """Upsert one round's iterations; returns how many rows were new. Later sightings
    overwrite earlier ones (the round's own list is the final word)."""
    if not items:
        return 0
    by_iteration = {p.iteration: p for p in items}
    existing = {
        row.iteration: row
        for row in session.exec(
            select(IterationMetric).where(
                IterationMetric.run_id == run_id, col(IterationMetric.iteration).in_(list(by_iteration))
            )
        ).all()
    }
    new = 0
    for iteration, progress in by_iteration.items():
        row = existing.get(iteration)
        if row is None:
            row = IterationMetric(run_id=run_id, round=round_, iteration=iteration)
            new += 1
        elif row.round == round_ and all(
            getattr(row, name) == getattr(progress, name) for name in ITERATION_FIELDS
        ):
            continue
        row.round = round_
        for name in ITERATION_FIELDS:
            setattr(row, name, getattr(progress, name))
        session.add(row)
    return new


def record_league(session: Session, run: Run, summary: RoundSummary, checkpoint_id: str) -> None:
    """Upsert a round's league rows. Rounds whose full evaluation the workflow no longer
    carries still have every heuristic's value (`heuristic_scores`); metrics and the bound
    come with the evaluation and are kept once seen."""
    evaluation = summary.evaluation
    workload_config = run.config.get("workload") or {}
    workload = str(workload_config.get("name", "steady"))
    if evaluation is not None:
        objective = evaluation.objective
    else:
        objective = str(run.config.get("objective", "deadline"))
    with contextlib.suppress(ValueError):  # an old or odd config: keep its plain name
        workload = evaluation_workload(WorkloadConfig.model_validate(workload_config)).name
    wanted: dict[str, dict[str, Any]] = {
        "ppo": {"kind": "ppo", "value": summary.score, "checkpoint_id": checkpoint_id},
    }
    for policy, value in summary.heuristic_scores.items():
        wanted[policy] = {"kind": "heuristic", "value": value}
    if summary.search_score is not None:
        wanted[SEARCH_ROW] = {"kind": "search", "value": summary.search_score, "checkpoint_id": checkpoint_id}
    if summary.bound is not None:
        wanted["bound"] = {"kind": "bound", "value": summary.bound}
    if evaluation is not None:
        wanted["ppo"]["metrics"] = evaluation.ppo.model_dump(mode="json")
        for metrics in evaluation.heuristics:
            if metrics.policy in wanted:
                wanted[metrics.policy]["metrics"] = metrics.model_dump(mode="json")
        if evaluation.search is not None and evaluation.search_value is not None:
            wanted[SEARCH_ROW] = {
                "kind": "search",
                "value": evaluation.search_value,
                "checkpoint_id": checkpoint_id,
                "metrics": evaluation.search.model_dump(mode="json"),
            }
        if evaluation.bound is not None:
            wanted["bound"] = {"kind": "bound", "value": evaluation.bound}
    existing = {
        row.policy: row
        for row in session.exec(
            select(LeagueEntry).where(LeagueEntry.run_id == run.id, LeagueEntry.round == summary.round)
        ).all()
    }
    for policy, values in wanted.items():
        row = existing.get(policy)
        if row is None:
            row = LeagueEntry(
                run_id=run.id,
                round=summary.round,
                workload=workload,
                objective=objective,
                policy=policy,
                **values,
            )
            session.add(row)
            continue
        metrics = values.pop("metrics", None)
        changed = any(getattr(row, k) != v for k, v in values.items()) or (metrics and not row.metrics)
        if changed:
            for key, value in values.items():
                setattr(row, key, value)
            row.metrics = metrics or row.metrics
            session.add(row)


def copy_round_references(row: Round, summary: RoundSummary) -> None:
    """The bound, the search row and the gate's verdict beside a round's own score. A
    workflow older than these fields reports the first two only in the evaluation it still
    carries; a value once seen is kept."""
    bound, search, evaluation = summary.bound, summary.search_score, summary.evaluation
    if evaluation is not None:
        bound = evaluation.bound if bound is None else bound
        search = evaluation.search_value if search is None else search
    if bound is not None:
        row.bound = bound
    if search is not None:
        row.search_score = search
    if summary.validation_score is not None:
        row.validation_score = summary.validation_score
    if summary.accepted is not None:
        row.accepted = summary.accepted


def record_round(session: Session, run: Run, summary: RoundSummary, checkpoint_id: str) -> None:
    record_iterations(session, run.id, summary.round, summary.iterations)
    record_league(session, run, summary, checkpoint_id)


# --- reads ---------------------------------------------------------------------------------


def metrics_page(session: Session, run: Run, series: MetricsSeries, offset: int, limit: int) -> MetricsPage:
    if series == "iterations":
        query = (
            select(IterationMetric)
            .where(IterationMetric.run_id == run.id)
            .order_by(col(IterationMetric.iteration))
        )
        count = _count(session, IterationMetric, run.id)
        rows = session.exec(query.offset(offset).limit(limit)).all()
        data_i = [IterationMetricPublic.model_validate(r, from_attributes=True) for r in rows]
        return IterationMetricsPage(run_id=run.id, data=data_i, **_paging(count, offset, limit))
    if series == "rounds":
        rows_r = session.exec(
            select(Round).where(Round.run_id == run.id).order_by(col(Round.round)).offset(offset).limit(limit)
        ).all()
        data_r = [RoundHistoryPublic.model_validate(r, from_attributes=True) for r in rows_r]
        count = _count(session, Round, run.id)
        return RoundMetricsPage(run_id=run.id, data=data_r, **_paging(count, offset, limit))
    query_l = (
        select(LeagueEntry)
        .where(LeagueEntry.run_id == run.id)
        .order_by(col(LeagueEntry.round), col(LeagueEntry.kind).desc(), col(LeagueEntry.value).desc())
    )
    rows_l = session.exec(query_l.offset(offset).limit(limit)).all()
    data_l = [LeagueEntryPublic.model_validate(r, from_attributes=True) for r in rows_l]
    count = _count(session, LeagueEntry, run.id)
    return LeagueMetricsPage(run_id=run.id, data=data_l, **_paging(count, offset, limit))


def _count(session: Session, table: Any, run_id: str) -> int:
    return session.exec(select(func.count()).select_from(table).where(table.run_id == run_id)).one()


def _paging(count: int, offset: int, limit: int) -> dict[str, Any]:
    following = offset + limit
    return {
        "count": count,
        "offset": offset,
        "limit": limit,
        "next_offset": following if following < count else None,
    }


def iterations(session: Session, run_id: str) -> list[IterationMetric]:
    query = select(IterationMetric).where(IterationMetric.run_id == run_id)
    return list(session.exec(query.order_by(col(IterationMetric.iteration))).all())


def league(session: Session, run_ids: Iterable[str] | None = None) -> list[LeagueEntry]:
    query = select(LeagueEntry)
    if run_ids is not None:
        query = query.where(col(LeagueEntry.run_id).in_(list(run_ids)))
    return list(session.exec(query.order_by(col(LeagueEntry.run_id), col(LeagueEntry.round))).all())


CSV_DROP = {"metrics", "heuristic_scores"}
"""Nested columns a CSV leaves out (the JSON has them)."""


def page_csv(page: MetricsPage) -> str:
    """The page's rows as CSV with a header; nested fields are left to the JSON form."""
    rows = [row.model_dump(mode="json", exclude=CSV_DROP) for row in page.data]  # type: ignore[attr-defined]
    model = type(page).model_fields["data"].annotation.__args__[0]  # type: ignore[union-attr]
    header = [name for name in model.model_fields if name not in CSV_DROP]
    header += [name for name in (model.model_computed_fields or {}) if name not in CSV_DROP]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
