"""Checks a principal against its tenant's and its own token bucket.

Redis holds the buckets and a Lua script (EVALSHA; loaded on first use) checks and charges
both atomically, so limits are exact across any number of API processes. The checks of
concurrent requests travel together, one pipeline per round trip
(:class:`fulcrum.kit.redis.CoalescedScript`); each is still its own atomic script call.
When Redis fails the limiter does not open the gates: each process enforces a
conservative local bucket (a fraction of the configured limits), raises
``fulcrum_rate_limit_degraded``, and tries Redis again every ``retry_interval`` seconds,
returning to shared limiting by itself.

Every decision costs a token: a batch of n decisions is charged n tokens at once, all or
none, so batching is no way around a limit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from fulcrum.auth.limits import RateLimits
from fulcrum.auth.principal import Principal
from fulcrum.kit.errors import ResourceExhausted
from fulcrum.kit.logging import get_logger
from fulcrum.kit.redis import CoalescedScript
from fulcrum.observability.metrics import RATE_LIMIT_DEGRADED, RATE_LIMITED

log = get_logger(__name__)

_SCRIPT = resources.files("fulcrum.ratelimit").joinpath("bucket.lua").read_text()
BUCKETS = ("tenant", "key")
MAX_LOCAL_BUCKETS = 100_000


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limited_by: str  # "tenant" or "key": the bucket with the fewest tokens left
    limit: int
    remaining: int
    reset_seconds: int
    retry_after_seconds: int
    cost: int = 1  # the tokens asked for: one per decision

    @property
    def fits(self) -> bool:
        """False when the request costs more than the bucket can ever hold: waiting is futile."""
        return self.cost <= self.limit

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed and self.fits:
            headers["Retry-After"] = str(self.retry_after_seconds)
        return headers


class RateLimited(ResourceExhausted):
    """Refused by a bucket; carries the rate-limit headers, and a retry time unless waiting
    is futile (a batch larger than the burst)."""

    def __init__(self, decision: RateDecision) -> None:
        exceeded = f"rate limit exceeded ({decision.limited_by}): {decision.cost} requested"
        if decision.fits:
            message = (
                f"{exceeded}, {decision.remaining} available; retry after "
                f"{decision.retry_after_seconds}s"
            )
        else:
            message = f"{exceeded}, more than its burst of {decision.limit}: send smaller batches"
        super().__init__(
            message,
            retry_after_seconds=decision.retry_after_seconds if decision.fits else None,
            headers=decision.headers(),
        )
        self.decision = decision


def _seconds(millis: float) -> int:
    # -1 from the script means "never" (a bucket with no refill); report a day.
    return 86_400 if millis < 0 else math.ceil(millis / 1000)


class _LocalBuckets:
    """In-process token buckets: the fallback while Redis is unreachable."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(
        self,
        keys: tuple[str, str],
        rates: tuple[float, float],
        bursts: tuple[int, int],
        cost: int = 1,
    ) -> list[float]:
        """Charge ``cost`` tokens from both buckets or from neither: [allowed, *levels]."""
        now = time.monotonic()
        if len(self._buckets) > MAX_LOCAL_BUCKETS:
            self._buckets.clear()
        levels = []
        for key, rate, burst in zip(keys, rates, bursts, strict=True):
            tokens, at = self._buckets.get(key, (float(burst), now))
            levels.append(min(float(burst), tokens + (now - at) * rate))
        if all(level >= cost for level in levels):
            levels = [level - cost for level in levels]
            for key, level in zip(keys, levels, strict=True):
                self._buckets[key] = (level, now)
            return [1.0, *levels]
        return [0.0, *levels]


ScriptCall = Callable[[Sequence[str], Sequence[Any]], Awaitable[Any]]


class RateLimiter:
    """``script`` runs the bucket script against Redis: :meth:`on` gives the real one."""

    def __init__(
        self,
        script: ScriptCall,
        *,
        local_fraction: float = 0.25,
        retry_interval: float = 1.0,
    ) -> None:
        self._script = script
        self._local = _LocalBuckets()
        self._local_fraction = local_fraction
        self._retry_interval = retry_interval
        self._degraded_until = 0.0

    @classmethod
    def on(cls, redis: aioredis.Redis, **options: Any) -> RateLimiter:
        return cls(CoalescedScript(redis, _SCRIPT), **options)

    @property
    def degraded(self) -> bool:
        return self._degraded_until > 0

    async def check(self, principal: Principal, cost: int = 1) -> RateDecision | None:
        """Charge ``cost`` tokens (one per decision), all or none; raise :class:`RateLimited`
        when refused. None: not limited."""
        if cost < 1:
            raise ValueError("a request costs at least one token")
        if principal.tenant_id is None or principal.limits is None:
            return None  # platform credentials are not tenant traffic
        subject = principal.key_id or principal.external_user_id or "anonymous"
        # One hash tag: both buckets live in one slot, as a script over two keys needs on
        # Redis Cluster.
        tag = f"rl:{{{principal.tenant_id}}}"
        keys = (tag, f"{tag}:{subject}")
        limits = principal.limits
        decision = await self._charge(keys, limits, cost)
        if not decision.allowed:
            RATE_LIMITED.labels(limit=decision.limited_by).inc()
            raise RateLimited(decision)
        return decision

    async def _charge(self, keys: tuple[str, str], limits: RateLimits, cost: int) -> RateDecision:
        now = time.monotonic()
        if self._degraded_until == 0 or now >= self._degraded_until:
            try:
                result = await self._script(
                    keys,
                    (
                        limits.tenant_rate,
                        limits.tenant_burst,
                        limits.key_rate,
                        limits.key_burst,
                        cost,
                    ),
                )
            except (TimeoutError, RedisError, OSError) as exc:
                if not self.degraded:
                    log.warning("ratelimit.degraded", error=type(exc).__name__)
                self._degraded_until = now + self._retry_interval
                RATE_LIMIT_DEGRADED.set(1)
            else:
                if self.degraded:
                    log.info("ratelimit.recovered")
                    self._degraded_until = 0.0
                    RATE_LIMIT_DEGRADED.set(0)
                allowed, bucket, remaining, reset_ms, retry_ms = (int(v) for v in result)
                burst = limits.tenant_burst if bucket == 1 else limits.key_burst
                return RateDecision(
                    bool(allowed),
                    BUCKETS[bucket - 1],
                    burst,
                    max(0, remaining),
                    _seconds(reset_ms),
                    _seconds(retry_ms) if not allowed else 0,
                    cost,
                )
        return self._charge_locally(keys, limits, cost)

    def _charge_locally(self, keys: tuple[str, str], limits: RateLimits, cost: int) -> RateDecision:
        f = self._local_fraction
        rates = (limits.tenant_rate * f, limits.key_rate * f)
        bursts = (max(1, int(limits.tenant_burst * f)), max(1, int(limits.key_burst * f)))
        allowed, *levels = self._local.take(keys, rates, bursts, cost)
        tight = 0 if levels[0] <= levels[1] else 1
        if not allowed:
            tight = 0 if levels[0] < cost else 1
        rate, burst, level = rates[tight], bursts[tight], levels[tight]
        reset = (burst - level) / rate if rate > 0 else 86_400
        retry = (cost - level) / rate if rate > 0 else 86_400
        return RateDecision(
            bool(allowed),
            BUCKETS[tight],
            burst,
            max(0, int(level)),
            math.ceil(reset),
            0 if allowed else max(1, math.ceil(retry)),
            cost,
        )
