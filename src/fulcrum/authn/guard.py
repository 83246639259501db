"""What keeps floods of bad credentials away from the database (pure; no I/O).

- :class:`SingleFlight`: concurrent lookups of one key share one query.
- :class:`ExpiringSet`: the negative cache, key ids known not to exist, bounded.
- :class:`FailureThrottle`: a token bucket of authentication failures per client address,
  bounded; an address that spent it may no longer cause lookups of ids not already known.

All of it is per process: memory stays bounded whatever the attacker sends, and the
limits multiply by the number of API processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """Runs one ``fetch`` per key at a time; callers who arrive meanwhile await its result."""

    def __init__(self) -> None:
        self._running: dict[K, asyncio.Task[V]] = {}

    def __len__(self) -> int:
        return len(self._running)

    async def run(self, key: K, fetch: Callable[[], Awaitable[V]]) -> V:
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(fetch())
            self._running[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        # Shielded: one caller's cancellation (a client hanging up) must not fail the others.
        return await asyncio.shield(task)

    def _finished(self, key: K, task: asyncio.Task[V]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            # Retrieved here so an error nobody awaits any more is not logged as lost.
            with contextlib.suppress(BaseException):
                task.exception()


class ExpiringSet(Generic[K]):
    """Members expire ``ttl`` seconds after they were added; the oldest go first when full."""

    def __init__(self, ttl: float, max_size: int) -> None:
        self._ttl = ttl
        self._max_size = max_size
        self._expires: OrderedDict[K, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expires)

    def add(self, key: K, now: float) -> None:
        self._expires.pop(key, None)
        self._expires[key] = now + self._ttl
        while len(self._expires) > self._max_size:
            self._expires.popitem(last=False)

    def discard(self, key: K) -> None:
        self._expires.pop(key, None)

    def contains(self, key: K, now: float) -> bool:
        expires = self._expires.get(key)
        if expires is None:
            return False
        if now >= expires:
            del self._expires[key]
            return False
        return True


class FailureThrottle:
    """``burst`` failures per client address, refilled at ``rate`` per second.

    At most ``max_clients`` addresses are tracked; the least recently failing are forgotten
    first, which bounds memory (an attacker with that many addresses is limited per process
    by the lookup bound instead).
    """

    def __init__(self, rate: float, burst: int, max_clients: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _level(self, client: str, now: float) -> float:
        tokens, at = self._buckets.get(client, (self._burst, now))
        return min(self._burst, tokens + max(0.0, now - at) * self._rate)

    def retry_after(self, client: str, now: float) -> int | None:
        """Whole seconds until ``client`` may fail again, or None when it is not throttled."""
        if client not in self._buckets:
            return None
        level = self._level(client, now)
        if level >= 1:
            return None
        if self._rate <= 0:
            return 86_400
        return max(1, math.ceil((1 - level) / self._rate))

    def failed(self, client: str, now: float) -> None:
        """Spend one attempt (a failure, or a lookup that may turn out to be one)."""
        level = self._level(client, now)
        self._buckets.pop(client, None)
        self._buckets[client] = (max(0.0, level - 1), now)
        while len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)

    def refund(self, client: str, now: float) -> None:
        """Give back an attempt spent on a lookup that found its key."""
        if client in self._buckets:
            self._buckets[client] = (min(self._burst, self._level(client, now) + 1), now)


def peer_host(peer: str) -> str | None:
    """The host of a gRPC peer string (``ipv4:1.2.3.4:5``, ``ipv6:[::1]:5``), else None."""
    kind, _, address = peer.partition(":")
    if kind == "ipv4":
        host, _, _ = address.rpartition(":")
        return host or None
    if kind == "ipv6":
        host, _, _ = address.rpartition(":")
        return host.strip("[]") or None
    return None
