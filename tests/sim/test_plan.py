from __future__ import annotations

import math

from worker.sim.heuristics import make_heuristic
from worker.sim.model import Job, Node, NodeStatus
from worker.sim.plan import plan_schedule


def test_plan_places_every_job_it_can_and_explains_the_rest() -> None:
    nodes = [
        Node("p5-a", 32, 256, {"p5": 8}),
        Node("p4-a", 32, 256, {"p4": 8}),
        Node("down", 32, 256, {"p5": 8}, status=NodeStatus.DOWN),
    ]
    jobs = [Job(f"j{i}", 4, 2, 1 + i % 3, 0.0, 600, 600, 3600) for i in range(12)]
    jobs += [
        Job("huge", 4, 16, 1, 0.0, 60, 60, math.inf),
        Job("wants-a100", 4, 1, 1, 0.0, 60, 60, math.inf, gpu_types=("a100",)),
    ]
    plan = plan_schedule(make_heuristic("edf"), nodes, jobs)
    placed = {p.job_id for p in plan.placements}
    assert placed == {f"j{i}" for i in range(12)}
    assert {u.job_id: u.reason for u in plan.unplaced} == {
        "huge": "needs 16 GPUs (any type); the most on one OK node is 8",
        "wants-a100": "needs 1 GPUs (a100); the most on one OK node is 0",
    }
    assert all(p.node_id != "down" for p in plan.placements)
    # Never more GPUs in use on a node than it has, at any start time.
    for p in plan.placements:
        running = [
            q for q in plan.placements
            if q.node_id == p.node_id and q.start_s <= p.start_s < q.finish_s
        ]  # fmt: skip
        assert sum(2 for _ in running) <= 8
    assert plan.metrics.jobs_finished == 12


def test_a_deadline_rule_on_jobs_without_deadlines_plans_and_says_so() -> None:
    nodes = [Node("n", 32, 256, {"p5": 8})]
    jobs = [Job(f"j{i}", 4, 1, 1, 0.0, 600, 600, math.inf) for i in range(3)]
    plan = plan_schedule(make_heuristic("easy:laxity+deadline"), nodes, jobs)
    assert len(plan.placements) == 3
    assert plan.notes and "need job deadlines" in plan.notes[0]
