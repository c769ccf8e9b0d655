"""The worker's real Workers (worker.main.build_workers) served from a thread of their own,
for API tests whose app runs in a TestClient on the main thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from worker.main import QueueChoice, build_workers, connect


@contextlib.contextmanager
def worker_thread(
    address: str, prefix: str, queues: QueueChoice = "all", ready_timeout_s: float = 60
) -> Iterator[None]:
    """Serve `<prefix>rl-training` and/or `<prefix>rl-inference` until the block ends."""
    ready, stop = threading.Event(), threading.Event()

    async def serve() -> None:
        for _ in range(100):  # the session's server may be listening but not yet healthy
            try:
                await (await connect(address=address)).service_client.check_health()
                break
            except RuntimeError:
                await asyncio.sleep(0.2)
        client = await connect(address=address)
        async with contextlib.AsyncExitStack() as stack:
            for worker in build_workers(client, queues, prefix):
                await stack.enter_async_context(worker)
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(ready_timeout_s), "the in-process worker did not start"
    try:
        yield
    finally:
        stop.set()
        thread.join(30)


def inference_worker_thread(
    address: str, prefix: str, ready_timeout_s: float = 60
) -> contextlib.AbstractContextManager[None]:
    """Serve `<prefix>rl-inference` until the block ends."""
    return worker_thread(address, prefix, "inference", ready_timeout_s)
