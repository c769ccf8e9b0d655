"""FGD's fragmentation measure and the no-departure allocation experiment."""

from __future__ import annotations

import numpy as np
import pytest

from worker.sim.allocation import PLACERS, allocation_curve, inflated_pods, inflation_scenario, run_inflation
from worker.sim.engine import RUNNING, UNSCHEDULABLE, ClusterSim
from worker.sim.env import SchedulingEnv
from worker.sim.evaluate import run_episode
from worker.sim.fragmentation import ShapeTable, fragmentation_delta
from worker.sim.heuristics import make_heuristic
from worker.sim.model import Job, Node, Scenario
from worker.sim.traces import OPENB_INFLATION, openb_cluster, openb_pod_shapes
from worker.sim.workloads import WorkloadSpec, make_scenario


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


def test_typical_shapes_are_the_most_common_first_ties_by_first_appearance() -> None:
    sizes = [(1.0, 0.0), (2.0, 1.0), (4.0, 0.5), (2.0, 1.0), (4.0, 0.5), (2.0, 1.0), (4.0, 0.5)]
    jobs = tuple(Job(f"j{i}", c, g, 1, float(i), 1.0, 1.0, np.inf) for i, (c, g) in enumerate(sizes))
    sim = ClusterSim(Scenario("shapes", (Node("n", 8.0, 0, {"V100M32": 2}),), jobs, 10.0), window=1)
    table = ShapeTable.from_jobs(sim)  # 95% of 7 jobs: both shapes of three, then the CPU job
    assert table.cpus.tolist() == [2.0, 4.0, 1.0]
    assert table.share.tolist() == [1.0, 0.5, 0.0] and table.devices.tolist() == [1, 1, 0]
    np.testing.assert_allclose(table.weight, [3 / 7, 3 / 7, 1 / 7])
    assert ShapeTable.from_jobs(sim, coverage=0.8).cpus.tolist() == [2.0, 4.0]
    assert ShapeTable.from_jobs(sim, [0, 2]).cpus.tolist() == [1.0, 4.0]


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


def test_a_list_asking_for_more_is_cut_where_it_reaches_130_percent() -> None:
    shapes = [(4.0, 8.0, 1.0, ())] * 500
    pods = inflated_pods(shapes, capacity=100.0, seed=1)
    assert len(pods) == 130


def test_any_policy_run_through_the_env_is_judged_as_fgds_experiment() -> None:
    """The env's placement-only episodes (fail on arrival, FGD's device choice) give a
    heuristic exactly the curve of the experiment's own loop: a learned placement run
    through the env is measured on the same terms as FGD."""
    nodes, shapes = openb_cluster()[:40], openb_pod_shapes("default")[:600]
    expected = run_inflation(nodes, shapes, "fgd", seed=42)
    env = run_episode(make_heuristic("fifo+fgd"), inflation_scenario(nodes, shapes, 42), 1, 42)
    curve = allocation_curve(env.sim, "fifo+fgd")
    assert curve.allocated == pytest.approx(expected.allocated)
    assert curve.failed == expected.failed > 0
    assert env.metrics().gpu_allocated == pytest.approx(curve.at(130) / 100)


def test_a_pod_that_fits_nowhere_on_arrival_fails_and_none_waits() -> None:
    node = Node("one", 16.0, 0, {"V100M32": 1})
    scenario = Scenario(
        "inflation", (node,), (pod(0, 0.5), pod(1, 1.0), pod(2, 0.5), pod(3, 0.25)), 4.0, placement_only=True
    )
    env = SchedulingEnv({"nodes": 1, "window": 1, "objective": "allocation"})
    env.load_scenario(scenario)
    total, steps, done = 0.0, 0, False
    while not done:
        mask = env._obs["action_mask"]
        assert mask[0] == 1 and mask[-1] == 0, "a pod that fits is placed, never held back"
        _, reward, terminated, truncated, _ = env.step(0)
        total, steps, done = total + reward, steps + 1, terminated or truncated
    assert terminated and steps == 2  # the whole-GPU pod and the last quarter never fit
    assert list(env.sim.state) == [RUNNING, UNSCHEDULABLE, RUNNING, UNSCHEDULABLE]
    assert total == pytest.approx(env.metrics().gpu_allocated) == pytest.approx(1.0)


def test_openb_inflation_trace_draws_a_slice_and_its_pods() -> None:
    spec = WorkloadSpec(OPENB_INFLATION, nodes=40)
    scenario = make_scenario(spec, seed=3)
    capacity = sum(sum(n.gpus.values()) for n in scenario.nodes)
    gpus = [j.gpus for j in scenario.jobs]
    assert len(scenario.nodes) == 40 and scenario.placement_only
    assert sum(gpus) >= 1.3 * capacity > sum(gpus[:-1])
    assert make_scenario(spec, seed=3) == scenario != make_scenario(spec, seed=4)
    with pytest.raises(ValueError, match="no time axis"):
        make_scenario(WorkloadSpec(OPENB_INFLATION, nodes=40, load=0.9), seed=3)


def test_openb_inflation_trains_on_the_default_list_s_training_rows_only() -> None:
    """Shapes found only among the held-out last 30% of the default list never appear in
    a training episode (FGD's own experiment, judged on held-out data, places them all)."""
    train = set(openb_pod_shapes("default", "train"))
    every = openb_pod_shapes("default")
    held_out_only = set(every) - train
    assert held_out_only and 0.6 < len(openb_pod_shapes("default", "train")) / len(every) < 0.8
    for seed in range(3):
        scenario = make_scenario(WorkloadSpec(OPENB_INFLATION, nodes=40), seed=seed)
        shapes = {(j.cpus, j.memory_gb, j.gpus, j.gpu_types) for j in scenario.jobs}
        assert shapes <= train and not shapes & held_out_only
