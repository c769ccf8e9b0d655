"""The data converter every client and worker of ours uses: pydantic JSON, large payloads
zlib-compressed.

Why: a plan puts its request (~17 KB of JSON for 100 jobs x 16 nodes) and its answer
(~14 KB) into the scheduler service workflow's history, so a run filled its history
budget every ~75 plans and continued as new, and the plans racing a hand-over were the
p99 at 8 clients. JSON this regular compresses ~7x at level 1 in ~35 us. Small payloads
(ids, signals, queries) are left as they are, so Temporal's UI and CLI still show them;
a compressed one shows as `binary/zlib` there. A client without this codec cannot read
compressed payloads: every process (the app, workers, tests, benchmarks) connects with
DATA_CONVERTER.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

ENCODING = b"binary/zlib"
MIN_BYTES = 2_048
"""Payloads smaller than this are stored as they are: compressing them saves little."""


class ZlibCodec(PayloadCodec):
    def __init__(self, min_bytes: int = MIN_BYTES, level: int = 1) -> None:
        self.min_bytes = min_bytes
        self.level = level

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encode(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decode(p) for p in payloads]

    def _encode(self, payload: Payload) -> Payload:
        if len(payload.data) < self.min_bytes:
            return payload
        packed = zlib.compress(payload.SerializeToString(), self.level)
        return Payload(metadata={"encoding": ENCODING}, data=packed)

    @staticmethod
    def _decode(payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        return Payload.FromString(zlib.decompress(payload.data))


DATA_CONVERTER: DataConverter = dataclasses.replace(pydantic_data_converter, payload_codec=ZlibCodec())
