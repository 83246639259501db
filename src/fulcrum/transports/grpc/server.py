"""The gRPC server: health (tracking readiness) and reflection."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from fulcrum.kit.logging import get_logger
from fulcrum.runtime import Resources

log = get_logger(__name__)

HEALTH_INTERVAL_SECONDS = 1.0


def create_server(resources: Resources) -> tuple[grpc.aio.Server, HealthServicer]:
    server = grpc.aio.server()
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    service_names = [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
    reflection.enable_server_reflection([*service_names, reflection.SERVICE_NAME], server)
    s = resources.settings
    server.add_insecure_port(f"{s.api_host}:{s.grpc_port}")
    return server, health_servicer


async def track_readiness(resources: Resources, servicer: HealthServicer) -> None:
    """Keep the overall health status equal to readiness: SERVING only when all deps answer."""
    last: int | None = None
    while True:
        checks = await resources.readiness()
        down = [name for name, reason in checks.items() if reason]
        status = (
            health_pb2.HealthCheckResponse.NOT_SERVING
            if down
            else health_pb2.HealthCheckResponse.SERVING
        )
        if status != last:
            log.info("grpc.health", serving=not down, unavailable=down)
            await servicer.set("", status)
            last = status
        await asyncio.sleep(HEALTH_INTERVAL_SECONDS)
