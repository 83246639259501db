"""The event loop the servers run on: uvloop.

uvloop's transports, TLS included, are written in C (Cython), where asyncio's are Python;
on the decision path that is a large share of each request's CPU.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a new uvloop event loop (as ``asyncio.run`` does)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
