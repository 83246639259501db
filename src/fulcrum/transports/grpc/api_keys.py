"""gRPC door onto a tenant's API keys."""

from __future__ import annotations

from typing import Any

import grpc

from fulcrum.api_keys import operations as ops
from fulcrum.api_keys.wire import api_key_message
from fulcrum.container import Services
from fulcrum.kit.timestamps import from_timestamp
from fulcrum.pb.v1 import (
    api_keys_pb2,
    api_keys_pb2_grpc,
)
from fulcrum.transports.grpc.auth import current_principal, rpcs

Context = grpc.aio.ServicerContext[Any, Any]


class ApiKeyServicer(api_keys_pb2_grpc.ApiKeyServiceServicer):
    def __init__(self, services: Services) -> None:
        self._keys = services.api_keys

    async def CreateApiKey(  # noqa: N802
        self, request: api_keys_pb2.CreateApiKeyRequest, context: Context
    ) -> api_keys_pb2.CreateApiKeyResponse:
        expires = (
            from_timestamp(request.expire_time, "expire_time")
            if request.HasField("expire_time")
            else None
        )
        issued = await self._keys.create(
            current_principal.get(),
            name=request.name,
            scopes=list(request.scopes),
            expires_at=expires,
            service=request.service,
        )
        return api_keys_pb2.CreateApiKeyResponse(
            api_key=api_key_message(issued.key), secret=issued.secret
        )

    async def GetApiKey(  # noqa: N802
        self, request: api_keys_pb2.GetApiKeyRequest, context: Context
    ) -> api_keys_pb2.GetApiKeyResponse:
        key = await self._keys.get(current_principal.get(), request.api_key_id)
        return api_keys_pb2.GetApiKeyResponse(api_key=api_key_message(key))

    async def ListApiKeys(  # noqa: N802
        self, request: api_keys_pb2.ListApiKeysRequest, context: Context
    ) -> api_keys_pb2.ListApiKeysResponse:
        keys, token = await self._keys.list(
            current_principal.get(), size=request.page_size, token=request.page_token
        )
        return api_keys_pb2.ListApiKeysResponse(
            api_keys=[api_key_message(k) for k in keys], next_page_token=token
        )

    async def RevokeApiKey(  # noqa: N802
        self, request: api_keys_pb2.RevokeApiKeyRequest, context: Context
    ) -> api_keys_pb2.RevokeApiKeyResponse:
        key = await self._keys.revoke(current_principal.get(), request.api_key_id)
        return api_keys_pb2.RevokeApiKeyResponse(api_key=api_key_message(key))

    async def RotateApiKey(  # noqa: N802
        self, request: api_keys_pb2.RotateApiKeyRequest, context: Context
    ) -> api_keys_pb2.RotateApiKeyResponse:
        until = (
            from_timestamp(request.old_key_valid_until, "old_key_valid_until")
            if request.HasField("old_key_valid_until")
            else None
        )
        issued, previous = await self._keys.rotate(
            current_principal.get(), request.api_key_id, old_valid_until=until
        )
        return api_keys_pb2.RotateApiKeyResponse(
            api_key=api_key_message(issued.key),
            secret=issued.secret,
            previous_api_key=api_key_message(previous),
        )


SERVICE = api_keys_pb2.DESCRIPTOR.services_by_name["ApiKeyService"].full_name
OPERATIONS = rpcs(
    SERVICE,
    {
        "CreateApiKey": ops.CREATE,
        "GetApiKey": ops.GET,
        "ListApiKeys": ops.LIST,
        "RevokeApiKey": ops.REVOKE,
        "RotateApiKey": ops.ROTATE,
    },
)


def register(server: grpc.aio.Server, services: Services) -> None:
    api_keys_pb2_grpc.add_ApiKeyServiceServicer_to_server(ApiKeyServicer(services), server)
