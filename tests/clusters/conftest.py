"""Fresh real Slurm clusters per test (tests/support/slurm_cluster.py: about half a second to
start); skipped, saying what to install, where Slurm is missing or we are not root."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from support.slurm_cluster import (
    DEFAULT_NODES,
    EmulatedNode,
    SlurmCluster,
    StartSlurm,
    missing_programs,
    start_slurm_cluster,
)

from worker.contracts.clusters import ClusterConfig


@pytest.fixture
def start_slurm() -> Iterator[StartSlurm]:
    """Starts clusters of the given nodes; stops them and removes their files after the test."""
    if missing := missing_programs():
        pytest.skip(
            f"Slurm is not installed ({', '.join(missing)} missing): `make slurm` installs the Debian "
            "packages slurmctld slurmd slurm-client munge"
        )
    if os.geteuid() != 0:
        pytest.skip("the emulated Slurm cluster runs as root (SlurmUser=root, GPUs made with mknod)")
    started: list[SlurmCluster] = []

    def start(nodes: Sequence[EmulatedNode]) -> SlurmCluster:
        root = Path(tempfile.mkdtemp(prefix="slurm", dir="/tmp"))  # short: munge's socket path is limited
        try:
            started.append(start_slurm_cluster(root, nodes))
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return started[-1]

    try:
        yield start
    finally:
        for cluster in started:
            cluster.stop()
            shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture
def slurm(start_slurm: StartSlurm) -> SlurmCluster:
    """The default eight nodes: four with 8 p5 GPUs, three with 4 p4 GPUs, one CPU-only."""
    return start_slurm(DEFAULT_NODES)


@pytest.fixture
def enforce(slurm: SlurmCluster) -> ClusterConfig:
    return ClusterConfig(name="test", endpoint=str(slurm.conf), mode="enforce", interval_s=5)
