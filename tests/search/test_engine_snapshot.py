"""Engine snapshot/restore: what the search relies on to return to a decision point."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from worker.sim.engine import ClusterSim
from worker.sim.env import SchedulingEnv
from worker.sim.evaluate import run_episode
from worker.sim.heuristics import make_heuristic
from worker.sim.workloads import WorkloadSpec, make_scenario


def assert_same_engine(a: ClusterSim, b: ClusterSim) -> None:
    """Every attribute equal, arrays bit for bit (NaNs included)."""
    assert vars(a).keys() == vars(b).keys()
    for name, value in vars(a).items():
        other = getattr(b, name)
        if isinstance(value, np.ndarray):
            assert value.dtype == other.dtype and value.shape == other.shape, name
            assert value.tobytes() == other.tobytes(), name
        elif name == "job_devices":
            assert value.keys() == other.keys()
            assert all(np.array_equal(value[j], other[j]) for j in value), name
        elif name == "rng":
            assert value.bit_generator.state == other.bit_generator.state
        elif name == "scenario":
            assert value is other
        else:
            assert value == other, name


def play(env, policy, steps: int | None = None) -> list[tuple[int, float]]:
    """(action, reward) of each step, to the end or for `steps` steps."""
    trace = []
    done = False
    while not done and (steps is None or len(trace) < steps):
        action = policy.act(env.decision_view())
        _, reward, terminated, truncated, _ = env.step(action)
        trace.append((action, reward))
        done = terminated or truncated
    return trace


@pytest.mark.parametrize("workload", ["node-failures", "bursty"])
def test_restore_gives_back_a_bit_identical_engine_and_the_same_episode(workload: str) -> None:
    scenario = make_scenario(WorkloadSpec(workload, nodes=6, jobs=60), 3)
    policy = make_heuristic("edf+fastest")
    env = run_episode(policy, scenario, 8, 3)  # the finished env; replay from the start
    env.load_scenario(scenario, 3)
    policy.reset(3)
    play(env, policy, steps=25)
    sim = env.sim
    saved = sim.snapshot()
    at_snapshot = copy.deepcopy(sim)
    original = play(env, policy)
    assert original, "the episode should go on after the snapshot"
    end_state = copy.deepcopy(sim)

    sim.restore(saved)
    at_snapshot.scenario = sim.scenario  # deepcopy copied the (immutable) scenario
    assert_same_engine(sim, at_snapshot)
    env._settle()  # the env's view of the restored engine (pairs, mask) at the same decision
    replayed = play(env, policy)
    assert replayed == original
    end_state.scenario = sim.scenario
    assert_same_engine(sim, end_state)


def test_a_snapshot_survives_many_restores() -> None:
    scenario = make_scenario(WorkloadSpec("steady", nodes=4, jobs=40), 1)
    policy = make_heuristic("sjf+fastest")
    env = run_episode(policy, scenario, 8, 1)
    env.load_scenario(scenario, 1)
    play(env, policy, steps=10)
    saved = env.sim.snapshot()
    runs = []
    for _ in range(3):
        env.sim.restore(saved)
        env._settle()
        runs.append((play(env, policy), env.metrics()))
    assert runs[0] == runs[1] == runs[2]


def test_an_engine_sharing_another_ones_nodes_is_the_engine_built_from_them() -> None:
    """A belief shares its episode's node tables instead of rebuilding them (`cluster=`):
    the engine is bit-identical, plays the same episode, and leaves the other one as it was."""
    scenario = make_scenario(WorkloadSpec("trace:alibaba-gpuspec33", nodes=12, load=0.9, jobs=60), 2)
    other = ClusterSim(scenario, 8, seed=2)
    before = copy.deepcopy(other)
    scenario = dataclasses.replace(scenario, declared_gpu_types=other.gpu_types)
    built, shared = ClusterSim(scenario, 8, seed=2), ClusterSim(scenario, 8, seed=2, cluster=other)
    assert_same_engine(shared, built)
    policy = make_heuristic("sjf+fgd")
    runs = []
    for sim in (built, shared):
        env = SchedulingEnv({"nodes": 12, "window": 8, "observe": False})
        env.attach(sim)
        policy.reset(2)
        runs.append((play(env, policy), env.metrics()))
    assert runs[0] == runs[1]
    before.scenario = other.scenario
    assert_same_engine(other, before)
    with pytest.raises(ValueError, match="scenario's nodes"):
        ClusterSim(make_scenario(WorkloadSpec("steady", nodes=4, jobs=10), 1), 8, cluster=other)
