"""One fault stack per test package run (dev server with a SQLite file, a worker, the
API process): tests restart or kill parts of it and leave it whole again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.fault_stack import FaultStack, make_stack, remove_stack


@pytest.fixture(scope="package")
def stack() -> Iterator[FaultStack]:
    stack = make_stack()
    try:
        stack.start_temporal(db_file=stack.root / "temporal.db")
        stack.start_worker()
        stack.start_api()
        yield stack
    finally:
        remove_stack(stack)
