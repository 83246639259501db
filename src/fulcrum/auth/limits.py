"""Rate limits: tenant plans, the platform's custom ceilings, and the tenant's own lower
overrides."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Plan(StrEnum):
    FREE = "free"
    STANDARD = "standard"
    ENTERPRISE = "enterprise"


@dataclass(frozen=True)
class RateLimits:
    """Token buckets: ``rate`` tokens per second refill, ``burst`` tokens capacity."""

    tenant_rate: float
    tenant_burst: int
    key_rate: float
    key_burst: int


PLAN_LIMITS = {
    Plan.FREE: RateLimits(tenant_rate=10, tenant_burst=20, key_rate=5, key_burst=10),
    Plan.STANDARD: RateLimits(tenant_rate=500, tenant_burst=1000, key_rate=250, key_burst=500),
    Plan.ENTERPRISE: RateLimits(
        tenant_rate=5000, tenant_burst=10000, key_rate=2500, key_burst=5000
    ),
}


def ceiling_limits(
    plan: str,
    tenant_rate: float | None = None,
    tenant_burst: int | None = None,
    key_rate: float | None = None,
    key_burst: int | None = None,
) -> RateLimits:
    """A tenant's ceilings: the platform's custom limits where it set them, else the plan's."""
    base = PLAN_LIMITS[Plan(plan)]
    return replace(
        base,
        tenant_rate=base.tenant_rate if tenant_rate is None else tenant_rate,
        tenant_burst=base.tenant_burst if tenant_burst is None else tenant_burst,
        key_rate=base.key_rate if key_rate is None else key_rate,
        key_burst=base.key_burst if key_burst is None else key_burst,
    )


def effective_limits(
    plan: str,
    tenant_rate: float | None,
    tenant_burst: int | None,
    key_rate: float | None,
    key_burst: int | None,
    *,
    ceiling: RateLimits | None = None,
) -> RateLimits:
    """The ceilings (the plan's unless given) lowered by the tenant's own overrides: an
    override never raises a limit, even one the platform lowered after it was set."""
    base = ceiling or PLAN_LIMITS[Plan(plan)]
    return replace(
        base,
        tenant_rate=base.tenant_rate if tenant_rate is None else min(tenant_rate, base.tenant_rate),
        tenant_burst=(
            base.tenant_burst if tenant_burst is None else min(tenant_burst, base.tenant_burst)
        ),
        key_rate=base.key_rate if key_rate is None else min(key_rate, base.key_rate),
        key_burst=base.key_burst if key_burst is None else min(key_burst, base.key_burst),
    )
