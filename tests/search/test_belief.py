"""A belief shares the real engine's node tables (what each node is) and copies what the
nodes hold now: rolling out on it never touches the real episode, and it sees the
cluster exactly as the real engine does at the decision point."""

from __future__ import annotations

import copy

import numpy as np
from test_engine_snapshot import assert_same_engine, play

from worker.search.belief import build_belief
from worker.search.rollout import RolloutEnv
from worker.sim.env import SchedulingEnv
from worker.sim.heuristics import make_heuristic
from worker.sim.workloads import WorkloadSpec, make_scenario

SPEC = WorkloadSpec("node-failures", 8, None, 120)


def test_a_belief_sees_the_cluster_as_it_is_and_rollouts_leave_the_episode_alone() -> None:
    env = SchedulingEnv({"nodes": SPEC.nodes, "window": 8, "observe": False})
    env.load_scenario(make_scenario(SPEC, 3), 3)
    base = make_heuristic("laxity+fastest")
    play(env, base, 60)
    real = env.sim
    assert real.running_count.sum() > 0
    before = copy.deepcopy(real)

    belief = build_belief(real)
    for name in ("usable", "free_cpu", "free_mem", "free_gpu", "dev_free", "whole_free", "max_share"):
        assert np.array_equal(getattr(belief, name), getattr(real, name)), name
        assert getattr(belief, name) is not getattr(real, name), name
    assert belief.cap_cpu is real.cap_cpu and belief.dev_type is real.dev_type  # shared, never written

    rollout = RolloutEnv(SPEC.nodes, 8, real.objective, False, {})
    rollout.start(belief)
    for action in range(3):
        rollout.value(action, base, None)
    assert rollout.steps > 3
    before.scenario = real.scenario  # deepcopy copied the (immutable) scenario
    assert_same_engine(real, before)
