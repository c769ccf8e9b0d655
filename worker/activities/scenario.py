"""generate_scenario: validate a workload and describe the scenario it yields.

Cheap on purpose (one scenario draw): it fails a bad workload (unknown trace, unusable
size) fast and non-retryably before a training round spends minutes on it, and gives
the workflow history a readable record of what each round trained on.
"""

from __future__ import annotations

from temporalio import activity

from worker.activities import invalid_input
from worker.contracts import ScenarioSummary, SyntheticSpec


@activity.defn(name="generate_scenario")
def generate_scenario(spec: SyntheticSpec) -> ScenarioSummary:
    from worker.convert import workload_spec
    from worker.sim.workloads import make_scenario

    try:
        scenario = make_scenario(workload_spec(spec.workload), spec.seed)
    except (ValueError, FileNotFoundError) as error:
        raise invalid_input(error) from error
    gpus: dict[str, float] = {}
    for node in scenario.nodes:
        for gpu_type, count in node.gpus.items():
            gpus[gpu_type] = gpus.get(gpu_type, 0.0) + count
    return ScenarioSummary(
        workload=spec.workload.name,
        seed=spec.seed,
        nodes=len(scenario.nodes),
        jobs=len(scenario.jobs),
        gpus=gpus,
        cpus=sum(node.cpus for node in scenario.nodes),
        horizon_s=scenario.horizon_s,
    )
