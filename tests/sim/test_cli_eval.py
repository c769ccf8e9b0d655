from __future__ import annotations

import json

from typer.testing import CliRunner

from app.cli import app

runner = CliRunner()


def test_eval_json_has_one_row_per_policy_with_every_metric() -> None:
    result = runner.invoke(
        app,
        ["eval", "--workload", "steady", "--policy", "fifo", "--policy", "sjf",
         "--episodes", "2", "--nodes", "4", "--jobs", "40", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["results"]
    assert [r["policy"] for r in rows] == ["fifo", "sjf"]
    for key in ("score", "mean_bounded_slowdown", "p95_bounded_slowdown", "mean_wait",
                "gpu_utilization", "cpu_utilization", "makespan", "jobs_finished"):  # fmt: skip
        assert isinstance(rows[0][key], float)


def test_eval_table_and_trace_workload() -> None:
    result = runner.invoke(
        app, ["eval", "--workload", "trace:alibaba-default:train", "--load", "0.9",
              "--episodes", "1", "--nodes", "8", "--jobs", "50"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "packing" in result.stdout and "score" in result.stdout


def test_eval_unknown_workload_is_a_clear_usage_error() -> None:
    result = runner.invoke(app, ["eval", "--workload", "nope", "--episodes", "1"])
    assert result.exit_code == 2
    assert "unknown workload 'nope'" in result.output
