"""gRPC door onto tenants (platform administration)."""

from __future__ import annotations

from typing import Any

import grpc

from fulcrum.container import Services
from fulcrum.kit.errors import InvalidArgument
from fulcrum.pb.v1 import (
    tenants_pb2,
    tenants_pb2_grpc,
)
from fulcrum.tenants import operations as ops
from fulcrum.tenants.limits import LIMIT_FIELDS
from fulcrum.tenants.models import TenantStatus
from fulcrum.tenants.wire import tenant_message
from fulcrum.transports.grpc.auth import current_principal, rpcs

Context = grpc.aio.ServicerContext[Any, Any]


class TenantServicer(tenants_pb2_grpc.TenantServiceServicer):
    def __init__(self, services: Services) -> None:
        self._tenants = services.tenants

    async def CreateTenant(  # noqa: N802
        self, request: tenants_pb2.CreateTenantRequest, context: Context
    ) -> tenants_pb2.CreateTenantResponse:
        tenant, issued = await self._tenants.create(
            current_principal.get(), name=request.name, owner_user_id=request.owner_user_id or None
        )
        return tenants_pb2.CreateTenantResponse(
            tenant=tenant_message(tenant), owner_api_key=issued.secret
        )

    async def GetTenant(  # noqa: N802
        self, request: tenants_pb2.GetTenantRequest, context: Context
    ) -> tenants_pb2.GetTenantResponse:
        tenant = await self._tenants.get(current_principal.get(), request.tenant_id)
        return tenants_pb2.GetTenantResponse(tenant=tenant_message(tenant))

    async def ListTenants(  # noqa: N802
        self, request: tenants_pb2.ListTenantsRequest, context: Context
    ) -> tenants_pb2.ListTenantsResponse:
        tenants, token = await self._tenants.list(
            current_principal.get(), size=request.page_size, token=request.page_token
        )
        return tenants_pb2.ListTenantsResponse(
            tenants=[tenant_message(t) for t in tenants], next_page_token=token
        )

    async def SuspendTenant(  # noqa: N802
        self, request: tenants_pb2.SuspendTenantRequest, context: Context
    ) -> tenants_pb2.SuspendTenantResponse:
        tenant = await self._tenants.set_status(
            current_principal.get(), request.tenant_id, TenantStatus.SUSPENDED
        )
        return tenants_pb2.SuspendTenantResponse(tenant=tenant_message(tenant))

    async def ResumeTenant(  # noqa: N802
        self, request: tenants_pb2.ResumeTenantRequest, context: Context
    ) -> tenants_pb2.ResumeTenantResponse:
        tenant = await self._tenants.set_status(
            current_principal.get(), request.tenant_id, TenantStatus.ACTIVE
        )
        return tenants_pb2.ResumeTenantResponse(tenant=tenant_message(tenant))

    async def SetTenantPlan(  # noqa: N802
        self, request: tenants_pb2.SetTenantPlanRequest, context: Context
    ) -> tenants_pb2.SetTenantPlanResponse:
        tenant = await self._tenants.set_plan(
            current_principal.get(), request.tenant_id, request.plan
        )
        return tenants_pb2.SetTenantPlanResponse(tenant=tenant_message(tenant))

    async def SetTenantLimits(  # noqa: N802
        self, request: tenants_pb2.SetTenantLimitsRequest, context: Context
    ) -> tenants_pb2.SetTenantLimitsResponse:
        limits: dict[str, float | None] = {
            name: getattr(request.limits, name)
            for name in ("per_second", "burst", "key_per_second", "key_burst")
            if request.limits.HasField(name)
        }
        for i, name in enumerate(request.reset):
            if name not in LIMIT_FIELDS:
                raise InvalidArgument("unknown field", field=f"reset[{i}]")
            limits[name] = None
        tenant = await self._tenants.set_limits(current_principal.get(), request.tenant_id, limits)
        return tenants_pb2.SetTenantLimitsResponse(tenant=tenant_message(tenant))


SERVICE = tenants_pb2.DESCRIPTOR.services_by_name["TenantService"].full_name
OPERATIONS = rpcs(
    SERVICE,
    {
        "CreateTenant": ops.CREATE,
        "GetTenant": ops.GET,
        "ListTenants": ops.LIST,
        "SuspendTenant": ops.SET_STATUS,
        "ResumeTenant": ops.SET_STATUS,
        "SetTenantPlan": ops.SET_PLAN,
        "SetTenantLimits": ops.SET_LIMITS,
    },
)


def register(server: grpc.aio.Server, services: Services) -> None:
    tenants_pb2_grpc.add_TenantServiceServicer_to_server(TenantServicer(services), server)
