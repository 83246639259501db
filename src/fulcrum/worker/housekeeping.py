"""Housekeeping on a timer: relay committed changes to JetStream, checkpoint idle chains,
catch up missed anchors, keep decision partitions ahead and old ones dropped.

Administrative changes are written in the same transaction as the change itself (the
outbox, ``audit.outbox``); its relay publishes each one not yet in the ledger, so the
consumer chains it like a decision.

Work per tick follows activity, not the number of tenants: a change notifies its tenant on
commit (PostgreSQL LISTEN/NOTIFY, ``audit.repository.CHANGES_CHANNEL``), and the writer knows
which chains it left without a checkpoint. A full sweep of every tenant runs every
``sweep_seconds``, and after the listening connection was (re)established, for whatever a
notification could not carry, and to anchor each tenant's newest checkpoint if the anchor
stream lacks it (published while NATS was away, or by a worker that died first).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import psycopg
from nats.aio.client import Client as NatsClient
from psycopg import AsyncConnection

from fulcrum.audit import maintenance
from fulcrum.audit.anchor_publisher import AnchorPublisher
from fulcrum.audit.outbox import ChangeRelay
from fulcrum.audit.writer import LedgerWriter
from fulcrum.kit.background import cancel_and_wait
from fulcrum.kit.db import Database
from fulcrum.kit.logging import get_logger

log = get_logger(__name__)

SWEEP_SECONDS = 60.0
PARTITION_CHECK_SECONDS = 3600.0


class Housekeeper:
    def __init__(
        self,
        db: Database,
        nats: NatsClient,
        writer: LedgerWriter,
        anchors: AnchorPublisher,
        *,
        listen_conninfo: str,
        interval: float = 1.0,
        sweep_seconds: float = SWEEP_SECONDS,
        retention_days: int = 30,
    ) -> None:
        self._db = db
        self._relay = ChangeRelay(db, nats)
        self._writer = writer
        self._anchors = anchors
        self._listen_conninfo = listen_conninfo
        self._interval = interval
        self._sweep_seconds = sweep_seconds
        self._retention_days = retention_days
        self._partitions_checked = 0.0
        self._swept = 0.0  # 0: the first tick sweeps every tenant
        self._due: set[uuid.UUID] = set()  # tenants with changes to relay

    async def run(self, stop: asyncio.Event) -> None:
        listener = asyncio.create_task(self._listen(stop))
        try:
            while not stop.is_set():
                try:
                    await self.tick()
                except Exception as exc:
                    log.warning("worker.housekeeping_failed", error=type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._interval)
        finally:
            await cancel_and_wait(listener)

    async def tick(self) -> None:
        now = time.monotonic()
        if now - self._partitions_checked >= PARTITION_CHECK_SECONDS:
            await self.maintain_partitions()
            self._partitions_checked = now
        self._relay.forget_old(now)
        sweeping = now - self._swept >= self._sweep_seconds
        if sweeping:
            self._swept = now
            tenants = set(await self._tenants())
        else:
            tenants = self._due | self._writer.unpinned()
        self._due = set()
        for tenant_id in sorted(tenants):
            try:
                if await self._relay.relay(tenant_id):
                    self._due.add(tenant_id)  # published, not chained yet: look again
                await self._writer.checkpoint_if_due(tenant_id)
                if sweeping:
                    await self._catch_up_anchor(tenant_id)
            except Exception as exc:
                self._due.add(tenant_id)  # NATS or PostgreSQL away: try again next tick
                log.warning(
                    "worker.housekeeping_failed", tenant_id=str(tenant_id), error=type(exc).__name__
                )

    async def _listen(self, stop: asyncio.Event) -> None:
        """Collect the tenants whose changes were committed, as PostgreSQL notifies them."""
        while not stop.is_set():
            try:
                async with await AsyncConnection.connect(
                    self._listen_conninfo, autocommit=True
                ) as conn:
                    await maintenance.listen_for_changes(conn)
                    self._swept = 0.0  # notifications sent while not listening are lost
                    async for notification in conn.notifies():
                        self._due.add(uuid.UUID(notification.payload))
            except (psycopg.Error, ValueError) as exc:
                log.warning("worker.change_listener_failed", error=type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._interval)

    async def _catch_up_anchor(self, tenant_id: uuid.UUID) -> None:
        newest = await maintenance.newest_checkpoint(self._db, tenant_id)
        if newest is not None:
            await self._anchors.catch_up(newest)

    async def maintain_partitions(self) -> None:
        await maintenance.maintain_partitions(self._db, self._retention_days)

    async def _tenants(self) -> list[uuid.UUID]:
        return await maintenance.ledger_tenants(self._db)
