"""The API's bundle cache against the real PostgreSQL: bounded in memory, least recently used
out first, an evicted tenant reloaded with its current policies, and no per-tenant entry
outliving its tenant's place in the cache.

Policies are written through a real ``fulcrum api`` over REST (as tenants write them); the
cache under test reads them as the API's database role, with a bound a few bundles wide.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from fulcrum.decisions.bundles import BundleCache
from fulcrum.engine.model import DecisionRequest
from fulcrum.kit.config import Service
from fulcrum.kit.db import Database
from fulcrum.policies.notify import PolicyChange
from tests.support.identity import TenantFixture, new_tenant, rest
from tests.support.processes import FulcrumProcess
from tests.support.stack import LiveStack

NEVER = 3600.0  # the revision poll is called by the tests themselves


def document(reason: str) -> dict[str, Any]:
    return {
        "name": "bounded",
        "rules": [
            {
                "id": "no-x",
                "target": {"tools": ["x.*"]},
                "when": {"field": "tool.args.q", "op": "regex", "value": r"(?i)drop\s+table"},
                "action": "deny",
                "reason": reason,
            },
            {"id": "x", "target": {"tools": ["x.run"]}, "action": "allow", "reason": reason},
        ],
    }


class Tenant:
    def __init__(self, api: FulcrumProcess, fixture: TenantFixture) -> None:
        self.api = api
        self.id = fixture.id
        self.key = fixture.owner_key
        self.policy_id = ""

    def install(self, reason: str) -> None:
        with rest(self.api, self.key) as client:
            if not self.policy_id:
                created = client.post("/v1/policies", json=document(reason))
                assert created.status_code == 201, created.text
                self.policy_id = created.json()["id"]
                activated = client.post(f"/v1/policies/{self.policy_id}/activate")
                assert activated.status_code == 200, activated.text
            else:
                updated = client.put(f"/v1/policies/{self.policy_id}", json=document(reason))
                assert updated.status_code == 200, updated.text


@pytest.fixture(scope="module")
def tenants(stack: LiveStack, api: FulcrumProcess) -> Iterator[list[Tenant]]:
    made = [Tenant(api, new_tenant(stack, "bundles")) for _ in range(6)]
    for index, tenant in enumerate(made):
        tenant.install(f"tenant {index} v1")
    yield made


@pytest.fixture
async def db(stack: LiveStack) -> AsyncIterator[Database]:
    database = Database(stack.settings, Service.API)
    await database.open()
    try:
        yield database
    finally:
        await database.close()


def new_cache(db: Database, max_bytes: int) -> BundleCache:
    # Not started: no NATS subscription; the tests call the revision poll themselves.
    return BundleCache(db, lambda: None, max_bytes=max_bytes, poll_interval=NEVER)


async def reason_of(cache: BundleCache, tenant: Tenant) -> str:
    bundle = await cache.get(tenant.id)
    return bundle.evaluate(DecisionRequest(tool_name="x.run")).verdict.reason


def loads() -> float:
    return sum(
        REGISTRY.get_sample_value("fulcrum_bundle_loads_total", {"reason": reason}) or 0.0
        for reason in ("miss", "stale")
    )


async def one_bundle_size(db: Database, tenant: Tenant) -> int:
    probe = new_cache(db, max_bytes=1 << 40)
    await probe.get(tenant.id)
    return probe.cached_bytes


async def test_a_small_bound_keeps_the_most_recently_used_and_reloads_evicted_tenants(
    db: Database, tenants: list[Tenant]
) -> None:
    a, b, c, d = tenants[:4]
    size = await one_bundle_size(db, a)
    assert 10_000 < size < 1_000_000, size  # two rules and two RE2 patterns, estimated
    bound = int(size * 2.5)  # two bundles fit, three do not
    cache = new_cache(db, bound)

    assert await reason_of(cache, a) == "tenant 0 v1"
    assert await reason_of(cache, b) == "tenant 1 v1"
    assert await reason_of(cache, a) == "tenant 0 v1"  # a is now the most recent
    assert cache.cached() == [b.id, a.id]
    assert await reason_of(cache, c) == "tenant 2 v1"
    assert cache.cached() == [a.id, c.id]  # b, least recently used, went
    assert cache.cached_bytes <= bound

    # b changes its policy while it is out of the cache: its next decision reads it.
    b.install("tenant 1 v2")
    before = loads()
    assert await reason_of(cache, b) == "tenant 1 v2"
    assert loads() == before + 1
    assert cache.cached() == [c.id, b.id]
    assert cache.cached_bytes <= bound

    # Cached tenants are served from memory: no load.
    before = loads()
    for _ in range(20):
        assert await reason_of(cache, b) == "tenant 1 v2"
        assert await reason_of(cache, c) == "tenant 2 v1"
    assert loads() == before

    for tenant in tenants:  # more tenants than fit, in turn: never above the bound
        await cache.get(tenant.id)
        assert cache.cached_bytes <= bound
        assert len(cache.cached()) == 2
    assert cache.cached() == [tenants[-2].id, tenants[-1].id]
    assert await reason_of(cache, d) == "tenant 3 v1"


async def test_a_cached_tenant_whose_policies_changed_is_never_answered_from_the_old_bundle(
    db: Database, tenants: list[Tenant]
) -> None:
    a, b = tenants[4], tenants[5]
    cache = new_cache(db, int(await one_bundle_size(db, a) * 2.5))
    assert await reason_of(cache, a) == "tenant 4 v1"
    assert await reason_of(cache, b) == "tenant 5 v1"

    a.install("tenant 4 v2")
    await cache.check_revisions()  # the poll: one read of the cached tenants' revisions
    assert await reason_of(cache, a) == "tenant 4 v2"

    b.install("tenant 5 v2")
    await cache.check_revisions()  # b is now stale ...
    await cache.get(tenants[0].id)  # ... and the least recently used: evicted
    assert b.id not in cache.cached()
    assert b.id not in cache._stale
    assert await reason_of(cache, b) == "tenant 5 v2"
    a.install("tenant 4 v1")  # back as it was, for the other tests


async def test_a_bundle_larger_than_the_bound_is_served_and_goes_first(
    db: Database, tenants: list[Tenant]
) -> None:
    a, b = tenants[:2]
    cache = new_cache(db, max_bytes=1)
    assert await reason_of(cache, a) == "tenant 0 v1"
    assert cache.cached() == [a.id]
    assert await reason_of(cache, a) == "tenant 0 v1"
    await cache.get(b.id)
    assert cache.cached() == [b.id]


async def test_locks_and_stale_marks_stay_bounded(db: Database, tenants: list[Tenant]) -> None:
    cache = new_cache(db, int(await one_bundle_size(db, tenants[0]) * 2.5))
    before = loads()
    seen_locks = 0

    async def decide(tenant: Tenant) -> None:
        nonlocal seen_locks
        await cache.get(tenant.id)
        seen_locks = max(seen_locks, len(cache._locks))

    for _ in range(3):
        # Every tenant at once, eight decisions each: one load per tenant at a time, and
        # entries only for tenants with a decision waiting.
        await asyncio.gather(*(decide(t) for t in tenants for _ in range(8)))
        assert cache._locks == {}
        assert len(cache.cached()) == 2
        assert cache.cached_bytes <= int(await one_bundle_size(db, tenants[0]) * 2.5)
    assert seen_locks <= len(tenants)
    # At most one load per tenant per round, though the bound holds two of six: decisions
    # that waited for a load use it even when other loads evicted it meanwhile.
    assert loads() - before <= 3 * len(tenants)

    # Hints for every tenant, cached or not, and for tenants this process never saw: stale
    # marks only for cached tenants.
    for tenant in tenants:
        cache.invalidate(PolicyChange(tenant.id, 1_000_000))
    for _ in range(100):
        cache.invalidate(PolicyChange(uuid.uuid4(), 1_000_000))
    assert cache._stale == set(cache.cached())
    assert cache._locks == {}
    for tenant in tenants:  # stale ones reload, evicting the others: the marks go too
        await cache.get(tenant.id)
        assert cache._stale <= set(cache.cached())
    assert cache._locks == {}


async def test_a_change_announced_while_a_tenant_loads_is_not_missed(
    db: Database, tenants: list[Tenant]
) -> None:
    tenant = tenants[3]
    cache = new_cache(db, 1 << 30)
    before = loads()
    loading = asyncio.create_task(cache.get(tenant.id))
    await asyncio.sleep(0)  # the load has begun: its lock entry exists
    assert tenant.id in cache._locks
    # Announced after the load may have read the revision: the loaded bundle cannot be
    # trusted to hold it. (A revision no tenant has, so it is never caught up with.)
    cache.invalidate(PolicyChange(tenant.id, 1_000_000))
    await loading
    assert loads() == before + 1  # (read twice, counted once)
    assert cache._stale == {tenant.id}  # so its next decision reads the policies again
    await cache.get(tenant.id)
    assert loads() == before + 2
    assert cache._locks == {}
