"""Rate limits: tenant plans and per-tenant overrides."""

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


def effective_limits(
    plan: str,
    tenant_rate: float | None,
    tenant_burst: int | None,
    key_rate: float | None,
    key_burst: int | None,
) -> RateLimits:
    """The plan's limits with the tenant's overrides applied."""
    base = PLAN_LIMITS[Plan(plan)]
    return replace(
        base,
        tenant_rate=base.tenant_rate if tenant_rate is None else tenant_rate,
        tenant_burst=base.tenant_burst if tenant_burst is None else tenant_burst,
        key_rate=base.key_rate if key_rate is None else key_rate,
        key_burst=base.key_burst if key_burst is None else key_burst,
    )
