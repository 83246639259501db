from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from enum import StrEnum

from fulcrum.auth.limits import RateLimits


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


@dataclass(frozen=True)
class Tenant:
    id: uuid.UUID
    name: str
    status: TenantStatus
    created_at: dt.datetime
    clerk_org_id: str | None
    limits: RateLimits  # in force: the ceilings, lowered by the tenant's own overrides
    plan: str
    default_action: str
    ceiling: RateLimits  # the plan's limits, or the platform's custom ones
    custom_limits: bool  # whether the platform set any custom ceiling
