"""GPU devices: shares of one device for fractional jobs, whole devices otherwise."""

from __future__ import annotations

from worker.sim.engine import RUNNING, WAITING, ClusterSim
from worker.sim.model import Job, Node, Scenario


def job(i: int, gpus: float, submit: float = 0.0) -> Job:
    return Job(f"j{i}", cpus=1, gpus=gpus, priority=1, submit_s=submit, runtime_estimate_s=100,
               runtime_s=100, deadline_s=1e6)  # fmt: skip


def sim_with(gpus: float, *jobs: Job) -> ClusterSim:
    node = Node("n", cpus=64, memory_gb=0, gpus={"p5": gpus})
    return ClusterSim(Scenario("devices", (node,), jobs, 1e6), window=8)


def start_all(sim: ClusterSim) -> None:
    """Start every window job that fits, oldest first, as a work-conserving policy would."""
    while True:
        fits = sim.fit(sim.window_jobs()).fits[:, 0]
        if not fits.any():
            return
        sim.place(int(fits.argmax()), 0)


def test_two_shares_that_add_up_past_one_gpu_take_two_devices() -> None:
    sim = sim_with(2, job(0, 0.6), job(1, 0.6), job(2, 0.6))
    start_all(sim)
    # Pooled capacity (2.0 >= 1.8) would run all three; two devices hold only two 0.6 shares.
    assert list(sim.state) == [RUNNING, RUNNING, WAITING]
    assert sim.job_devices[0].tolist() != sim.job_devices[1].tolist()


def test_shares_pack_onto_one_device_and_leave_a_whole_one_free() -> None:
    sim = sim_with(2, job(0, 0.5), job(1, 0.5), job(2, 1.0))
    start_all(sim)
    assert list(sim.state) == [RUNNING, RUNNING, RUNNING]
    assert sim.job_devices[0].tolist() == sim.job_devices[1].tolist()


def test_whole_gpu_job_needs_wholly_free_devices() -> None:
    sim = sim_with(2, job(0, 0.3), job(1, 2.0))
    start_all(sim)
    # 1.7 GPUs are free in total but only one device is wholly free.
    assert list(sim.state) == [RUNNING, WAITING]
    sim.advance(1e6)  # the share finishes and frees its device
    start_all(sim)
    assert sim.state[1] == RUNNING


def test_a_job_wider_than_any_node_is_unschedulable() -> None:
    sim = sim_with(2, job(0, 3.0))
    assert not sim.schedulable[0]
