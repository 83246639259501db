"""Connections a Fulcrum process holds to its data stores, and their readiness.

Each connection is opened in the background and retried forever, so a process starts even
when a dependency is down and becomes ready when it returns; ``/readyz`` names what is down.
A process connects only to what it uses: the worker has no Redis (and no Redis user).

The event streams are created by an operator (``fulcrum events setup``), never by a
service: the services' NATS users may not create, change, purge or delete streams. A
process is ready once the stream it needs exists.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from nats.aio.client import Client as NatsClient

from fulcrum.audit.anchors import ANCHOR_STREAM
from fulcrum.events.streams import STREAM
from fulcrum.kit.background import cancel_and_wait
from fulcrum.kit.config import Service, Settings
from fulcrum.kit.db import Database
from fulcrum.kit.logging import get_logger
from fulcrum.kit.nats import connect_nats
from fulcrum.kit.redis import redis_client

log = get_logger(__name__)

USES_REDIS = frozenset({Service.API})


@dataclass
class Resources:
    settings: Settings
    service: Service
    db: Database = field(init=False)
    nats: NatsClient | None = field(default=None, init=False)
    _nats_task: asyncio.Task[None] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.db = Database(self.settings, self.service)
        self._redis = (
            redis_client(self.settings, self.service) if self.service in USES_REDIS else None
        )

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            raise RuntimeError(f"the {self.service} process does not use Redis")
        return self._redis

    async def open(self) -> None:
        await self.db.open()
        self._nats_task = asyncio.create_task(self._connect_nats())

    async def _connect_nats(self) -> None:
        while self.nats is None:
            try:
                self.nats = await connect_nats(self.settings, self.service)
            except Exception as exc:
                log.warning("nats.connect_failed", error=type(exc).__name__, detail=str(exc))
                await asyncio.sleep(1)

    async def wait_for_nats(self, stop: asyncio.Event) -> NatsClient | None:
        """The connection once it is up and the streams exist; None if stopped first."""
        while not stop.is_set():
            if self.nats is not None:
                try:
                    await self._check_nats()
                except Exception as exc:
                    log.warning("nats.not_ready", error=type(exc).__name__, detail=str(exc))
                    await asyncio.sleep(1)
                    continue
                return self.nats
            await asyncio.sleep(0.1)
        return None

    async def close(self) -> None:
        await cancel_and_wait(self._nats_task)
        if self.nats is not None:
            # Flush what was published, then close: drain would wait out pull subscriptions.
            with contextlib.suppress(Exception):
                await self.nats.flush(timeout=2)
            with contextlib.suppress(Exception):
                await self.nats.close()
        if self._redis is not None:
            await self._redis.aclose()
        await self.db.close()

    async def _check_postgres(self) -> None:
        await self.db.ping()

    async def _check_redis(self) -> None:
        await self.redis.ping()

    async def _check_nats(self) -> None:
        if self.nats is None or not self.nats.is_connected:
            raise ConnectionError("not connected")
        js = self.nats.jetstream()
        await js.stream_info(STREAM)
        await js.stream_info(ANCHOR_STREAM)

    async def readiness(self) -> dict[str, str | None]:
        """Map each dependency to ``None`` when it answers, else the reason it does not."""
        timeout = self.settings.readiness_timeout_seconds
        checks = {"postgresql": self._check_postgres()}
        if self._redis is not None:
            checks["redis"] = self._check_redis()
        checks["nats"] = self._check_nats()
        results = await asyncio.gather(
            *(asyncio.wait_for(c, timeout) for c in checks.values()),
            return_exceptions=True,
        )
        return {
            name: None if not isinstance(res, BaseException) else _reason(res)
            for name, res in zip(checks, results, strict=True)
        }


def _reason(exc: BaseException) -> str:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
