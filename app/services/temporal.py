"""The app's one Temporal client, connected lazily and reconnected after a failure, so the
API starts (and answers /healthz, and reads from its index) while Temporal is down, and
routes that need Temporal answer 503 with the address they tried instead of hanging."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import timedelta

from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from app.core.config import Settings
from app.errors import Unavailable
from worker.contracts import DATA_CONVERTER

RETRY_AFTER_FAILURE_S = 2.0
"""After a failed connect, fail fast for this long instead of paying the timeout again."""


class TemporalGateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Client | None = None
        self._lock = asyncio.Lock()
        self._failed_at = 0.0
        self._last_error = ""

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is not None:
                return self._client
            if time.monotonic() - self._failed_at < RETRY_AFTER_FAILURE_S:
                raise self._unavailable()
            try:
                self._client = await asyncio.wait_for(
                    Client.connect(
                        self.settings.temporal_address,
                        namespace=self.settings.temporal_namespace,
                        data_converter=DATA_CONVERTER,
                    ),
                    timeout=self.settings.temporal_connect_timeout_s,
                )
            except (TimeoutError, RuntimeError, RPCError, OSError) as error:
                self._failed_at = time.monotonic()
                self._last_error = str(error) or type(error).__name__
                raise self._unavailable() from error
            return self._client

    def _unavailable(self) -> Unavailable:
        return Unavailable(
            f"Temporal at {self.settings.temporal_address} (namespace "
            f"{self.settings.temporal_namespace!r}) is unreachable: {self._last_error}; "
            "start it (`rlsched dev` does) or set RLSCHED_TEMPORAL_ADDRESS"
        )

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def pollers(self, task_queues: Sequence[str]) -> dict[str, dict[str, int]]:
        """Worker identities polling each queue, per task type (workflow, activity)."""
        client = await self.client()
        out: dict[str, dict[str, int]] = {}
        for queue in task_queues:
            counts: dict[str, int] = {}
            for label, kind in (
                ("workflow", TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
                ("activity", TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
            ):
                response = await client.workflow_service.describe_task_queue(
                    DescribeTaskQueueRequest(
                        namespace=self.settings.temporal_namespace,
                        task_queue=TaskQueue(name=queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                        task_queue_type=kind,
                    ),
                    timeout=rpc_timeout(self.settings),
                )
                counts[label] = len(response.pollers)
            out[queue] = counts
        return out


def rpc_timeout(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.temporal_rpc_timeout_s)
