"""Tenant settings: the default action and rate-limit overrides.

The default action is part of the compiled bundle, so changing it moves the tenant's policy
revision like a policy change does. Rate-limit overrides may only lower the plan's limits:
a tenant cannot buy itself more capacity than its plan grants.
"""

from __future__ import annotations

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
from fulcrum.tenants.limits import parse_limits
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
    # The platform's custom ceilings, when it set any; otherwise the plan's apply.
    custom_ceiling: RateLimits | None = None


def parse_action(value: str, field: str) -> Action:
    try:
        return Action(value)
    except ValueError:
        allowed = ", ".join(a.value for a in Action)
        raise InvalidArgument(f"must be one of {allowed}", field=field) from None


def rate_overrides(
    plan: Plan,
    requested: dict[str, float | None],
    ceiling: RateLimits | None = None,
) -> dict[str, float | int | None]:
    """Validate the tenant's overrides (None resets one) against its ceilings (the plan's,
    unless the platform gave it custom ones) and map them to tenant columns."""

    def too_high(limit: float | int) -> str:
        if ceiling is None:
            return f"cannot exceed the {plan} plan's {limit}"
        return f"cannot exceed the tenant's limit of {limit}"

    parsed = parse_limits(
        requested, field="rate_limit", ceiling=ceiling or PLAN_LIMITS[plan], too_high=too_high
    )
    return {RATE_FIELDS[name][0]: value for name, value in parsed.items()}


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
        return TenantSettings(
            Action(tenant.default_action),
            Plan(tenant.plan),
            tenant.limits,
            tenant.ceiling if tenant.custom_limits else None,
        )

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
                overrides = rate_overrides(before.plan, rate_limit, before.custom_ceiling)
                await tenants_repo.set_rate_overrides(conn, overrides)
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
