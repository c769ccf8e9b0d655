"""search:<base> in the league and on the CLI: its own kind of row, never the best
heuristic, and every row says what a decision costs."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from app.cli import app
from worker.search.resolve import search_policies
from worker.sim.league import run_league
from worker.sim.workloads import WorkloadSpec


def test_search_rows_have_their_own_kind_and_every_row_its_cost() -> None:
    spec = WorkloadSpec("deadline-tight", nodes=4, jobs=60, load=1.3)
    (searched,), _ = search_policies(["search:fifo"], spec, window=8)
    league = run_league(spec, window=8, episodes=2, seed=5, heuristics=["fifo"], policies=[searched])
    search, fifo = league.row("search:fifo"), league.row("fifo")
    assert (search.kind, fifo.kind) == ("search", "heuristic")
    assert search.value > fifo.value  # the search beats its base here, yet is not a heuristic
    assert league.best_heuristic == "fifo"
    assert search.gap_closed is not None and search.gap_closed > 0
    rows = league.as_dict()["rows"]
    assert all(r["ms_per_decision"] > 0 for r in rows)
    assert search.ms_per_decision > fifo.ms_per_decision


def test_eval_and_league_take_search_policies_by_name() -> None:
    common = ["--workload", "deadline-tight", "--episodes", "1", "--nodes", "4", "--jobs", "30", "--json"]
    result = runner.invoke(app, ["eval", "--policy", "edf", "--policy", "search:edf", *common])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["results"]
    assert sorted((r["policy"], r["kind"]) for r in rows) == [("edf", "heuristic"), ("search:edf", "search")]
    result = runner.invoke(app, ["league", "--heuristics", "standard", "--policy", "search:sjf", *common])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [r["kind"] for r in document["rows"]].count("search") == 1
    assert not document["best_heuristic"].startswith("search:")


def test_an_unknown_base_is_a_usage_error_naming_it() -> None:
    result = runner.invoke(app, ["eval", "--policy", "search:nope", "--episodes", "1", "--nodes", "4"])
    assert result.exit_code == 2
    assert "nope" in result.output


runner = CliRunner()
