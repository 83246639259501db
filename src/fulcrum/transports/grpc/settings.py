"""gRPC door onto the tenant's settings."""

from __future__ import annotations

from typing import Any

import grpc

from fulcrum.container import Services
from fulcrum.pb.v1 import (
    settings_pb2,
    settings_pb2_grpc,
)
from fulcrum.tenants import operations as ops
from fulcrum.tenants.wire import settings_message
from fulcrum.transports.grpc.auth import current_principal, rpcs

Context = grpc.aio.ServicerContext[Any, Any]


class SettingsServicer(settings_pb2_grpc.SettingsServiceServicer):
    def __init__(self, services: Services) -> None:
        self._settings = services.settings

    async def GetSettings(  # noqa: N802
        self, request: settings_pb2.GetSettingsRequest, context: Context
    ) -> settings_pb2.GetSettingsResponse:
        current = await self._settings.get(current_principal.get())
        return settings_pb2.GetSettingsResponse(settings=settings_message(current))

    async def UpdateSettings(  # noqa: N802
        self, request: settings_pb2.UpdateSettingsRequest, context: Context
    ) -> settings_pb2.UpdateSettingsResponse:
        rate_limit = (
            {
                name: getattr(request.rate_limit, name)
                for name in ("per_second", "burst", "key_per_second", "key_burst")
                if request.rate_limit.HasField(name)
            }
            if request.HasField("rate_limit")
            else None
        )
        updated = await self._settings.update(
            current_principal.get(),
            default_action=request.default_action or None,
            rate_limit=rate_limit,
        )
        return settings_pb2.UpdateSettingsResponse(settings=settings_message(updated))


SERVICE = settings_pb2.DESCRIPTOR.services_by_name["SettingsService"].full_name
OPERATIONS = rpcs(
    SERVICE,
    {
        "GetSettings": ops.GET_SETTINGS,
        "UpdateSettings": ops.UPDATE_SETTINGS,
    },
)


def register(server: grpc.aio.Server, services: Services) -> None:
    settings_pb2_grpc.add_SettingsServiceServicer_to_server(SettingsServicer(services), server)
