"""`rlsched label`: labels training episodes into a Parquet file that names what made it;
bad names and options are usage errors before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app

pytestmark = pytest.mark.rl

runner = CliRunner()
TINY = ["--workload", "deadline-tight", "--nodes", "4", "--jobs", "40", "--window", "8"]


@pytest.fixture
def data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    from worker.settings import get_settings

    path = tmp_path_factory.mktemp("rlc", numbered=True)
    monkeypatch.setenv("RLSCHED_DATA_DIR", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def test_label_writes_the_episodes_and_what_made_them(data_dir: Path) -> None:
    from worker.rl.labels import TRAINING_SEED_OFFSET, metadata_of, read_labels

    out = data_dir / "labels"
    result = runner.invoke(
        app,
        ["label", *TINY, "--search", "search:edf+fastest", "--episodes", "2", "--candidates", "4",
         "--depth", "1", "--budget-ms", "60000", "--out", str(out), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    table = read_labels(out)
    meta = metadata_of(table)
    assert summary["labels"] == str(out) and summary["decisions"] == table.num_rows > 0
    assert meta["seeds"] == summary["seeds"] and min(meta["seeds"]) >= TRAINING_SEED_OFFSET
    assert meta["search"] == "search:edf+fastest" and meta["options"]["candidates"] == 4


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--search", "search:nope"], "nope"),
        (["--search", "tuned"], "search:<base>"),
        (["--candidates", "0"], "candidates"),
    ],
)
def test_bad_labelling_input_is_a_usage_error(data_dir: Path, args: list[str], named: str) -> None:
    result = runner.invoke(app, ["label", *TINY, "--episodes", "1", *args])
    assert result.exit_code == 2, result.output
    assert named in result.output
