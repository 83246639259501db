"""Background work owned by one object: started with it, cancelled and awaited with it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fulcrum.kit.logging import get_logger

log = get_logger(__name__)


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel the tasks and wait until each has finished (its cancellation swallowed)."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    for task in running:
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Background:
    """The tasks of one owner: ``start`` runs them, ``stop`` cancels and awaits them all."""

    def __init__(self) -> None:
        self._factories: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._tasks: list[asyncio.Task[None]] = []

    def add(self, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._factories.append(run)

    def every(self, seconds: float, work: Callable[[], Awaitable[None]], *, failed: str) -> None:
        """Run ``work`` every ``seconds``; a failure is logged as ``failed`` and the loop
        goes on (the next round retries)."""

        async def forever() -> None:
            while True:
                await asyncio.sleep(seconds)
                try:
                    await work()
                except Exception as exc:
                    log.warning(failed, error=type(exc).__name__)

        self.add(forever)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(run()) for run in self._factories]

    async def stop(self) -> None:
        await cancel_and_wait(*self._tasks)
        self._tasks = []
