"""Redis clients with the service's client certificate."""

from __future__ import annotations

import redis.asyncio as aioredis

from fulcrum.kit.config import Service, Settings
from fulcrum.kit.tls import ClientTLS


def redis_client(settings: Settings, service: Service, *, timeout: float = 2.0) -> aioredis.Redis:
    if not settings.tls:
        return aioredis.Redis(
            host=settings.redis_host,
            port=settings.redis_port,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
    tls = ClientTLS.for_service(settings, service)
    return aioredis.Redis(
        host=settings.redis_host,
        port=settings.redis_port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        ssl=True,
        ssl_ca_certs=str(tls.ca_file),
        ssl_certfile=str(tls.cert_file),
        ssl_keyfile=str(tls.key_file),
        ssl_cert_reqs="required",
    )
