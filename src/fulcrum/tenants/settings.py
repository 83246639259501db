"""Tenant settings: the default action and rate-limit overrides.

The default action is part of the compiled bundle, so changing it moves the tenant's policy
revision like a policy change does. Rate-limit overrides may only lower the plan's limits:
a tenant cannot buy itself more capacity than its plan grants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from fulcrum.audit.outbox import record_change
from fulcrum.auth.limits import PLAN_LIMITS, Plan, RateLimits
from fulcrum.auth.principal import Principal
from fulcrum.engine.model import Action
from fulcrum.kit.db import Database
from fulcrum.kit.errors import InvalidArgument, NotFound
from fulcrum.policies.notify import PolicyChange, PolicyChangeNotifier
from fulcrum.policies.service import set_default_action
from fulcrum.tenants import operations as ops
from fulcrum.tenants import repository as tenants_repo
from fulcrum.tenants.repository import Conn

# API field -> (tenants column, RateLimits attribute)
RATE_FIELDS = {
    "per_second": ("rate_limit_per_second", "tenant_rate"),
    "burst": ("rate_limit_burst", "tenant_burst"),
    "key_per_second": ("key_rate_limit_per_second", "key_rate"),
    "key_burst": ("key_rate_limit_burst", "key_burst"),
}


@dataclass(frozen=True)
class TenantSettings:
    default_action: Action
    plan: Plan
    limits: RateLimits


def parse_action(value: str, field: str) -> Action:
    try:
        return Action(value)
    except ValueError:
        allowed = ", ".join(a.value for a in Action)
        raise InvalidArgument(f"must be one of {allowed}", field=field) from None


def rate_overrides(plan: Plan, requested: dict[str, float | None]) -> dict[str, float | int | None]:
    """Validate overrides (None resets to the plan) and map them to tenant columns."""
    ceiling = PLAN_LIMITS[plan]
    columns: dict[str, float | int | None] = {}
    for name, value in requested.items():
        if name not in RATE_FIELDS:
            raise InvalidArgument("unknown field", field=f"rate_limit.{name}")
        column, attribute = RATE_FIELDS[name]
        field = f"rate_limit.{name}"
        if value is None:
            columns[column] = None
            continue
        if isinstance(value, float) and not math.isfinite(value):  # NaN passes every test below
            raise InvalidArgument("must be a finite number", field=field)
        limit = getattr(ceiling, attribute)
        is_burst = name.endswith("burst")
        if is_burst and (value != int(value) or value < 1):
            raise InvalidArgument("must be a whole number of at least 1", field=field)
        if value < 0:
            raise InvalidArgument("must not be negative", field=field)
        if value > limit:
            raise InvalidArgument(f"cannot exceed the {plan} plan's {limit}", field=field)
        columns[column] = int(value) if is_burst else float(value)
    return columns


def _limits_dict(limits: RateLimits) -> dict[str, float | int]:
    return {f.name: getattr(limits, f.name) for f in fields(limits)}


class SettingsService:
    def __init__(self, db: Database, notifier: PolicyChangeNotifier) -> None:
        self._db = db
        self._notifier = notifier

    async def get(self, principal: Principal) -> TenantSettings:
        principal.authorize(ops.GET_SETTINGS)
        async with self._db.tenant_tx(principal.require_tenant()) as conn:
            return await self._read(conn)

    async def _read(self, conn: Conn) -> TenantSettings:
        tenant = await tenants_repo.current(conn)
        if tenant is None:
            raise NotFound("tenant not found")
        return TenantSettings(Action(tenant.default_action), Plan(tenant.plan), tenant.limits)

    async def update(
        self,
        principal: Principal,
        *,
        default_action: str | None = None,
        rate_limit: dict[str, float | None] | None = None,
    ) -> TenantSettings:
        principal.authorize(ops.UPDATE_SETTINGS)
        tenant_id = principal.require_tenant()
        action = parse_action(default_action, "default_action") if default_action else None
        change: PolicyChange | None = None
        async with self._db.tenant_tx(tenant_id) as conn:
            before = await self._read(conn)
            if action is not None and action is not before.default_action:
                change = await set_default_action(conn, tenant_id, action)
            if rate_limit:
                await tenants_repo.set_rate_overrides(conn, rate_overrides(before.plan, rate_limit))
            after = await self._read(conn)
            if after != before:
                await record_change(
                    conn,
                    tenant_id=tenant_id,
                    actor=principal.actor,
                    action="settings.update",
                    resource_type="settings",
                    resource_id=str(tenant_id),
                    details={
                        "before": {
                            "default_action": before.default_action.value,
                            "rate_limit": _limits_dict(before.limits),
                        },
                        "after": {
                            "default_action": after.default_action.value,
                            "rate_limit": _limits_dict(after.limits),
                        },
                    },
                )
        if change:
            await self._notifier.notify(change)
        return after
