"""The pure parts that keep floods of bad credentials away from the database."""

from __future__ import annotations

import asyncio

import pytest

from fulcrum.authn.guard import ExpiringSet, FailureThrottle, SingleFlight, peer_host


def test_concurrent_lookups_of_one_key_share_one_fetch() -> None:
    async def scenario() -> tuple[list[str], int]:
        flight: SingleFlight[str, str] = SingleFlight()
        fetches = 0
        release = asyncio.Event()

        async def fetch() -> str:
            nonlocal fetches
            fetches += 1
            await release.wait()
            return "record"

        waiters = [asyncio.create_task(flight.run("key", fetch)) for _ in range(50)]
        await asyncio.sleep(0)
        assert len(flight) == 1
        release.set()
        results = await asyncio.gather(*waiters)
        assert len(flight) == 0  # finished: the next lookup reads again
        await flight.run("key", fetch)
        return results, fetches

    results, fetches = asyncio.run(scenario())
    assert results == ["record"] * 50
    assert fetches == 2


def test_different_keys_do_not_share_and_errors_reach_every_waiter() -> None:
    async def scenario() -> None:
        flight: SingleFlight[str, str] = SingleFlight()

        async def fail() -> str:
            await asyncio.sleep(0.01)
            raise RuntimeError("database down")

        async def ok() -> str:
            return "b"

        first = asyncio.gather(*(flight.run("a", fail) for _ in range(3)), return_exceptions=True)
        assert await flight.run("b", ok) == "b"
        errors = await first
        assert all(isinstance(e, RuntimeError) for e in errors)

    asyncio.run(scenario())


def test_one_cancelled_waiter_does_not_cancel_the_shared_fetch() -> None:
    async def scenario() -> str:
        flight: SingleFlight[str, str] = SingleFlight()

        async def fetch() -> str:
            await asyncio.sleep(0.05)
            return "record"

        quitter = asyncio.create_task(flight.run("key", fetch))
        stayer = asyncio.create_task(flight.run("key", fetch))
        await asyncio.sleep(0.01)
        quitter.cancel()
        return await stayer

    assert asyncio.run(scenario()) == "record"


def test_negative_cache_expires_and_is_bounded() -> None:
    unknown: ExpiringSet[str] = ExpiringSet(ttl=10, max_size=3)
    unknown.add("a", now=0)
    assert unknown.contains("a", now=9.9)
    assert not unknown.contains("a", now=10)
    for name in "bcde":
        unknown.add(name, now=1)
    assert len(unknown) == 3
    assert not unknown.contains("b", now=2)  # the oldest went first
    assert unknown.contains("e", now=2)
    unknown.discard("e")
    assert not unknown.contains("e", now=2)


def test_throttle_allows_the_burst_then_refuses_until_refilled() -> None:
    throttle = FailureThrottle(rate=2, burst=3, max_clients=100)
    assert throttle.retry_after("10.0.0.1", now=0) is None
    for _ in range(3):
        throttle.failed("10.0.0.1", now=0)
    assert throttle.retry_after("10.0.0.1", now=0) == 1
    assert throttle.retry_after("10.0.0.2", now=0) is None  # per address
    assert throttle.retry_after("10.0.0.1", now=0.5) is None  # one failure earned back
    throttle.failed("10.0.0.1", now=0.5)
    assert throttle.retry_after("10.0.0.1", now=0.5) == 1


def test_throttle_memory_is_bounded() -> None:
    throttle = FailureThrottle(rate=0, burst=1, max_clients=100)
    for n in range(10_000):
        throttle.failed(f"10.0.{n // 256}.{n % 256}", now=0)
    assert len(throttle) == 100
    assert throttle.retry_after("10.0.39.15", now=0) == 86_400  # the newest are kept


@pytest.mark.parametrize(
    ("peer", "host"),
    [
        ("ipv4:127.0.0.1:50432", "127.0.0.1"),
        ("ipv6:[::1]:50432", "::1"),
        ("ipv6:[2001:db8::7]:443", "2001:db8::7"),
        ("unix:/tmp/socket", None),
        ("", None),
    ],
)
def test_peer_host(peer: str, host: str | None) -> None:
    assert peer_host(peer) == host


def test_a_refund_gives_back_one_attempt_up_to_the_burst() -> None:
    throttle = FailureThrottle(rate=0, burst=2, max_clients=10)
    throttle.failed("a", now=0)
    throttle.failed("a", now=0)
    assert throttle.retry_after("a", now=0) == 86_400
    throttle.refund("a", now=0)
    assert throttle.retry_after("a", now=0) is None
    throttle.refund("a", now=0)
    throttle.refund("a", now=0)
    throttle.failed("a", now=0)
    throttle.failed("a", now=0)
    assert throttle.retry_after("a", now=0) == 86_400  # never more than the burst
