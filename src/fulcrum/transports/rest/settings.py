"""``/v1/settings``: the caller's tenant's settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel

from fulcrum.auth.principal import Principal
from fulcrum.tenants import operations as ops
from fulcrum.tenants.settings import TenantSettings
from fulcrum.tenants.wire import settings_body
from fulcrum.transports.rest.auth import allowed, services_of
from fulcrum.transports.rest.bodies import StrictBody


class RateLimitOut(BaseModel):
    per_second: float
    burst: int
    key_per_second: float
    key_burst: int


class SettingsOut(BaseModel):
    default_action: str
    plan: str
    rate_limit: RateLimitOut


class RateLimitIn(StrictBody):
    per_second: float | None = None
    burst: int | None = None
    key_per_second: float | None = None
    key_burst: int | None = None


class SettingsIn(StrictBody):
    default_action: str | None = None
    rate_limit: RateLimitIn | None = None


def _settings(value: TenantSettings) -> SettingsOut:
    return SettingsOut.model_validate(settings_body(value))


router = APIRouter(prefix="/v1/settings", tags=["settings"])


@router.get("")
async def get_settings(
    request: Request, who: Annotated[Principal, allowed(ops.GET_SETTINGS)]
) -> SettingsOut:
    return _settings(await services_of(request).settings.get(who))


@router.patch("")
async def update_settings(
    body: SettingsIn, request: Request, who: Annotated[Principal, allowed(ops.UPDATE_SETTINGS)]
) -> SettingsOut:
    rate_limit = body.rate_limit.model_dump(exclude_unset=True) if body.rate_limit else None
    updated = await services_of(request).settings.update(
        who, default_action=body.default_action, rate_limit=rate_limit
    )
    return _settings(updated)
