"""The dashboard's plots, drawn on the server with matplotlib as inline SVG: no
JavaScript, no CDN, the page works offline and prints. Figures are built with the
object API (`Figure` + the SVG canvas), never pyplot, whose global state is not safe
across the threads requests are served on."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # no display; set before anything else from matplotlib loads a backend

from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.patches import Patch

PRIORITY_COLOURS = {1: "#9ecae1", 2: "#3182bd", 3: "#08306b"}
"""Light to dark blue: a higher priority is darker (readable in grey too)."""
MISS_COLOUR = "#d62728"

matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable
matplotlib.rcParams["svg.hashsalt"] = "rlsched"  # stable ids: the same data, the same SVG


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    FigureCanvasSVG(figure).print_svg(buffer)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and doctype to inline it


def _figure(width: float = 7.5, height: float = 3.2) -> tuple[Figure, object]:
    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.add_subplot()
    axes.grid(True, alpha=0.3)
    return figure, axes


def round_scores_svg(
    rounds: Sequence[int],
    scores: Sequence[float],
    best_heuristic: Sequence[float],
    bounds: Sequence[float | None],
    objective: str,
) -> str:
    """PPO's held-out value per round against the best heuristic's and the bound."""
    figure, axes = _figure()
    axes.plot(rounds, scores, "o-", color="#1f77b4", label="PPO (held-out)")
    axes.plot(rounds, best_heuristic, "s--", color="#ff7f0e", label="best heuristic")
    known = [(r, b) for r, b in zip(rounds, bounds, strict=True) if b is not None]
    if known:
        axes.plot(
            [r for r, _ in known], [b for _, b in known], ":", color="#2ca02c", label="empty-cluster bound"
        )
    axes.set_xlabel("round")
    axes.set_ylabel(objective)
    if rounds:
        axes.set_xticks(list(rounds) if len(rounds) <= 20 else axes.get_xticks())
    axes.legend(loc="best", fontsize="small")
    return _svg(figure)


def iteration_returns_svg(
    iterations: Sequence[int], returns: Sequence[float | None], rounds: Sequence[int]
) -> str:
    """Mean episode return per PPO iteration; dotted lines mark where rounds begin."""
    figure, axes = _figure()
    points = [(i, r) for i, r in zip(iterations, returns, strict=True) if r is not None and math.isfinite(r)]
    axes.plot([i for i, _ in points], [r for _, r in points], ".-", color="#1f77b4")
    previous = None
    for iteration, round_ in zip(iterations, rounds, strict=True):
        if previous is not None and round_ != previous:
            axes.axvline(iteration - 0.5, color="grey", linestyle=":", linewidth=0.8)
        previous = round_
    axes.set_xlabel("PPO iteration")
    axes.set_ylabel("mean episode return")
    return _svg(figure)


@dataclass(frozen=True)
class Bar:
    job_id: str
    node_id: str
    start_s: float
    finish_s: float
    priority: int
    meets_deadline: bool


MAX_NODE_LABELS = 40


def gantt_svg(bars: Sequence[Bar], nodes: Sequence[str]) -> str:
    """Nodes down, time across; a job is a bar on its node, coloured by priority; a bar
    that misses its deadline gets a red edge, hatching and an x at its finish."""
    rows = {node: i for i, node in enumerate(nodes)}
    height = min(12.0, max(2.5, 0.32 * len(nodes) + 1.2))
    figure, axes = _figure(9.0, height)
    for priority, colour in PRIORITY_COLOURS.items():
        for node, row in rows.items():
            spans = [
                (b.start_s, b.finish_s - b.start_s)
                for b in bars
                if b.node_id == node and b.priority == priority
            ]
            if spans:
                axes.broken_barh(
                    spans, (row - 0.4, 0.8), facecolors=colour, edgecolors="white", linewidth=0.4
                )
    missed = [b for b in bars if not b.meets_deadline]
    for node, row in rows.items():
        spans = [(b.start_s, b.finish_s - b.start_s) for b in missed if b.node_id == node]
        if spans:
            axes.broken_barh(
                spans, (row - 0.4, 0.8), facecolors="none", edgecolors=MISS_COLOUR, hatch="///", linewidth=1.0
            )
    if missed:
        axes.plot(
            [b.finish_s for b in missed],
            [rows[b.node_id] for b in missed],
            "x",
            color=MISS_COLOUR,
            markersize=6,
        )
    axes.set_yticks(range(len(nodes)))
    axes.set_yticklabels(nodes if len(nodes) <= MAX_NODE_LABELS else ["" for _ in nodes], fontsize="small")
    axes.set_ylim(len(nodes) - 0.5, -0.5)
    axes.set_xlim(0, max((b.finish_s for b in bars), default=1.0) * 1.02)
    axes.set_xlabel("time from now (s)")
    axes.set_ylabel("node")
    legend = [Patch(facecolor=c, label=f"priority {p}") for p, c in PRIORITY_COLOURS.items()]
    legend.append(
        Patch(facecolor="none", edgecolor=MISS_COLOUR, hatch="///", label=f"misses deadline ({len(missed)})")
    )
    axes.legend(handles=legend, loc="upper right", fontsize="small", framealpha=0.9)
    return _svg(figure)
