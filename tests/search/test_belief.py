"""What a belief holds: only what a scheduler knows, and no more of it than a rollout
needs. It shares the real engine's node tables (what each node is) and copies what the
nodes hold now: rolling out on it never touches the real episode, and it sees the
cluster exactly as the real engine does at the decision point."""

from __future__ import annotations

import copy

import numpy as np
from test_engine_snapshot import assert_same_engine, play

from worker.contracts.search import SearchOptions
from worker.search.belief import MIN_HISTORY, build_belief, estimate_errors, future_jobs
from worker.search.policy import SearchPolicy
from worker.search.rollout import RolloutEnv
from worker.sim.allocation import inflation_scenario
from worker.sim.engine import DONE
from worker.sim.env import SchedulingEnv
from worker.sim.fragmentation import ShapeTable, shape_table
from worker.sim.heuristics import make_heuristic
from worker.sim.traces import openb_cluster, openb_pod_shapes, pool_scenario
from worker.sim.workloads import WorkloadSpec, make_scenario

SPEC = WorkloadSpec("node-failures", 8, None, 120)


def inflation_env(decisions: int) -> SchedulingEnv:
    """FGD's inflation experiment on a slice of openb after `decisions` pods were placed."""
    nodes = openb_cluster()[:40]
    scenario = inflation_scenario(nodes, openb_pod_shapes("gpuspec33")[:400], 42)
    env = SchedulingEnv({"nodes": len(nodes), "window": 1, "observe": False, "objective": "allocation"})
    env.load_scenario(scenario, 42)
    fgd = make_heuristic("fifo+fgd")
    for _ in range(decisions):
        env.step(fgd.act(env.decision_view()))
    return env


def test_jobs_running_past_the_horizon_are_left_out_and_keep_their_resources() -> None:
    sim = inflation_env(60).sim
    belief = build_belief(sim)
    assert sim.n_running > 50 and belief.n_running == 0  # the pods never leave
    assert belief.n_jobs == len(sim.waiting) == 1
    for name in ("free_cpu", "free_mem", "free_gpu", "dev_free", "whole_free", "max_share"):
        np.testing.assert_array_equal(getattr(belief, name), getattr(sim, name))


def test_typical_shapes_are_those_of_the_jobs_submitted_so_far() -> None:
    sim = inflation_env(60).sim
    submitted = ShapeTable.from_jobs(sim, np.arange(sim.next_arrival))
    whole_episode = shape_table(sim)
    table = shape_table(build_belief(sim))
    assert table.weight.tolist() == submitted.weight.tolist()
    assert table.weight.tolist() != whole_episode.weight.tolist()


def test_a_sampled_future_keeps_its_first_arrivals_after_now() -> None:
    sample = inflation_scenario(openb_cluster()[:40], openb_pod_shapes("default")[:400], 7)
    futures = future_jobs(sample, 99.5, ("V100M32",), limit=5)
    assert [j.submit_s for j in futures] == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert all(j.id.startswith("future-") for j in futures)


def test_a_sampled_trace_window_arrives_on_the_episodes_clock() -> None:
    """Lublin windows keep the trace's absolute times: one drawn elsewhere in the file is
    moved so that its first job arrives when the episode's first job did."""
    sample = pool_scenario(5000, 50)
    origin = pool_scenario(0, 50).jobs[0].submit_s
    start = sample.jobs[0].submit_s
    now = origin + (sample.jobs[10].submit_s - start)
    futures = future_jobs(sample, now, (), limit=3, origin=origin)
    assert [j.submit_s for j in futures] == [origin + j.submit_s - start for j in sample.jobs[11:14]]


def test_a_rollout_cannot_earn_more_than_every_pending_job_placed() -> None:
    env = inflation_env(60)
    sim = env.sim
    rollout = RolloutEnv(len(sim.free_cpu), 1, "allocation", False, {})
    futures = future_jobs(
        inflation_scenario(openb_cluster()[:40], openb_pod_shapes("default")[:400], 7),
        sim.now,
        sim.gpu_types,
        8,
    )
    rollout.start(build_belief(sim, futures))
    pending = [sim.gpu[sim.waiting[0]]] + [j.gpus for j in futures]
    assert rollout.ceiling == sum(pending) / sim.total_gpu
    value = rollout.value(
        int(make_heuristic("fifo+fgd").act(env.decision_view())), make_heuristic("fifo+fgd"), None
    )
    assert 0 < value <= rollout.ceiling + 1e-12


def test_runtime_samples_on_a_cluster_without_gpus_come_from_the_jobs_seen_ending() -> None:
    """RLScheduler's Lublin pool: one node of processors, no GPU type at all, no backfilling."""
    env = SchedulingEnv(
        {"nodes": 1, "window": 32, "observe": False, "objective": "slowdown", "backfilling": False}
    )
    env.load_scenario(pool_scenario(0, 120))
    options = SearchOptions(depth=1, runtimes="sampled", rollouts=3, z=0.0, margin=0.0, budget_ms=60_000)
    search = SearchPolicy(make_heuristic("sjf"), options, env_options={"backfilling": False})
    search.reset(0)
    done = False
    while not done:
        if (env.sim.state == DONE).sum() == MIN_HISTORY:
            sim = env.sim
            finished = sim.state == DONE
            expected = (sim.finish[finished] - sim.start[finished]) / sim.estimate[finished]
            np.testing.assert_allclose(estimate_errors(sim), expected)
        _, _, terminated, truncated, _ = env.step(search.act(env.decision_view()))
        done = terminated or truncated
    metrics = env.metrics()
    assert metrics.jobs_finished == metrics.jobs_total
    assert search.stats.searched > 0 and search.stats.changed > 0


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
