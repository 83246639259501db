"""``/v1/api-keys``: the caller's tenant's API keys. Secrets appear only in create/rotate."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel

from fulcrum.api_keys import operations as ops
from fulcrum.api_keys.models import ApiKey
from fulcrum.api_keys.wire import api_key_body
from fulcrum.auth.principal import Principal
from fulcrum.transports.rest.auth import allowed, services_of
from fulcrum.transports.rest.bodies import StrictBody


class ApiKeyOut(BaseModel):
    id: str
    name: str
    scopes: list[str]
    created_at: dt.datetime
    created_by: str
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None
    rotated_from: str | None
    owner: str | None  # the member the key belongs to; null for a service key
    service: bool


class CreateApiKeyIn(StrictBody):
    name: str
    scopes: list[str]
    expires_at: dt.datetime | None = None
    # A tenant service key outlives every member; only an owner creates one.
    service: bool = False


class CreateApiKeyOut(BaseModel):
    api_key: ApiKeyOut
    secret: str


class RotateApiKeyIn(StrictBody):
    old_key_valid_until: dt.datetime | None = None


class RotateApiKeyOut(BaseModel):
    api_key: ApiKeyOut
    secret: str
    previous_api_key: ApiKeyOut


class ApiKeyPage(BaseModel):
    api_keys: list[ApiKeyOut]
    next_page_token: str


def _api_key(value: ApiKey) -> ApiKeyOut:
    return ApiKeyOut.model_validate(api_key_body(value))


router = APIRouter(prefix="/v1/api-keys", tags=["api-keys"])


@router.post("", status_code=201)
async def create_api_key(
    body: CreateApiKeyIn, request: Request, who: Annotated[Principal, allowed(ops.CREATE)]
) -> CreateApiKeyOut:
    issued = await services_of(request).api_keys.create(
        who, name=body.name, scopes=body.scopes, expires_at=body.expires_at, service=body.service
    )
    return CreateApiKeyOut(api_key=_api_key(issued.key), secret=issued.secret)


@router.get("")
async def list_api_keys(
    request: Request,
    who: Annotated[Principal, allowed(ops.LIST)],
    page_size: int = 0,
    page_token: str = "",
) -> ApiKeyPage:
    keys, token = await services_of(request).api_keys.list(who, size=page_size, token=page_token)
    return ApiKeyPage(api_keys=[_api_key(k) for k in keys], next_page_token=token)


@router.get("/{api_key_id}")
async def get_api_key(
    api_key_id: str, request: Request, who: Annotated[Principal, allowed(ops.GET)]
) -> ApiKeyOut:
    return _api_key(await services_of(request).api_keys.get(who, api_key_id))


@router.post("/{api_key_id}/revoke")
async def revoke_api_key(
    api_key_id: str, request: Request, who: Annotated[Principal, allowed(ops.REVOKE)]
) -> ApiKeyOut:
    return _api_key(await services_of(request).api_keys.revoke(who, api_key_id))


@router.post("/{api_key_id}/rotate")
async def rotate_api_key(
    api_key_id: str,
    request: Request,
    who: Annotated[Principal, allowed(ops.ROTATE)],
    body: RotateApiKeyIn | None = None,
) -> RotateApiKeyOut:
    issued, previous = await services_of(request).api_keys.rotate(
        who, api_key_id, old_valid_until=body.old_key_valid_until if body else None
    )
    return RotateApiKeyOut(
        api_key=_api_key(issued.key),
        secret=issued.secret,
        previous_api_key=_api_key(previous),
    )
