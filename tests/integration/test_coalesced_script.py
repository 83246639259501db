"""The rate-limit script through CoalescedScript against the real Redis: concurrent calls
share round trips, every call still gets its own exact answer, and a script Redis lost is
loaded again without losing or doubling a call."""

from __future__ import annotations

import asyncio
import uuid

from fulcrum.auth.limits import RateLimits
from fulcrum.auth.principal import Principal, PrincipalKind
from fulcrum.auth.scopes import Scope
from fulcrum.kit.config import Service
from fulcrum.kit.redis import CoalescedScript, redis_client, redis_user
from fulcrum.ratelimit.limiter import RateLimited, RateLimiter
from tests.support.stack import LiveStack

COUNTER = """
local n = redis.call('HINCRBY', KEYS[1], 'tokens', ARGV[1])
redis.call('PEXPIRE', KEYS[1], 60000)
return n
"""


def principal(limits: RateLimits) -> Principal:
    return Principal(
        kind=PrincipalKind.API_KEY,
        scopes=frozenset({Scope.DECISIONS_EVALUATE}),
        actor="key:k1",
        tenant_id=uuid.uuid4(),
        key_id="k1",
        limits=limits,
    )


async def test_concurrent_calls_share_round_trips_and_each_gets_its_own_answer(
    stack: LiveStack,
) -> None:
    redis = redis_client(stack.settings, Service.ADMIN)
    key = f"rl:{{{uuid.uuid4()}}}"
    script = CoalescedScript(redis, COUNTER)
    try:
        answers = await asyncio.gather(*(script([key], [1]) for _ in range(200)))
        # Each call ran once, in order: the counter took every value from 1 to 200.
        assert sorted(answers) == list(range(1, 201))
        assert script.round_trips < 10  # not 200
        # An idle caller is sent at once, alone.
        before = script.round_trips
        assert await script([key], [5]) == 205
        assert script.round_trips == before + 1
    finally:
        await redis.aclose()


async def test_a_flushed_script_is_loaded_again_and_runs_each_call_once(
    stack: LiveStack,
) -> None:
    redis = redis_client(stack.settings, Service.ADMIN)
    key = f"rl:{{{uuid.uuid4()}}}"
    script = CoalescedScript(redis, COUNTER)
    try:
        assert await script([key], [1]) == 1
        await redis.script_flush()
        answers = await asyncio.gather(*(script([key], [1]) for _ in range(20)))
        assert sorted(answers) == list(range(2, 22))
    finally:
        await redis.aclose()


async def test_one_failing_call_does_not_fail_the_others(stack: LiveStack) -> None:
    redis = redis_client(stack.settings, Service.ADMIN)
    key = f"rl:{{{uuid.uuid4()}}}"
    script = CoalescedScript(redis, COUNTER)
    try:
        good, bad = await asyncio.gather(
            script([key], [1]), script([key], ["not a number"]), return_exceptions=True
        )
        assert good == 1
        assert isinstance(bad, Exception) and "not an integer" in str(bad)
    finally:
        await redis.aclose()


async def test_the_limiter_allows_exactly_the_burst_to_concurrent_requests(
    stack: LiveStack,
) -> None:
    redis = redis_client(stack.settings, Service.API)
    limiter = RateLimiter.on(redis)
    who = principal(RateLimits(tenant_rate=0, tenant_burst=50, key_rate=0, key_burst=1000))
    try:
        outcomes = await asyncio.gather(
            *(limiter.check(who) for _ in range(120)), return_exceptions=True
        )
        allowed = [o for o in outcomes if not isinstance(o, BaseException)]
        refused = [o for o in outcomes if isinstance(o, RateLimited)]
        assert (len(allowed), len(refused)) == (50, 70)
        assert sorted(d.remaining for d in allowed if d is not None) == list(range(50))
        assert not limiter.degraded
    finally:
        await redis.aclose()


async def test_concurrent_batch_charges_are_each_all_or_none(stack: LiveStack) -> None:
    redis = redis_client(stack.settings, Service.API)
    limiter = RateLimiter.on(redis)
    who = principal(RateLimits(tenant_rate=0, tenant_burst=10, key_rate=0, key_burst=10))
    try:
        outcomes = await asyncio.gather(
            *(limiter.check(who, 3) for _ in range(5)), return_exceptions=True
        )
        allowed = [o for o in outcomes if not isinstance(o, BaseException)]
        assert len(allowed) == 3  # 3 x 3 tokens of 10; the fourth would need 12
        final = await limiter.check(who)  # the last token is still there: nothing half-taken
        assert final is not None and final.remaining == 0
    finally:
        await redis.aclose()


async def test_a_burst_of_checks_opens_no_more_than_a_connection_or_two(stack: LiveStack) -> None:
    """Each new TLS connection costs the event loop tens of milliseconds (a new SSL context):
    a burst of concurrent rate-limit checks travels on the pool's first connection instead
    of opening one per caller (or failing on the pool's bound)."""
    observer = redis_client(stack.settings, Service.ADMIN, timeout=3)
    client = redis_client(stack.settings, Service.ADMIN, max_connections=4, timeout=3)
    limiter = RateLimiter.on(client)
    who = principal(RateLimits(tenant_rate=0, tenant_burst=500, key_rate=0, key_burst=500))
    user = redis_user(Service.ADMIN)

    async def connections() -> int:
        return len([c for c in await observer.client_list() if c["user"] == user])

    try:
        before = await connections()  # the observer's (and any other test's, closed by now)
        for _ in range(3):
            decisions = await asyncio.gather(*(limiter.check(who) for _ in range(100)))
            assert all(d is not None and d.allowed for d in decisions)
        assert not limiter.degraded
        assert 1 <= await connections() - before <= 2
    finally:
        await client.aclose()
        await observer.aclose()
