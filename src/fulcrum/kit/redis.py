"""Redis clients with the service's client certificate and its own ACL user.

Redis sits on the request path (rate limits), so a failing Redis must fail fast: short
timeouts and a single quick retry, after which callers fall back (see fulcrum.ratelimit).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from fulcrum.kit.config import Service, Settings
from fulcrum.kit.secrets import Secrets
from fulcrum.kit.tls import ClientTLS


def redis_user(service: Service) -> str:
    """The Redis ACL user of ``service`` (the devstack's ACL and the clients agree on it)."""
    return f"fulcrum-{service.value}"


def redis_auth(settings: Settings, service: Service) -> dict[str, str]:
    """Username and password for ``service``, when its ``redis_password`` secret exists."""
    secret = Secrets(settings, service).source("redis_password")
    if secret is None:
        return {}
    return {"username": redis_user(service), "password": secret.get().decode()}


def redis_client(settings: Settings, service: Service, *, timeout: float = 0.5) -> aioredis.Redis:
    options: dict[str, Any] = {
        "host": settings.redis_host,
        "port": settings.redis_port,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
        **redis_auth(settings, service),
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
