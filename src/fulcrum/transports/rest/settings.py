"""``/v1/settings``: the caller's tenant's settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from fulcrum.auth.principal import Principal
from fulcrum.auth.scopes import Scope
from fulcrum.transports.rest.auth import RequireScopes, services_of
from fulcrum.transports.rest.decision_schemas import SettingsIn, SettingsOut

router = APIRouter(prefix="/v1/settings", tags=["settings"])
Reader = Annotated[Principal, Depends(RequireScopes(Scope.SETTINGS_READ))]
Manager = Annotated[Principal, Depends(RequireScopes(Scope.SETTINGS_MANAGE))]


@router.get("")
async def get_settings(request: Request, who: Reader) -> SettingsOut:
    return SettingsOut.of(await services_of(request).settings.get(who))


@router.patch("")
async def update_settings(body: SettingsIn, request: Request, who: Manager) -> SettingsOut:
    rate_limit = body.rate_limit.model_dump(exclude_unset=True) if body.rate_limit else None
    updated = await services_of(request).settings.update(
        who, default_action=body.default_action, rate_limit=rate_limit
    )
    return SettingsOut.of(updated)
