"""A tenant and its settings on each wire: protobuf and the REST body."""

from __future__ import annotations

from typing import Any

from fulcrum.kit.timestamps import timestamp
from fulcrum.pb.v1 import settings_pb2, tenants_pb2
from fulcrum.tenants.models import Tenant, TenantStatus
from fulcrum.tenants.settings import TenantSettings

_STATUS = {
    TenantStatus.ACTIVE: tenants_pb2.TENANT_STATUS_ACTIVE,
    TenantStatus.SUSPENDED: tenants_pb2.TENANT_STATUS_SUSPENDED,
}


def tenant_body(t: Tenant) -> dict[str, Any]:
    return {"id": str(t.id), "name": t.name, "status": t.status.value, "created_at": t.created_at}


def tenant_message(t: Tenant) -> tenants_pb2.Tenant:
    return tenants_pb2.Tenant(
        id=str(t.id), name=t.name, status=_STATUS[t.status], create_time=timestamp(t.created_at)
    )


def _settings_fields(s: TenantSettings) -> dict[str, Any]:
    return {
        "default_action": s.default_action.value,
        "plan": s.plan.value,
        "rate_limit": {
            "per_second": s.limits.tenant_rate,
            "burst": s.limits.tenant_burst,
            "key_per_second": s.limits.key_rate,
            "key_burst": s.limits.key_burst,
        },
    }


def settings_body(s: TenantSettings) -> dict[str, Any]:
    return _settings_fields(s)


def settings_message(s: TenantSettings) -> settings_pb2.Settings:
    return settings_pb2.Settings(**_settings_fields(s))
