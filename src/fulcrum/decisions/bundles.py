"""Per-process cache of compiled policy bundles, one per tenant, bounded in memory.

The hot path reads a bundle from memory: no database query per decision. A bundle is
(re)compiled on a tenant's first decision and whenever its policy revision moves, which the
process learns from a NATS message within milliseconds, or from a poll of the revisions it
holds every ``poll_interval`` seconds when messages are lost.

Bundles are kept in least-recently-used order with their estimated sizes (measured once, at
compile time, by ``engine.footprint``: what that counts is said there). When the total
passes ``max_bytes``, the least recently used are evicted, and an evicted tenant's next
decision loads its current policies again; so a process serving many tenants keeps the busy
ones and bounded memory. A bundle larger than the whole bound is still served, alone, and is
the first to go when another tenant loads. Every per-tenant entry (stale mark, lock) lives
only as long as its tenant's bundle is cached or a decision waits for it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from fulcrum.engine.compiler import Bundle, compile_bundle
from fulcrum.engine.footprint import bundle_footprint
from fulcrum.engine.model import Action, PolicySource
from fulcrum.kit.background import Background
from fulcrum.kit.db import Database
from fulcrum.kit.errors import NotFound
from fulcrum.kit.logging import get_logger
from fulcrum.observability.metrics import (
    BUNDLE_CACHE_BUNDLES,
    BUNDLE_CACHE_BYTES,
    BUNDLE_CACHE_EVICTIONS,
    BUNDLE_LOADS,
)
from fulcrum.policies.notify import SUBJECT, PolicyChange
from fulcrum.policies.service import active_policies, policy_revisions

log = get_logger(__name__)

DEFAULT_MAX_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class CachedBundle:
    revision: int
    bundle: Bundle
    size: int  # estimated bytes, engine.footprint


class _TenantLock:
    """One load per tenant at a time; dropped when no decision holds or awaits it."""

    __slots__ = ("hinted", "loaded", "lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0
        self.hinted = 0  # the newest revision announced while the entry lived
        # What the last load read: decisions that waited for it use it even if other
        # tenants' loads evicted it meanwhile, rather than load again.
        self.loaded: CachedBundle | None = None


class BundleCache:
    def __init__(
        self,
        db: Database,
        nats: Callable[[], NatsClient | None],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        poll_interval: float = 2.0,
    ) -> None:
        self._db = db
        self._nats = nats
        self._max_bytes = max_bytes
        self._bundles: OrderedDict[uuid.UUID, CachedBundle] = OrderedDict()  # oldest use first
        self._bytes = 0
        self._stale: set[uuid.UUID] = set()  # always a subset of the cached tenants
        self._locks: dict[uuid.UUID, _TenantLock] = {}
        self._background = Background()
        self._background.add(self._subscribe)
        self._background.every(poll_interval, self.check_revisions, failed="bundle.poll_failed")

    def start(self) -> None:
        self._background.start()

    async def stop(self) -> None:
        await self._background.stop()

    @property
    def cached_bytes(self) -> int:
        """The estimated size of the cached bundles, together."""
        return self._bytes

    def cached(self) -> list[uuid.UUID]:
        """The cached tenants, least recently used first."""
        return list(self._bundles)

    async def get(self, tenant_id: uuid.UUID) -> Bundle:
        cached = self._bundles.get(tenant_id)
        if cached is not None and tenant_id not in self._stale:
            self._bundles.move_to_end(tenant_id)
            return cached.bundle
        entry = self._locks.get(tenant_id)
        if entry is None:
            entry = self._locks[tenant_id] = _TenantLock()
        entry.users += 1
        try:
            async with entry.lock:
                cached = self._bundles.get(tenant_id)
                loaded = entry.loaded
                if cached is not None and tenant_id not in self._stale:
                    self._bundles.move_to_end(tenant_id)
                elif loaded is not None and loaded.revision >= entry.hinted:
                    cached = loaded
                else:
                    reason = "miss" if cached is None else "stale"
                    # On failure a cached tenant stays stale: the next decision retries, and
                    # none is answered from a bundle known to be out of date (the caller
                    # fails closed).
                    cached = await self._load(tenant_id)
                    if entry.hinted > cached.revision:
                        # A change was announced while it loaded and may not be in what it
                        # read: read once more rather than answer from the older policies.
                        cached = await self._load(tenant_id)
                    entry.loaded = cached
                    self._store(tenant_id, cached, stale=entry.hinted > cached.revision)
                    BUNDLE_LOADS.labels(reason).inc()
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[tenant_id]
        return cached.bundle

    def invalidate(self, change: PolicyChange) -> None:
        cached = self._bundles.get(change.tenant_id)
        if cached is not None and change.revision > cached.revision:
            self._stale.add(change.tenant_id)
        entry = self._locks.get(change.tenant_id)
        if entry is not None:
            entry.hinted = max(entry.hinted, change.revision)

    def _store(self, tenant_id: uuid.UUID, cached: CachedBundle, *, stale: bool) -> None:
        previous = self._bundles.pop(tenant_id, None)
        if previous is not None:
            self._bytes -= previous.size
        self._bundles[tenant_id] = cached
        self._bytes += cached.size
        if stale:
            self._stale.add(tenant_id)
        else:
            self._stale.discard(tenant_id)
        # The bundle just stored is the most recent, so it is never evicted here: a tenant
        # larger than the bound is served all the same.
        while self._bytes > self._max_bytes and len(self._bundles) > 1:
            evicted_id, evicted = self._bundles.popitem(last=False)
            self._bytes -= evicted.size
            self._stale.discard(evicted_id)
            BUNDLE_CACHE_EVICTIONS.inc()
        BUNDLE_CACHE_BUNDLES.set(len(self._bundles))
        BUNDLE_CACHE_BYTES.set(self._bytes)

    async def _load(self, tenant_id: uuid.UUID) -> CachedBundle:
        active = await active_policies(self._db, tenant_id)
        if active is None:
            raise NotFound("tenant not found")
        bundle = compile_bundle(
            [PolicySource(str(p.policy_id), p.version, p.document) for p in active.policies],
            Action(active.default_action),
        )
        size = bundle_footprint(bundle)
        log.info(
            "bundle.compiled",
            tenant_id=str(tenant_id),
            revision=active.revision,
            policies=len(active.policies),
            bundle_hash=bundle.hash,
            estimated_bytes=size,
        )
        return CachedBundle(active.revision, bundle, size)

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
        """One read of the revisions of the cached tenants (only those: an evicted tenant
        reads its current policies when it is next used)."""
        if not self._bundles:
            return
        for tenant_id, revision in await policy_revisions(self._db, list(self._bundles)):
            self.invalidate(PolicyChange(tenant_id, revision))
