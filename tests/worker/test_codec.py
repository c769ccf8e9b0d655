"""The data converter every process connects with: large payloads compressed, small ones
left readable, and everything round-trips to the same models."""

from __future__ import annotations

import asyncio

from worker.codec import DATA_CONVERTER, ENCODING, MIN_BYTES
from worker.contracts import JobSpec, NodeSpec, PlanInput, PolicyRef


def plan_input(jobs: int) -> PlanInput:
    return PlanInput(
        nodes=[NodeSpec(id=f"n{i}", cpus=64, gpus={"p5": 8}) for i in range(16)],
        jobs=[JobSpec(id=f"j{i}", cpus=4, gpus=1, runtime_estimate_s=600 + i) for i in range(jobs)],
        policy=PolicyRef(kind="heuristic", name="sjf"),
    )


def test_large_payloads_are_compressed_and_round_trip() -> None:
    async def body() -> None:
        large, small = plan_input(100), "a run id"
        encoded = await DATA_CONVERTER.encode([large, small])
        assert encoded[0].metadata["encoding"] == ENCODING
        plain_size = len(large.model_dump_json())
        assert plain_size > MIN_BYTES and len(encoded[0].data) < plain_size / 4
        assert encoded[1].metadata["encoding"] == b"json/plain", "small payloads stay readable"
        assert await DATA_CONVERTER.decode(encoded, [PlanInput, str]) == [large, small]

    asyncio.run(body())
