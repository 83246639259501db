"""The gRPC server: Fulcrum services behind the auth interceptor, health, and reflection
(off in production unless FULCRUM_GRPC_REFLECTION=true)."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from fulcrum.container import Services
from fulcrum.kit.logging import get_logger
from fulcrum.pb.v1 import (
    api_keys_pb2,
    api_keys_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    decisions_pb2,
    decisions_pb2_grpc,
    invitations_pb2,
    invitations_pb2_grpc,
    members_pb2,
    members_pb2_grpc,
    policies_pb2,
    policies_pb2_grpc,
    settings_pb2,
    settings_pb2_grpc,
    tenants_pb2,
    tenants_pb2_grpc,
)
from fulcrum.runtime import Resources
from fulcrum.transports.grpc.audit import AuditServicer
from fulcrum.transports.grpc.decisions import DecisionServicer, PolicyServicer, SettingsServicer
from fulcrum.transports.grpc.identity import (
    ApiKeyServicer,
    InvitationServicer,
    MemberServicer,
    TenantServicer,
)
from fulcrum.transports.grpc.interceptor import AuthInterceptor

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
        interceptors=[AuthInterceptor(services.authenticator, services.rate_limiter)],
        maximum_concurrent_rpcs=s.grpc_max_concurrent_rpcs,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", 4 * MAX_MESSAGE_BYTES),
            ("grpc.max_concurrent_streams", MAX_STREAMS_PER_CONNECTION),
            # A connection that has carried no call for this long is closed.
            ("grpc.max_connection_idle_ms", CONNECTION_IDLE_MS),
            # A client must finish the TLS and HTTP/2 handshakes within this.
            ("grpc.server_handshake_timeout_ms", int(s.http_header_timeout_seconds * 1000)),
        ],
    )
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    tenants_pb2_grpc.add_TenantServiceServicer_to_server(TenantServicer(services), server)
    members_pb2_grpc.add_MemberServiceServicer_to_server(MemberServicer(services), server)
    invitations_pb2_grpc.add_InvitationServiceServicer_to_server(
        InvitationServicer(services), server
    )
    api_keys_pb2_grpc.add_ApiKeyServiceServicer_to_server(ApiKeyServicer(services), server)
    policies_pb2_grpc.add_PolicyServiceServicer_to_server(PolicyServicer(services), server)
    decisions_pb2_grpc.add_DecisionServiceServicer_to_server(DecisionServicer(services), server)
    settings_pb2_grpc.add_SettingsServiceServicer_to_server(SettingsServicer(services), server)
    audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(services), server)
    service_names = [
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        tenants_pb2.DESCRIPTOR.services_by_name["TenantService"].full_name,
        members_pb2.DESCRIPTOR.services_by_name["MemberService"].full_name,
        invitations_pb2.DESCRIPTOR.services_by_name["InvitationService"].full_name,
        api_keys_pb2.DESCRIPTOR.services_by_name["ApiKeyService"].full_name,
        policies_pb2.DESCRIPTOR.services_by_name["PolicyService"].full_name,
        decisions_pb2.DESCRIPTOR.services_by_name["DecisionService"].full_name,
        settings_pb2.DESCRIPTOR.services_by_name["SettingsService"].full_name,
        audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name,
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
