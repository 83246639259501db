"""Per-process cache of compiled policy bundles, one per tenant.

The hot path reads a bundle from memory: no database query per decision. A bundle is
(re)compiled on a tenant's first decision and whenever its policy revision moves, which the
process learns from a NATS message within milliseconds, or from a poll of the revisions it
holds every ``poll_interval`` seconds when messages are lost.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from fulcrum.engine.compiler import Bundle, compile_bundle
from fulcrum.engine.model import Action, PolicySource
from fulcrum.kit.background import Background
from fulcrum.kit.db import Database
from fulcrum.kit.errors import NotFound
from fulcrum.kit.logging import get_logger
from fulcrum.policies.notify import SUBJECT, PolicyChange
from fulcrum.policies.service import active_policies, policy_revisions

log = get_logger(__name__)


@dataclass(frozen=True)
class CachedBundle:
    revision: int
    bundle: Bundle


class BundleCache:
    def __init__(
        self,
        db: Database,
        nats: Callable[[], NatsClient | None],
        *,
        poll_interval: float = 2.0,
    ) -> None:
        self._db = db
        self._nats = nats
        self._bundles: dict[uuid.UUID, CachedBundle] = {}
        self._stale: set[uuid.UUID] = set()
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}
        self._background = Background()
        self._background.add(self._subscribe)
        self._background.every(poll_interval, self.check_revisions, failed="bundle.poll_failed")

    def start(self) -> None:
        self._background.start()

    async def stop(self) -> None:
        await self._background.stop()

    async def get(self, tenant_id: uuid.UUID) -> Bundle:
        cached = self._bundles.get(tenant_id)
        if cached is not None and tenant_id not in self._stale:
            return cached.bundle
        lock = self._locks.setdefault(tenant_id, asyncio.Lock())
        async with lock:
            cached = self._bundles.get(tenant_id)
            if cached is None or tenant_id in self._stale:
                # On failure the tenant stays stale: the next decision retries, and none is
                # answered from a bundle known to be out of date (the caller fails closed).
                cached = await self._load(tenant_id)
                self._bundles[tenant_id] = cached
                self._stale.discard(tenant_id)
        return cached.bundle

    def invalidate(self, change: PolicyChange) -> None:
        cached = self._bundles.get(change.tenant_id)
        if cached is not None and change.revision > cached.revision:
            self._stale.add(change.tenant_id)

    async def _load(self, tenant_id: uuid.UUID) -> CachedBundle:
        active = await active_policies(self._db, tenant_id)
        if active is None:
            raise NotFound("tenant not found")
        bundle = compile_bundle(
            [PolicySource(str(p.policy_id), p.version, p.document) for p in active.policies],
            Action(active.default_action),
        )
        log.info(
            "bundle.compiled",
            tenant_id=str(tenant_id),
            revision=active.revision,
            policies=len(active.policies),
            bundle_hash=bundle.hash,
        )
        return CachedBundle(active.revision, bundle)

    async def _subscribe(self) -> None:
        async def on_change(msg: Msg) -> None:
            try:
                self.invalidate(PolicyChange.decode(msg.data))
            except (ValueError, KeyError, TypeError):
                log.warning("bundle.bad_notification")

        while True:
            client = self._nats()
            if client is not None and client.is_connected:
                # nats-py re-subscribes by itself after a reconnect.
                await client.subscribe(SUBJECT, cb=on_change)
                return
            await asyncio.sleep(0.1)

    async def check_revisions(self) -> None:
        """One read of the revisions of every cached tenant."""
        if not self._bundles:
            return
        for tenant_id, revision in await policy_revisions(self._db, list(self._bundles)):
            self.invalidate(PolicyChange(tenant_id, revision))
