"""Redis clients with the service's client certificate.

Redis sits on the request path (rate limits), so a failing Redis must fail fast: short
timeouts and a single quick retry, after which callers fall back (see fulcrum.ratelimit).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from fulcrum.kit.config import Service, Settings
from fulcrum.kit.tls import ClientTLS


def redis_client(settings: Settings, service: Service, *, timeout: float = 0.5) -> aioredis.Redis:
    options: dict[str, Any] = {
        "host": settings.redis_host,
        "port": settings.redis_port,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
    }
    if settings.tls:
        tls = ClientTLS.for_service(settings, service)
        options |= {
            "ssl": True,
            "ssl_ca_certs": str(tls.ca_file),
            "ssl_certfile": str(tls.cert_file),
            "ssl_keyfile": str(tls.key_file),
            "ssl_cert_reqs": "required",
        }
    return aioredis.Redis(**options)
