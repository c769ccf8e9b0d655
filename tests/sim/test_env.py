from __future__ import annotations

import importlib
import math
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import worker.sim
from worker.sim import ENV_ID
from worker.sim.env import EnvConfig, SchedulingEnv
from worker.sim.model import Job, Node, Scenario
from worker.sim.workloads import PRESETS, WorkloadSpec, make_scenario


def test_passes_gymnasium_env_checker() -> None:
    check_env(gymnasium.make(ENV_ID, workload="steady", nodes=4, window=8, jobs=30).unwrapped)


def test_gymnasium_makes_the_registered_env_from_keywords_or_a_config() -> None:
    made = gymnasium.make(ENV_ID, nodes=4, window=8, jobs=30)
    assert made.unwrapped.config == EnvConfig(nodes=4, window=8, jobs=30)
    typed = gymnasium.make(ENV_ID, config=EnvConfig(nodes=4, window=8, jobs=30))
    rllib_dict = SchedulingEnv({"nodes": 4, "window": 8, "jobs": 30})
    first = [env.reset(seed=1)[0] for env in (made, typed, rllib_dict)]
    assert made.observation_space.contains(first[0])
    for obs in first[1:]:
        assert obs.keys() == first[0].keys()
        for key, value in obs.items():
            np.testing.assert_array_equal(value, first[0][key])


def test_registering_again_on_reimport_is_a_no_op() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.reload(worker.sim)
    assert [name for name in gymnasium.registry if name.startswith("rlsched/")] == [ENV_ID]


def test_an_unknown_config_name_is_refused_not_ignored() -> None:
    """A teacher is a wrapper's business (worker/sim/teacher.py), not the env's."""
    with pytest.raises(ValueError, match="unknown env config \\['prior'\\]"):
        SchedulingEnv({"nodes": 4, "prior": "edf"})
    with pytest.raises(ValueError, match="'windows'"):
        gymnasium.make(ENV_ID, windows=8)


@pytest.mark.parametrize(("window", "nodes"), [(8, 4), (32, 16), (5, 64)])
def test_shapes_follow_config(window: int, nodes: int) -> None:
    env = SchedulingEnv({"workload": "steady", "nodes": nodes, "window": window, "jobs": 40})
    obs, _ = env.reset(seed=1)
    assert obs["pairs"].shape[:2] == (window, nodes)
    assert obs["action_mask"].shape == (window * nodes + 1,)
    assert env.action_space.n == window * nodes + 1
    assert env.observation_space.contains(obs)


def test_reset_with_same_seed_reproduces_the_episode() -> None:
    env = SchedulingEnv({"workload": "bursty", "nodes": 8, "jobs": 60})
    runs = []
    for _ in range(2):
        obs, _ = env.reset(seed=7)
        total = 0.0
        done = False
        while not done:
            action = int(np.flatnonzero(obs["action_mask"])[0])
            obs, reward, terminated, truncated, _ = env.step(action)
            total += reward
            done = terminated or truncated
        runs.append((total, env.metrics()))
    assert runs[0] == runs[1]


def tiny(deadline: float) -> Scenario:
    nodes = (Node("fast", 8, 64, {"p5": 1}), Node("slow", 8, 64, {"p4": 1}))
    job = Job("a", 1, 1, 2, 0.0, 100.0, 100.0, deadline)
    return Scenario("tiny", nodes, (job,), 1e6)


def test_gpu_speed_scales_runtime_and_reward_pays_on_time_starts() -> None:
    env = SchedulingEnv({"nodes": 2, "window": 1})
    env.load_scenario(tiny(deadline=120.0))
    _, reward, terminated, _, _ = env.step(1)  # slow p4 node: 100 / 0.6 > 120
    assert reward == 0.0 and terminated
    assert math.isclose(env.sim.finish[0], 100 / 0.6)
    env.load_scenario(tiny(deadline=120.0))
    _, reward, terminated, _, _ = env.step(0)  # fast p5 node makes the deadline
    assert reward == 1.0 and env.metrics().score == 1.0


def test_wait_advances_to_next_event_and_is_masked_when_pointless() -> None:
    nodes = (Node("n", 4, 0, {}),)
    jobs = (Job("a", 4, 0, 1, 0.0, 50, 50, 1e9), Job("b", 4, 0, 1, 10.0, 50, 50, 1e9))
    env = SchedulingEnv({"nodes": 1, "window": 2})
    env.load_scenario(Scenario("w", nodes, jobs, 1e6))
    assert env._obs["action_mask"].tolist() == [1, 0, 1]  # place a, or wait for b
    env.step(2)  # WAIT: b arrives at t=10
    assert env.sim.now == 10.0
    assert env._obs["action_mask"].tolist() == [1, 1, 0]  # nothing left to wait for
    env.step(0)  # a starts at 10; b cannot fit until a finishes at 60
    assert env.sim.now == 60.0
    assert env._obs["action_mask"].tolist() == [1, 0, 0]


def test_without_backfilling_a_picked_job_holds_back_every_later_one() -> None:
    """RLScheduler's setting: the next job is picked whenever one waits, and if it does
    not fit yet nothing else starts, not even a small job that would fit beside it."""
    nodes = (Node("pool", 4, 0, {}),)
    jobs = (
        Job("a", 3, 0, 1, 0.0, 100, 100, math.inf),
        Job("b", 4, 0, 1, 1.0, 50, 50, math.inf),
        Job("c", 1, 0, 1, 2.0, 10, 10, math.inf),
    )
    env = SchedulingEnv({"nodes": 1, "window": 2, "backfilling": False})
    env.load_scenario(Scenario("strict", nodes, jobs, 1e6))
    env.step(0)  # a starts at 0
    assert env.sim.now == 1.0
    assert env._obs["action_mask"].tolist() == [1, 0, 0]  # b may be picked, though it cannot start yet
    env.step(0)
    env.step(0)
    assert env.sim.start.tolist() == [0.0, 100.0, 150.0]

    backfilling = SchedulingEnv({"nodes": 1, "window": 2})
    backfilling.load_scenario(Scenario("easy", nodes, jobs, 1e6))
    backfilling.step(0)
    assert backfilling.sim.now == 2.0
    assert backfilling._obs["action_mask"].tolist() == [0, 1, 1]  # c fits beside a
    backfilling.step(1)
    assert backfilling.sim.start[2] == 2.0


def test_job_fitting_no_node_is_reported_unschedulable() -> None:
    nodes = (Node("n", 4, 0, {"p4": 2}),)
    jobs = (
        Job("ok", 1, 1, 1, 0.0, 5, 5, 100),
        Job("needs-p5", 1, 1, 3, 0.0, 5, 5, 100, gpu_types=("p5",)),
        Job("too-big", 8, 0, 1, 0.0, 5, 5, 100),
    )
    env = SchedulingEnv({"nodes": 1, "window": 4})
    env.load_scenario(Scenario("u", nodes, jobs, 1e6))
    _, _, terminated, _, _ = env.step(0)
    metrics = env.metrics()
    assert terminated
    assert metrics.unschedulable == 2 and metrics.jobs_finished == 1
    assert metrics.score == 1.0  # unschedulable jobs are outside every policy's reach


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_are_seeded_and_hit_their_offered_load(name: str) -> None:
    spec = WorkloadSpec(name, nodes=8, load=0.8, jobs=300)
    a, b = make_scenario(spec, 3), make_scenario(spec, 3)
    assert a == b
    assert a != make_scenario(spec, 4)
    submits = [j.submit_s for j in a.jobs]
    assert submits == sorted(submits)
    assert all(j.deadline_s > j.submit_s for j in a.jobs)


def test_unknown_workload_names_the_choices() -> None:
    with pytest.raises(ValueError, match="steady"):
        make_scenario(WorkloadSpec("nope"), 0)


def test_observation_says_when_nodes_free_up_and_when_the_next_job_arrives() -> None:
    """By the estimates (what a scheduler knows), never the actual runtimes."""
    import math

    from worker.sim.model import Job, Node, Scenario

    nodes = (Node("busy", 8, 0, {"p5": 1}), Node("idle", 8, 0, {"p5": 1}))
    jobs = (Job("a", 1, 1, 1, 0.0, 1000, 5000, 1e6), Job("b", 1, 1, 1, 300.0, 1000, 1000, 1e6))
    env = SchedulingEnv({"nodes": 2, "window": 2})
    env.load_scenario(Scenario("t", nodes, jobs, 1e6))
    inv_time = env.scales.inv_time
    first = env.decision_view().obs
    assert math.isclose(first["global"][7], math.log1p(300 * inv_time), rel_tol=1e-5)
    obs, *_ = env.step(0)  # "a" starts on "busy" at t=0, estimated to end at 1000 (really 5000)
    assert env.sim.now == 300.0  # nothing else could start before "b" arrived
    assert math.isclose(obs["nodes"][0, 8], math.log1p(700 * inv_time), rel_tol=1e-5)
    assert obs["nodes"][1, 8] == 0.0
    assert obs["global"][7] == 5.0  # no arrival left
