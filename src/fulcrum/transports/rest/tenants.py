"""``/v1/tenants``: platform administration (scope ``tenants:admin``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel

from fulcrum.auth.principal import Principal
from fulcrum.tenants import operations as ops
from fulcrum.tenants.models import Tenant, TenantStatus
from fulcrum.tenants.wire import tenant_body
from fulcrum.transports.rest.auth import allowed, services_of
from fulcrum.transports.rest.bodies import StrictBody


class LimitsOut(BaseModel):
    per_second: float
    burst: int
    key_per_second: float
    key_burst: int


class TenantOut(BaseModel):
    id: str
    name: str
    status: str
    created_at: dt.datetime
    plan: str
    limits: LimitsOut  # the tenant's ceilings: its plan's, or the custom ones set for it
    custom_limits: bool


class SetPlanIn(StrictBody):
    plan: str


class SetLimitsIn(StrictBody):
    """The ceilings to set; a field left out is unchanged, null gives it back to the plan."""

    per_second: float | None = None
    burst: int | None = None
    key_per_second: float | None = None
    key_burst: int | None = None


class CreateTenantIn(StrictBody):
    name: str
    owner_user_id: str | None = None


class CreateTenantOut(BaseModel):
    tenant: TenantOut
    owner_api_key: str


class TenantPage(BaseModel):
    tenants: list[TenantOut]
    next_page_token: str


def _tenant(value: Tenant) -> TenantOut:
    return TenantOut.model_validate(tenant_body(value))


router = APIRouter(prefix="/v1/tenants", tags=["tenants"])


@router.post("", status_code=201)
async def create_tenant(
    body: CreateTenantIn, request: Request, who: Annotated[Principal, allowed(ops.CREATE)]
) -> CreateTenantOut:
    tenant, issued = await services_of(request).tenants.create(
        who, name=body.name, owner_user_id=body.owner_user_id
    )
    return CreateTenantOut(tenant=_tenant(tenant), owner_api_key=issued.secret)


@router.get("")
async def list_tenants(
    request: Request,
    who: Annotated[Principal, allowed(ops.LIST)],
    page_size: int = 0,
    page_token: str = "",
) -> TenantPage:
    tenants, token = await services_of(request).tenants.list(who, size=page_size, token=page_token)
    return TenantPage(tenants=[_tenant(t) for t in tenants], next_page_token=token)


@router.get("/{tenant_id}")
async def get_tenant(
    tenant_id: str, request: Request, who: Annotated[Principal, allowed(ops.GET)]
) -> TenantOut:
    return _tenant(await services_of(request).tenants.get(who, tenant_id))


@router.post("/{tenant_id}/suspend")
async def suspend_tenant(
    tenant_id: str, request: Request, who: Annotated[Principal, allowed(ops.SET_STATUS)]
) -> TenantOut:
    tenant = await services_of(request).tenants.set_status(who, tenant_id, TenantStatus.SUSPENDED)
    return _tenant(tenant)


@router.post("/{tenant_id}/resume")
async def resume_tenant(
    tenant_id: str, request: Request, who: Annotated[Principal, allowed(ops.SET_STATUS)]
) -> TenantOut:
    tenant = await services_of(request).tenants.set_status(who, tenant_id, TenantStatus.ACTIVE)
    return _tenant(tenant)


@router.post("/{tenant_id}/plan")
async def set_tenant_plan(
    tenant_id: str,
    body: SetPlanIn,
    request: Request,
    who: Annotated[Principal, allowed(ops.SET_PLAN)],
) -> TenantOut:
    return _tenant(await services_of(request).tenants.set_plan(who, tenant_id, body.plan))


@router.patch("/{tenant_id}/limits")
async def set_tenant_limits(
    tenant_id: str,
    body: SetLimitsIn,
    request: Request,
    who: Annotated[Principal, allowed(ops.SET_LIMITS)],
) -> TenantOut:
    limits = body.model_dump(exclude_unset=True)
    return _tenant(await services_of(request).tenants.set_limits(who, tenant_id, limits))
