"""`rlsched plan REQUEST.json`: a POST /schedule body planned locally, without Temporal, by
the plan activity's own code (the same plan as the activity's for the same input); a bad
field is exit code 2 naming it, as the API's 422 does."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import worker.cli
from app.cli import app
from worker.activities.inference import _plan
from worker.contracts import PlanOutput
from worker.plan_file import plan_input

runner = CliRunner()

NODES = [{"id": "a", "cpus": 16, "gpus": {"p5": 8}}, {"id": "b", "cpus": 16, "gpus": {"p4": 4}}]
JOBS = [
    {
        "id": f"j{i}",
        "cpus": 2,
        "gpus": 1 + i % 4,
        "priority": 1 + i % 3,
        "runtime_estimate_s": 600 + 250 * i,
        "deadline_s": 1200 + 400 * i,
    }
    for i in range(12)
]
BODY = {"nodes": NODES, "jobs": JOBS, "policy": "edf+fastest", "class": "steady"}
SEARCH = {"candidates": 4, "depth": 1, "budget_ms": 10_000}


def flat(output: str) -> str:
    """The CLI's words, without the error panel's borders and line breaks."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


def request_file(tmp_path: Path, body: object) -> str:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(body))
    return str(path)


def test_a_heuristic_plan_is_a_table_of_every_job(tmp_path: Path) -> None:
    result = runner.invoke(app, ["plan", request_file(tmp_path, BODY)])
    assert result.exit_code == 0, result.output
    assert "edf+fastest: 12 placed, 0 unplaced" in result.stdout and "baseline edf" in result.stdout
    assert all(f" {job['id']} " in result.stdout for job in JOBS)


def test_a_search_plan_is_the_plan_activity_s_plan(tmp_path: Path) -> None:
    body = {**BODY, "search": SEARCH}
    result = runner.invoke(app, ["plan", request_file(tmp_path, body), "--policy", "search:tuned", "--json"])
    assert result.exit_code == 0, result.output
    planned = PlanOutput.model_validate_json(result.stdout)
    direct = _plan(plan_input({**body, "policy": "search:tuned"}))
    assert planned.policy == "search:tuned" and planned.placements == direct.placements
    assert planned.metrics == direct.metrics and planned.baseline == direct.baseline
    assert any("search over tuned" in note and "4 candidates" in note for note in planned.notes)


def test_search_options_on_the_command_line_override_the_file_s(tmp_path: Path) -> None:
    args = ["plan", request_file(tmp_path, {**BODY, "search": SEARCH}), "--policy", "search:sjf"]
    result = runner.invoke(app, [*args, "--candidates", "2", "--baseline", "none", "--json"])
    assert result.exit_code == 0, result.output
    planned = PlanOutput.model_validate_json(result.stdout)
    assert planned.baseline is None and any("2 candidates, 1 rollout(s), depth 1" in n for n in planned.notes)


def test_a_search_shows_its_progress_over_the_decisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, color_system=None, width=120)
    monkeypatch.setattr(worker.cli, "console", terminal)
    args = ["plan", request_file(tmp_path, {**BODY, "search": SEARCH}), "--policy", "search:edf"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "jobs placed" in screen.getvalue() and "/12" in screen.getvalue()
    assert "search:edf: 12 placed" in screen.getvalue()


def test_each_decision_of_the_plan_reports_the_jobs_placed_so_far() -> None:
    seen: list[tuple[int, int]] = []
    _plan(plan_input({**BODY, "policy": "search:edf", "search": SEARCH}), lambda *done: seen.append(done))
    assert seen[0] == (0, 12) and all(jobs == 12 for _, jobs in seen)
    assert [placed for placed, _ in seen] == sorted(placed for placed, _ in seen) and seen[-1][0] == 11


@pytest.mark.parametrize(
    ("body", "args", "named"),
    [
        ({**BODY, "nodes": [{**NODES[0], "cpus": -1}]}, [], "nodes.0.cpus"),
        ({**BODY, "jobs": [JOBS[0], JOBS[0]]}, [], "duplicate job id 'j0'"),
        ({**BODY, "colour": "red"}, [], "colour"),
        ({**BODY, "policy": "best"}, [], "policy: 'best'"),
        ({k: v for k, v in BODY.items() if k != "policy"}, [], "policy: 'best'"),
        (BODY, ["--policy", "edf+nope"], "unknown placement 'nope'"),
        (BODY, ["--policy", "search:no+such"], "policy"),
        (BODY, ["--policy", "search:ckpt-1"], "--checkpoint"),
        (BODY, ["--policy", "search:tuned", "--candidates", "0"], "search.candidates"),
        (BODY, ["--policy", "search:tuned", "--budget-ms", "1e9"], "search.budget_ms"),
        ({**BODY, "search": {"futures": "sampled"}, "policy": "search:tuned"}, [], "futures 'sampled'"),
        ({**BODY, "search": SEARCH}, [], "search: options are for a search policy"),
        (BODY, ["--baseline", "magic"], "unknown baseline 'magic'"),
        (BODY, ["--policy", "ckpt-1", "--checkpoint", "/nonexistent/ckpt"], "/nonexistent/ckpt"),
        ([1, 2], [], "a JSON object"),
    ],
)
def test_a_bad_request_is_exit_code_2_naming_the_field(
    tmp_path: Path, body: object, args: list[str], named: str
) -> None:
    result = runner.invoke(app, ["plan", request_file(tmp_path, body), *args])
    assert result.exit_code == 2, result.output
    assert named in flat(result.output), result.output


def test_a_file_that_is_not_json_is_exit_code_2(tmp_path: Path) -> None:
    path = tmp_path / "request.json"
    path.write_text("{nodes:")
    result = runner.invoke(app, ["plan", str(path)])
    assert result.exit_code == 2 and "is not JSON" in flat(result.output)
