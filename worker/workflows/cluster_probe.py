"""ClusterProbeWorkflow: one bounded read of a cluster for the app, which must not run
Slurm's clients itself, to answer a registration with the cluster's own state or the
reason it cannot be reached. A workflow (not an update on the loop) because the loop
must not exist until the cluster is known to answer."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from worker.workflows import inference_queue

with workflow.unsafe.imports_passed_through():
    from worker.activities.clusters import probe_cluster
    from worker.contracts.clusters import CLUSTER_PROBE_WORKFLOW, ClusterProbe, ClusterProbeInput

READS = 2
"""sinfo then squeue, each bounded by the probe's timeout."""


@workflow.defn(name=CLUSTER_PROBE_WORKFLOW)
class ClusterProbeWorkflow:
    @workflow.run
    async def run(self, input: ClusterProbeInput) -> ClusterProbe:
        return await workflow.execute_activity(
            probe_cluster,
            input,
            task_queue=inference_queue(),
            start_to_close_timeout=timedelta(seconds=READS * input.timeout_s + 5),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )
