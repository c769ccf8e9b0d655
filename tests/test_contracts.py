"""The contracts module is the app's only window on the worker: it must agree with the
simulator and stay light enough for the API process and Temporal's sandbox."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from worker.contracts import (
    HEURISTIC_POLICIES,
    TRACE_WORKLOADS,
    WORKLOAD_PRESETS,
    NodeSpec,
    PlanInput,
    PolicyRef,
    PPOParams,
    WorkloadConfig,
)


def test_names_match_the_simulator() -> None:
    from worker.sim.heuristics import HEURISTICS
    from worker.sim.traces import TRACE_NAMES
    from worker.sim.workloads import PRESETS

    assert set(WORKLOAD_PRESETS) == set(PRESETS)
    assert set(HEURISTIC_POLICIES) == set(HEURISTICS)
    assert set(TRACE_WORKLOADS) == set(TRACE_NAMES)


def test_importing_contracts_loads_no_heavy_modules() -> None:
    code = (
        "import sys, worker.contracts; "
        "print(sorted(m for m in ('numpy', 'ray', 'torch', 'worker.sim') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bad_inputs_are_rejected_with_the_field_named() -> None:
    with pytest.raises(ValidationError, match="unknown workload 'nope'"):
        WorkloadConfig(name="nope")
    with pytest.raises(ValidationError, match="unknown GPU type 'h100'"):
        NodeSpec(id="n1", cpus=8, gpus={"h100": 8})
    assert NodeSpec(id="n1", cpus=8, gpus={"h100": 8}, gpu_speed={"h100": 2.0}).gpus == {"h100": 8}
    with pytest.raises(ValidationError, match="minibatch_size"):
        PPOParams(train_batch_size=128, minibatch_size=256)
    with pytest.raises(ValidationError, match="either nodes and jobs, or synthetic"):
        PlanInput(policy=PolicyRef(kind="heuristic", name="fifo"))
