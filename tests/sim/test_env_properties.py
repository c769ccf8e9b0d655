"""Invariants of the simulator on arbitrary small clusters and workloads (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.contracts import OBJECTIVES
from worker.sim.engine import DONE, UNSCHEDULABLE
from worker.sim.env import SchedulingEnv
from worker.sim.model import Job, Node, NodeFailures, NodeStatus, Scenario
from worker.sim.objectives import get_objective

GPU_TYPES = ("p5", "p4")


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    n_nodes = draw(st.integers(1, 4))
    nodes = []
    for i in range(n_nodes):
        gpu_type = draw(st.sampled_from((*GPU_TYPES, None)))
        gpus = {gpu_type: float(draw(st.integers(1, 8)))} if gpu_type else {}
        status = draw(st.sampled_from([NodeStatus.OK] * 4 + [NodeStatus.DOWN, NodeStatus.BUSY]))
        nodes.append(Node(f"n{i}", float(draw(st.integers(1, 64))), 256.0, gpus, status=status))
    jobs = []
    t = 0.0
    for i in range(draw(st.integers(1, 25))):
        t += draw(st.floats(0, 500))
        runtime = draw(st.floats(1, 5000))
        gpus = draw(st.sampled_from([0.0, 0.25, 0.5, 0.6, 1.0, 2.0, 4.0, 9.0]))
        types = draw(st.sampled_from([(), ("p5",), ("p4",), ("p5", "p4")]))
        jobs.append(
            Job(
                f"j{i}",
                cpus=float(draw(st.integers(1, 80))),
                gpus=gpus,
                priority=draw(st.integers(1, 3)),
                submit_s=t,
                runtime_estimate_s=runtime * draw(st.floats(0.5, 2.0)),
                runtime_s=runtime,
                deadline_s=t + runtime * draw(st.floats(0.5, 4.0)),
                memory_gb=float(draw(st.integers(0, 300))),
                gpu_types=types,
            )
        )
    failures = draw(st.sampled_from([None, NodeFailures(3000.0, 500.0)]))
    return Scenario("hypothesis", tuple(nodes), tuple(jobs), 1e7, failures)


def play(scenario: Scenario, seed: int, window: int = 4, invalid_every: int = 3, objective: str = "deadline"):
    """Random valid actions, with deliberately masked actions mixed in."""
    env = SchedulingEnv({"nodes": len(scenario.nodes), "window": window, "objective": objective})
    env.load_scenario(scenario, seed)
    rng = np.random.default_rng(seed)
    obs = env._obs
    rewards, trace = [], []
    for step in range(5_000):
        mask = obs["action_mask"]
        sim = env.sim
        assert mask.any(), "some action must always be valid"
        assert (sim.free_cpu >= -1e-6).all() and (sim.free_cpu <= sim.cap_cpu + 1e-6).all()
        assert (sim.free_gpu >= -1e-6).all() and (sim.free_gpu <= sim.cap_gpu + 1e-6).all()
        assert (sim.free_mem >= -1e-6).all()
        assert_devices_consistent(sim)
        invalid = np.flatnonzero(mask[:-1] == 0)
        if step % invalid_every == 0 and len(invalid):
            before = sim.placements
            action = int(rng.choice(invalid))
            _, reward, terminated, truncated, _ = env.step(action)
            # A masked pair is never applied: at most the env fell back to the first valid
            # pair because WAIT itself was masked.
            assert sim.placements - before <= (0 if mask[-1] else 1)
        else:
            action = int(rng.choice(np.flatnonzero(mask)))
            _, reward, terminated, truncated, _ = env.step(action)
        obs = env._obs
        assert math.isfinite(reward)
        rewards.append(reward)
        trace.append((action, reward, sim.now))
        if terminated or truncated:
            return env, rewards, trace, terminated
    raise AssertionError("episode did not end")


def assert_devices_consistent(sim) -> None:
    """No device is over-committed: a fractional job holds a share of one device, a
    whole-GPU job whole devices nobody else uses, and the pooled counts agree."""
    assert (sim.dev_free >= -1e-6).all() and (sim.dev_free <= sim.dev_cap + 1e-6).all()
    used = np.zeros_like(sim.dev_free)
    for job, devices in sim.job_devices.items():
        node, need = sim.node_of[job], sim.gpu[job]
        assert (sim.dev_type[node, devices] == sim.type_of[job]).all()
        if need < 1:
            assert len(devices) == 1
            used[node, devices] += need
        else:
            assert len(devices) == math.ceil(need)
            assert (used[node, devices] == 0).all(), "a whole-GPU job shares a device"
            used[node, devices] += sim.dev_cap[node, devices]
    np.testing.assert_allclose(sim.dev_free, sim.dev_cap - used, atol=1e-6)
    for t in range(sim.cap_gpu.shape[1]):
        of_type = sim.dev_type == t
        np.testing.assert_allclose(sim.free_gpu[:, t], (sim.dev_free * of_type).sum(axis=1), atol=1e-6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios(), seed=st.integers(0, 2**16))
def test_episode_invariants(scenario: Scenario, seed: int) -> None:
    env, rewards, _, terminated = play(scenario, seed)
    sim = env.sim
    metrics = env.metrics()
    assert terminated
    # Every job finished exactly once, or was reported unschedulable.
    assert set(np.unique(sim.state)) <= {DONE, UNSCHEDULABLE}
    assert metrics.jobs_finished + metrics.unschedulable == len(scenario.jobs)
    assert np.isnan(sim.finish[sim.state == UNSCHEDULABLE]).all()
    # Return equals the headline score: the reward is its exact decomposition.
    assert math.isclose(sum(rewards), metrics.score, abs_tol=1e-9)
    assert 0.0 <= metrics.score <= 1.0


@settings(max_examples=25, deadline=None)
@given(scenario=scenarios(), seed=st.integers(0, 2**16))
def test_same_seed_same_episode(scenario: Scenario, seed: int) -> None:
    _, _, first, _ = play(scenario, seed)
    _, _, second, _ = play(scenario, seed)
    assert first == second


@settings(max_examples=40, deadline=None)
@given(scenario=scenarios())
def test_masked_pairs_do_not_fit(scenario: Scenario) -> None:
    """The mask says exactly which pairs fit, and the pair features what starting there
    would mean, against the vectorised reference."""
    env = SchedulingEnv({"nodes": len(scenario.nodes), "window": 4})
    env.load_scenario(scenario, 0)
    for _ in range(50):
        view = env.decision_view()
        sim = env.sim
        reference = sim.fit(view.window)
        np.testing.assert_array_equal(view.fits, reference.fits)
        np.testing.assert_allclose(view.speed[view.fits], reference.speed[view.fits])
        pairs = view.obs["pairs"]
        run = sim.estimate[view.window][:, None] / np.where(reference.fits, reference.speed, 1.0)
        meets = sim.now + run <= sim.deadline[view.window][:, None]
        np.testing.assert_array_equal(pairs[..., 4], np.where(reference.fits, meets, 0.0))
        np.testing.assert_allclose(
            pairs[..., 5], np.where(reference.fits, np.log1p(run * env.scales.inv_time), 0.0), rtol=1e-6
        )
        mask = view.obs["action_mask"]
        valid = np.flatnonzero(mask)
        _, _, terminated, truncated, _ = env.step(int(valid[0]))
        if terminated or truncated:
            break


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios(), seed=st.integers(0, 2**16), objective=st.sampled_from(OBJECTIVES))
def test_return_equals_the_objective_metric(scenario: Scenario, seed: int, objective: str) -> None:
    """Every objective's reward is its metric decomposed exactly, failures included."""
    env, rewards, _, terminated = play(scenario, seed, objective=objective)
    assert terminated
    value = get_objective(objective).value(env.metrics().as_dict())
    assert math.isclose(sum(rewards), value, rel_tol=1e-9, abs_tol=1e-9)
