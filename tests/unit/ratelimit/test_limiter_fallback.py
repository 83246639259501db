"""RateLimiter while Redis is unreachable: it keeps limiting with a conservative local bucket
(a quarter of the configured limits), and goes back to Redis by itself.

The script call (the limiter's one seam to Redis) is stood in for by one that raises what
redis-py raises in an outage (or answers like the script, once it is "back"); the limiter's
clock is a manual one so refills are exact. The real script against real Redis is
tests/integration/test_coalesced_script.py and tests/e2e/test_rate_limits.py."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
import redis.exceptions
from prometheus_client import REGISTRY

from fulcrum.auth.limits import RateLimits
from fulcrum.auth.principal import Principal, PrincipalKind
from fulcrum.auth.scopes import Scope
from fulcrum.ratelimit import limiter as limiter_module
from fulcrum.ratelimit.limiter import RateLimited, RateLimiter

TENANT = uuid.UUID("5f0c6a2e-3b1d-4c8e-9a7f-2d4e6b8c0a13")
# Locally (a quarter): the tenant bucket holds 5 and refills 2/s, each key's holds 2 and
# refills 1/s.
LIMITS = RateLimits(tenant_rate=8, tenant_burst=20, key_rate=4, key_burst=8)
OUTAGES = [
    redis.exceptions.ConnectionError("Error 111 connecting to localhost:6379"),
    redis.exceptions.TimeoutError("Timeout reading from socket"),
    ConnectionRefusedError(111, "Connection refused"),
    TimeoutError(),
]


@dataclass
class Clock:
    now: float = 1000.0

    def monotonic(self) -> float:
        return self.now


@dataclass
class Script:
    """The bucket script's call, as RateLimiter makes it."""

    outage: BaseException | None = None
    answer: Sequence[int] = (1, 2, 7, 0, 0)  # allowed, key bucket, 7 left, reset, retry
    calls: int = 0

    async def __call__(self, keys: Sequence[str], args: Sequence[float]) -> list[int]:
        self.calls += 1
        if self.outage is not None:
            raise self.outage
        return list(self.answer)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    # The limiter's module reads time.monotonic(); only its reference is replaced.
    monkeypatch.setattr(limiter_module, "time", clock)
    return clock


def key(key_id: str = "k1", limits: RateLimits = LIMITS) -> Principal:
    return Principal(
        kind=PrincipalKind.API_KEY,
        scopes=frozenset({Scope.DECISIONS_EVALUATE}),
        actor=f"key:{key_id}",
        tenant_id=TENANT,
        key_id=key_id,
        limits=limits,
    )


def degraded_gauge() -> float | None:
    return REGISTRY.get_sample_value("fulcrum_rate_limit_degraded")


@pytest.mark.parametrize("outage", OUTAGES, ids=lambda e: type(e).__name__)
async def test_an_outage_falls_back_to_the_local_burst(clock: Clock, outage: Exception) -> None:
    limiter = RateLimiter(Script(outage=outage))
    first = await limiter.check(key())
    assert first is not None and first.allowed
    assert (first.limited_by, first.limit, first.remaining) == ("key", 2, 1)
    assert limiter.degraded
    assert degraded_gauge() == 1
    await limiter.check(key())
    with pytest.raises(RateLimited) as refused:
        await limiter.check(key())
    decision = refused.value.decision
    assert not decision.allowed
    assert (decision.limited_by, decision.limit, decision.remaining) == ("key", 2, 0)
    assert decision.retry_after_seconds == 1
    assert decision.headers()["Retry-After"] == "1"


async def test_the_local_bucket_refills_with_time(clock: Clock) -> None:
    limiter = RateLimiter(Script(outage=OUTAGES[0]))
    for _ in range(2):
        await limiter.check(key())
    with pytest.raises(RateLimited):
        await limiter.check(key())
    clock.now += 0.5  # half a token
    with pytest.raises(RateLimited):
        await limiter.check(key())
    clock.now += 0.5
    assert await limiter.check(key())  # one token back
    with pytest.raises(RateLimited):
        await limiter.check(key())
    clock.now += 60  # refills stop at the burst
    for _ in range(2):
        await limiter.check(key())
    with pytest.raises(RateLimited):
        await limiter.check(key())


async def test_the_tenant_bucket_is_shared_by_its_keys(clock: Clock) -> None:
    limiter = RateLimiter(Script(outage=OUTAGES[0]))
    for key_id in ("a", "a", "b", "b", "c"):
        await limiter.check(key(key_id))
    # Key c has a token left, the tenant has none.
    with pytest.raises(RateLimited) as refused:
        await limiter.check(key("c"))
    assert (refused.value.decision.limited_by, refused.value.decision.limit) == ("tenant", 5)


async def test_a_batch_is_charged_locally_all_or_none(clock: Clock) -> None:
    limiter = RateLimiter(Script(outage=OUTAGES[0]))
    with pytest.raises(RateLimited) as refused:
        await limiter.check(key(), cost=3)  # more than the local key burst of 2
    assert not refused.value.decision.fits
    assert "Retry-After" not in refused.value.decision.headers()
    decision = await limiter.check(key(), cost=2)  # nothing was taken by the refusal
    assert decision is not None and decision.remaining == 0


async def test_a_tiny_limit_still_lets_one_request_through(clock: Clock) -> None:
    tiny = RateLimits(tenant_rate=1, tenant_burst=1, key_rate=1, key_burst=1)
    limiter = RateLimiter(Script(outage=OUTAGES[0]))
    assert await limiter.check(key(limits=tiny))
    with pytest.raises(RateLimited):
        await limiter.check(key(limits=tiny))


async def test_redis_is_retried_after_the_interval_and_takes_over_again(clock: Clock) -> None:
    script = Script(outage=OUTAGES[0])
    limiter = RateLimiter(script, retry_interval=5.0)
    await limiter.check(key())
    await limiter.check(key())
    assert script.calls == 1  # within the interval the limiter does not knock on Redis
    with pytest.raises(RateLimited):
        await limiter.check(key())
    clock.now += 5.0
    await limiter.check(key("other"))
    assert script.calls == 2  # still down: degraded for another interval
    assert limiter.degraded
    script.outage = None
    clock.now += 5.0
    decision = await limiter.check(key())
    assert script.calls == 3
    assert not limiter.degraded
    assert degraded_gauge() == 0
    # Redis's answer, with the configured (not the local) limits.
    assert decision is not None
    assert (decision.limited_by, decision.limit, decision.remaining) == ("key", 8, 7)


async def test_platform_credentials_are_not_limited(clock: Clock) -> None:
    script = Script(outage=OUTAGES[0])
    limiter = RateLimiter(script)
    platform = Principal(kind=PrincipalKind.PLATFORM, scopes=frozenset(), actor="platform:p")
    for _ in range(10):
        assert await limiter.check(platform) is None
    assert script.calls == 0
