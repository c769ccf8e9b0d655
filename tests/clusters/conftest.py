"""A fresh real Slurm cluster per test (tests/slurm_cluster.py: about half a second to
start); skipped, saying what to install, where the Slurm packages are missing."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from slurm_cluster import SlurmCluster, missing_programs, start_slurm_cluster

from worker.cluster_contracts import ClusterConfig


@pytest.fixture
def slurm() -> Iterator[SlurmCluster]:
    if missing := missing_programs():
        pytest.skip(
            f"Slurm is not installed ({', '.join(missing)} missing): `make slurm` installs the Debian "
            "packages slurmctld slurmd slurm-client munge"
        )
    root = Path(tempfile.mkdtemp(prefix="slurm", dir="/tmp"))  # short: munge's socket path is limited
    cluster = start_slurm_cluster(root)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def enforce(slurm: SlurmCluster) -> ClusterConfig:
    return ClusterConfig(name="test", endpoint=str(slurm.conf), mode="enforce", interval_s=5)
