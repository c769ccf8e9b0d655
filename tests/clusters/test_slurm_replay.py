"""benchmarks/slurm_replay.py's core on a tiny stream: every job really runs on the emulated
Slurm (twice) and the JSON has the shape the results page reads."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from support.slurm_cluster import missing_programs

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import slurm_replay

pytestmark = pytest.mark.slurm


def test_tiny_replay_runs_every_job_on_slurm_and_reports_all_runs() -> None:
    if missing := missing_programs():
        pytest.skip(f"Slurm is not installed ({', '.join(missing)} missing): `make slurm` installs it")
    if os.geteuid() != 0:
        pytest.skip("the emulated Slurm cluster runs as root")
    result = slurm_replay.run(
        jobs=5, load=None, seed=0, compression=600.0, interval_s=1.0, policy_name="easy:edf+fastest"
    )
    json.dumps(result)  # the JSON the script writes
    assert {"command", "date", "commit", "settings", "runs", "sim_vs_slurm", "jobs"} <= result.keys()
    runs = result["runs"]
    assert set(runs) == {"sim", "sim_fifo_backfill", "slurm_backfill", "slurm_steered"}
    for run in runs.values():
        assert run["jobs_finished"] == 5
        assert 0 < run["score"] <= 1 and run["mean_bounded_slowdown"] >= 1 and 0 < run["utilization"] <= 1
    assert runs["slurm_steered"]["started_by_loop"] >= 1
    assert runs["slurm_steered"]["decisions"].get("start:applied", 0) >= 1

    nodes = {f"node-{i:03d}" for i in range(8)}
    for job in result["jobs"]:
        for name in ("slurm_backfill", "slurm_steered"):
            record = job[name]
            assert record["state"] == "COMPLETED" and record["node"] in nodes
            assert (
                record["end_s"] >= record["start_s"] + job["runtime_s"] - 600
            )  # slept (Slurm's times: whole seconds)
    for pair in result["sim_vs_slurm"]:
        assert pair["start_error"]["jobs"] == 5
        assert set(pair["metric_diff"]) == {"score", "mean_bounded_slowdown", "utilization"}
