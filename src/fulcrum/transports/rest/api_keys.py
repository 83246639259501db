"""``/v1/api-keys``: the caller's tenant's API keys. Secrets appear only in create/rotate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from fulcrum.auth.principal import Principal
from fulcrum.auth.scopes import Scope
from fulcrum.transports.rest.auth import RequireScopes, services_of
from fulcrum.transports.rest.schemas import (
    ApiKeyOut,
    ApiKeyPage,
    CreateApiKeyIn,
    CreateApiKeyOut,
    RotateApiKeyIn,
    RotateApiKeyOut,
)

router = APIRouter(prefix="/v1/api-keys", tags=["api-keys"])
Reader = Annotated[Principal, Depends(RequireScopes(Scope.KEYS_READ))]
Manager = Annotated[Principal, Depends(RequireScopes(Scope.KEYS_MANAGE))]


@router.post("", status_code=201)
async def create_api_key(body: CreateApiKeyIn, request: Request, who: Manager) -> CreateApiKeyOut:
    issued = await services_of(request).api_keys.create(
        who, name=body.name, scopes=body.scopes, expires_at=body.expires_at, service=body.service
    )
    return CreateApiKeyOut(api_key=ApiKeyOut.of(issued.key), secret=issued.secret)


@router.get("")
async def list_api_keys(
    request: Request,
    who: Reader,
    page_size: Annotated[int, Query(ge=0, le=200)] = 0,
    page_token: Annotated[str, Query(max_length=512)] = "",
) -> ApiKeyPage:
    keys, token = await services_of(request).api_keys.list(who, size=page_size, token=page_token)
    return ApiKeyPage(api_keys=[ApiKeyOut.of(k) for k in keys], next_page_token=token)


@router.get("/{api_key_id}")
async def get_api_key(api_key_id: str, request: Request, who: Reader) -> ApiKeyOut:
    return ApiKeyOut.of(await services_of(request).api_keys.get(who, api_key_id))


@router.post("/{api_key_id}/revoke")
async def revoke_api_key(api_key_id: str, request: Request, who: Manager) -> ApiKeyOut:
    return ApiKeyOut.of(await services_of(request).api_keys.revoke(who, api_key_id))


@router.post("/{api_key_id}/rotate")
async def rotate_api_key(
    api_key_id: str, request: Request, who: Manager, body: RotateApiKeyIn | None = None
) -> RotateApiKeyOut:
    issued, previous = await services_of(request).api_keys.rotate(
        who, api_key_id, old_valid_until=body.old_key_valid_until if body else None
    )
    return RotateApiKeyOut(
        api_key=ApiKeyOut.of(issued.key),
        secret=issued.secret,
        previous_api_key=ApiKeyOut.of(previous),
    )
