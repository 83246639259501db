"""The local fallback bucket (used while Redis is down) charges a batch all or none."""

from __future__ import annotations

from fulcrum.ratelimit.limiter import RateDecision, RateLimited, _LocalBuckets

KEYS = ("rl:t", "rl:t:k")


def test_a_batch_takes_its_cost_from_both_buckets_or_from_neither() -> None:
    buckets = _LocalBuckets()
    allowed, tenant, key = buckets.take(KEYS, (0.0, 0.0), (100, 60), cost=50)
    assert (allowed, tenant, key) == (1.0, 50.0, 10.0)
    # The key bucket holds 10: a batch of 20 is refused and neither bucket is charged.
    allowed, tenant, key = buckets.take(KEYS, (0.0, 0.0), (100, 60), cost=20)
    assert (allowed, tenant, key) == (0.0, 50.0, 10.0)
    allowed, tenant, key = buckets.take(KEYS, (0.0, 0.0), (100, 60), cost=10)
    assert (allowed, tenant, key) == (1.0, 40.0, 0.0)


def test_refusals_name_the_cost_and_whether_waiting_can_help() -> None:
    short = RateDecision(False, "tenant", 10, 3, 1, 1, cost=5)
    assert "5 requested, 3 available; retry after 1s" in RateLimited(short).message
    assert short.headers()["Retry-After"] == "1"
    never = RateDecision(False, "key", 10, 10, 0, 86_400, cost=11)
    assert not never.fits
    assert "send smaller batches" in RateLimited(never).message
    assert "Retry-After" not in never.headers()
