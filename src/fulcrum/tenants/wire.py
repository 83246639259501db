"""A tenant and its settings on each wire: protobuf and the REST body."""

from __future__ import annotations

from typing import Any

from fulcrum.kit.timestamps import timestamp
from fulcrum.pb.v1 import settings_pb2, tenants_pb2
from fulcrum.tenants.limits import limits_fields
from fulcrum.tenants.models import Tenant, TenantStatus
from fulcrum.tenants.settings import TenantSettings

_STATUS = {
    TenantStatus.ACTIVE: tenants_pb2.TENANT_STATUS_ACTIVE,
    TenantStatus.SUSPENDED: tenants_pb2.TENANT_STATUS_SUSPENDED,
}


def _tenant_fields(t: Tenant) -> dict[str, Any]:
    return {
        "id": str(t.id),
        "name": t.name,
        "plan": t.plan,
        "limits": limits_fields(t.ceiling),  # its ceilings: the plan's or custom
        "custom_limits": t.custom_limits,
    }


def tenant_body(t: Tenant) -> dict[str, Any]:
    return {**_tenant_fields(t), "status": t.status.value, "created_at": t.created_at}


def tenant_message(t: Tenant) -> tenants_pb2.Tenant:
    return tenants_pb2.Tenant(
        **_tenant_fields(t), status=_STATUS[t.status], create_time=timestamp(t.created_at)
    )


def _settings_fields(s: TenantSettings) -> dict[str, Any]:
    return {
        "default_action": s.default_action.value,
        "plan": s.plan.value,
        "rate_limit": limits_fields(s.limits),
    }


def settings_body(s: TenantSettings) -> dict[str, Any]:
    return _settings_fields(s)


def settings_message(s: TenantSettings) -> settings_pb2.Settings:
    return settings_pb2.Settings(**_settings_fields(s))
