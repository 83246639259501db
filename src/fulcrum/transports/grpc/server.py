"""The gRPC server: Fulcrum services behind the auth interceptor, health, and reflection
(off in production unless FULCRUM_GRPC_REFLECTION=true)."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from fulcrum.container import Services
from fulcrum.kit.logging import AccessSample, get_logger
from fulcrum.runtime import Resources
from fulcrum.transports.grpc import (
    api_keys,
    audit,
    decisions,
    invitations,
    members,
    policies,
    settings,
    tenants,
)
from fulcrum.transports.grpc.auth import Gate
from fulcrum.transports.grpc.interceptor import GuardInterceptor

# The servicer modules: each holds one service's RPCs, the operation each serves, and how
# to register it.
DOORS = (tenants, members, invitations, api_keys, policies, decisions, settings, audit)
RPC_OPERATIONS = {rpc: op for door in DOORS for rpc, op in door.OPERATIONS.items()}

log = get_logger(__name__)

HEALTH_INTERVAL_SECONDS = 1.0


MAX_MESSAGE_BYTES = 1 << 20
MAX_STREAMS_PER_CONNECTION = 100
CONNECTION_IDLE_MS = 5 * 60 * 1000


def create_server(
    resources: Resources, services: Services, credentials: grpc.ServerCredentials | None
) -> tuple[grpc.aio.Server, HealthServicer]:
    """The server on its port: TLS with ``credentials``, plaintext when None (behind a
    TLS-terminating proxy)."""
    s = resources.settings
    server = grpc.aio.server(
        interceptors=[
            GuardInterceptor(
                Gate(services.authenticator, services.rate_limiter, RPC_OPERATIONS),
                AccessSample(s.access_log_share),
            )
        ],
        maximum_concurrent_rpcs=s.grpc_max_concurrent_rpcs,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", 4 * MAX_MESSAGE_BYTES),
            ("grpc.max_concurrent_streams", MAX_STREAMS_PER_CONNECTION),
            # A connection that has carried no call for this long is closed.
            ("grpc.max_connection_idle_ms", CONNECTION_IDLE_MS),
            # A client must finish the TLS and HTTP/2 handshakes within this.
            ("grpc.server_handshake_timeout_ms", int(s.http_header_timeout_seconds * 1000)),
            # The serving processes of one supervised `fulcrum api` each bind the port and
            # the kernel spreads connections over them (the default on Linux, made explicit:
            # they depend on it). The supervisor first checks that nobody else holds it.
            ("grpc.so_reuseport", 1),
        ],
    )
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for door in DOORS:
        door.register(server, services)
    service_names = [
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        *(door.SERVICE for door in DOORS),
    ]
    if s.reflection_enabled:
        reflection.enable_server_reflection([*service_names, reflection.SERVICE_NAME], server)
    address = f"{s.api_host}:{s.grpc_port}"
    if credentials is None:
        server.add_insecure_port(address)
    else:
        server.add_secure_port(address, credentials)
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
