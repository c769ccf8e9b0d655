"""FGD's fragmentation measure and the no-departure allocation experiment."""

from __future__ import annotations

import numpy as np
import pytest

from worker.sim.allocation import PLACERS, inflated_pods, run_inflation
from worker.sim.engine import ClusterSim
from worker.sim.fragmentation import ShapeTable, fragmentation_delta
from worker.sim.model import Job, Node, Scenario
from worker.sim.traces import openb_cluster, openb_pod_shapes


def pod(i: int, gpus: float, cpus: float = 4.0) -> Job:
    return Job(f"p{i}", cpus, gpus, 1, float(i), 1e15, 1e15, np.inf)


# Half the typical jobs want half a GPU, half want a whole one.
TABLE = ShapeTable(
    cpus=np.array([4.0, 4.0]),
    share=np.array([0.5, 1.0]),
    devices=np.array([1, 1]),
    allowed=np.ones((2, 1), dtype=bool),
    weight=np.array([0.5, 0.5]),
)


def two_nodes(*jobs: Job, cpus: float = 64.0) -> ClusterSim:
    nodes = (Node("half-used", cpus, 0, {"V100M32": 8}), Node("empty", cpus, 0, {"V100M32": 8}))
    sim = ClusterSim(Scenario("frag", nodes, (pod(0, 0.5), *jobs), 2e15), window=1)
    sim.place(0, 0)  # device 0 of "half-used" keeps 0.5 free: a fragment for whole-GPU jobs
    sim.advance(2e15)
    return sim


def test_a_half_gpu_goes_where_it_fills_a_half_used_device() -> None:
    sim = two_nodes(pod(1, 0.5))
    delta = fragmentation_delta(sim, 1, np.array([True, True]), TABLE)
    # before: 0.5 x 0.5 stranded for whole-GPU jobs on "half-used", nothing on "empty"
    np.testing.assert_allclose(delta, [-0.25, 0.25])


def test_a_node_without_cpus_for_a_shape_strands_all_its_free_gpus() -> None:
    sim = two_nodes(pod(1, 1.0, cpus=62.0), cpus=64.0)
    delta = fragmentation_delta(sim, 1, np.array([False, True]), TABLE)
    # With 2 cpus left no typical 4-cpu job fits "empty": all 7 free GPUs are stranded.
    assert delta[0] == np.inf
    assert delta[1] == pytest.approx(7.0)


def test_inflated_pod_list_reaches_130_percent_of_capacity() -> None:
    shapes = [(4.0, 8.0, 1.0, ()), (2.0, 4.0, 0.5, ())]
    pods = inflated_pods(shapes, capacity=100.0, seed=42)
    assert sum(p[2] for p in pods) >= 130.0
    assert pods == inflated_pods(shapes, capacity=100.0, seed=42)


@pytest.mark.parametrize("policy", sorted(PLACERS))
def test_allocation_curve_on_a_slice_of_openb(policy: str) -> None:
    nodes = openb_cluster()[:40]
    curve = run_inflation(nodes, openb_pod_shapes("default")[:600], policy, seed=42)
    allocated = np.array(curve.allocated)
    assert (np.diff(allocated) >= -1e-9).all(), "pods never leave"
    assert allocated.max() <= 100.0 + 1e-9, "never more GPUs than the cluster has"
    assert allocated[130] > 50.0 and curve.failed > 0
