"""label_round: a distilling run's label step, durable across worker crashes.

Each episode is a Ray task and is written to the round's labels directory in the
artifact store as soon as it finishes (worker/rl/label_store.py), and the activity
heartbeats how many are done. A retry (on any training worker: the parts are in the
store) labels only the episodes still missing, so a killed worker costs the episodes in
flight, and no episode is stored twice or lost.
"""

from __future__ import annotations

import time

from temporalio import activity

from worker.activities import Heartbeater, liveness_interval, policy_errors
from worker.contracts import LabelHeartbeat, LabelRoundInput, LabelRoundOutput


@activity.defn(name="label_round")
def label_round(input: LabelRoundInput) -> LabelRoundOutput:
    from worker import artifacts
    from worker.activities.training import round_seed
    from worker.convert import label_request
    from worker.rl.label_store import label_resumably
    from worker.rl.labels import label_seeds
    from worker.rl.runtime import ensure_ray
    from worker.settings import get_settings

    settings = get_settings()
    config = input.config
    started = time.monotonic()
    _, location = artifacts.resolve_output(settings, input.output_dir)
    with Heartbeater(LabelHeartbeat(round=input.round, episodes_done=0), liveness_interval()) as heart:
        resumed = False

        def on_episode(done: int, total: int) -> None:
            nonlocal resumed
            if done and not resumed and heart.details.episodes_done == 0:
                activity.logger.info("round %d resumes labelling at episode %d/%d", input.round, done, total)
            resumed = True
            heart.beat(LabelHeartbeat(round=input.round, episodes_done=done))

        with policy_errors():
            request = label_request(config, input.search)
            assert config.ppo.distill is not None  # label_request refuses a run without
            seeds = label_seeds(round_seed(config.seed, input.round), config.ppo.distill.episodes_per_round)
            filesystem, path = artifacts.filesystem(settings, location)
            ensure_ray(settings)
            table = label_resumably(request, seeds, filesystem, path, on_episode)
    activity.logger.info(
        "round %d: labelled %d decisions of %d episodes with %s",
        input.round,
        table.num_rows,
        len(seeds),
        input.search,
    )
    return LabelRoundOutput(
        labels=location,
        search=input.search,
        episodes=len(seeds),
        decisions=table.num_rows,
        elapsed_s=time.monotonic() - started,
    )
