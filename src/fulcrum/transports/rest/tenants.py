"""``/v1/tenants``: platform administration (scope ``tenants:admin``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from fulcrum.auth.principal import Principal
from fulcrum.auth.scopes import Scope
from fulcrum.tenants.models import TenantStatus
from fulcrum.transports.rest.auth import RequireScopes, services_of
from fulcrum.transports.rest.schemas import CreateTenantIn, CreateTenantOut, TenantOut, TenantPage

router = APIRouter(prefix="/v1/tenants", tags=["tenants"])
Admin = Annotated[Principal, Depends(RequireScopes(Scope.TENANTS_ADMIN))]


@router.post("", status_code=201)
async def create_tenant(body: CreateTenantIn, request: Request, who: Admin) -> CreateTenantOut:
    tenant, issued = await services_of(request).tenants.create(
        who, name=body.name, owner_user_id=body.owner_user_id
    )
    return CreateTenantOut(tenant=TenantOut.of(tenant), owner_api_key=issued.secret)


@router.get("")
async def list_tenants(
    request: Request,
    who: Admin,
    page_size: Annotated[int, Query(ge=0, le=200)] = 0,
    page_token: Annotated[str, Query(max_length=512)] = "",
) -> TenantPage:
    tenants, token = await services_of(request).tenants.list(who, size=page_size, token=page_token)
    return TenantPage(tenants=[TenantOut.of(t) for t in tenants], next_page_token=token)


@router.get("/{tenant_id}")
async def get_tenant(tenant_id: str, request: Request, who: Admin) -> TenantOut:
    return TenantOut.of(await services_of(request).tenants.get(who, tenant_id))


@router.post("/{tenant_id}/suspend")
async def suspend_tenant(tenant_id: str, request: Request, who: Admin) -> TenantOut:
    tenant = await services_of(request).tenants.set_status(who, tenant_id, TenantStatus.SUSPENDED)
    return TenantOut.of(tenant)


@router.post("/{tenant_id}/resume")
async def resume_tenant(tenant_id: str, request: Request, who: Admin) -> TenantOut:
    tenant = await services_of(request).tenants.set_status(who, tenant_id, TenantStatus.ACTIVE)
    return TenantOut.of(tenant)
