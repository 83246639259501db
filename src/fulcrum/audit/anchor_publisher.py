"""Publishes the worker's committed checkpoints to the anchor stream, in the background.

The writer hands each checkpoint over after its transaction committed (a rolled-back one is
never anchored) and goes on: the ingest path never waits for JetStream. Each tenant's
anchors are published in seq order, so the stream's last anchor of a tenant is its newest.
When NATS is away, publishing is retried; what is dropped from a full buffer, or lost with
the process, the housekeeper catches up (it anchors any tenant's newest checkpoint that is
newer than its newest anchor: that one pins the whole chain before it).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import OrderedDict

from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError

from fulcrum.audit.anchors import newest_anchor, publish_anchor
from fulcrum.audit.checkpoints import Checkpoint, CheckpointVerifier
from fulcrum.kit.logging import get_logger
from fulcrum.observability.metrics import ANCHORS_PUBLISHED

log = get_logger(__name__)

_BUFFERED = 10_000  # checkpoints waiting for NATS, oldest dropped first
_RETRY_SECONDS = 1.0


class AnchorPublisher:
    def __init__(self, nats: NatsClient, verifier: CheckpointVerifier) -> None:
        self._nats = nats
        self._verifier = verifier  # the worker's own key: which anchors it wrote
        self._pending: OrderedDict[tuple[uuid.UUID, int], Checkpoint] = OrderedDict()
        self._wake = asyncio.Event()
        self._anchored: dict[uuid.UUID, int] = {}  # newest seq this process anchored

    def submit(self, cp: Checkpoint) -> None:
        """Queue a committed checkpoint; never blocks."""
        self._pending[(cp.tenant_id, cp.seq)] = cp
        if len(self._pending) > _BUFFERED:
            self._pending.popitem(last=False)  # the housekeeper anchors the newest later
        self._wake.set()

    async def catch_up(self, newest: Checkpoint) -> None:
        """Anchor ``newest`` (a tenant's newest stored checkpoint) unless the stream's last
        anchor of the tenant is a genuine one at least as new."""
        if self._anchored.get(newest.tenant_id, 0) >= newest.seq:
            return
        last = await newest_anchor(self._nats.jetstream(), newest.tenant_id)
        if last is not None and last.seq >= newest.seq and self._verifier.verify(last):
            self._anchored[newest.tenant_id] = last.seq
            return
        self.submit(newest)

    async def run(self, stop: asyncio.Event) -> None:
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                if not self._pending:
                    self._wake.clear()
                    waking = asyncio.create_task(self._wake.wait())
                    await asyncio.wait({waking, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    waking.cancel()
                    continue
                if not await self._publish_pending():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), _RETRY_SECONDS)
        finally:
            stopping.cancel()
        if self._pending:
            log.warning("worker.anchors_left", checkpoints=len(self._pending))

    async def _publish_pending(self) -> bool:
        """Publish what is queued, tenants side by side, each in seq order; False if some
        publish failed (those stay queued)."""
        by_tenant: dict[uuid.UUID, list[Checkpoint]] = {}
        for cp in sorted(self._pending.values(), key=lambda c: c.seq):
            by_tenant.setdefault(cp.tenant_id, []).append(cp)
        results = await asyncio.gather(*(self._publish_tenant(cps) for cps in by_tenant.values()))
        return all(results)

    async def _publish_tenant(self, checkpoints: list[Checkpoint]) -> bool:
        js = self._nats.jetstream()
        for cp in checkpoints:
            try:
                await publish_anchor(js, cp)
            except (NatsError, TimeoutError, OSError) as exc:
                log.warning(
                    "worker.anchor_failed", tenant_id=str(cp.tenant_id), error=type(exc).__name__
                )
                return False
            self._pending.pop((cp.tenant_id, cp.seq), None)
            self._anchored[cp.tenant_id] = max(self._anchored.get(cp.tenant_id, 0), cp.seq)
            ANCHORS_PUBLISHED.inc()
        return True
