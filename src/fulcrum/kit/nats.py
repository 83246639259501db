"""NATS connections with the service's client certificate."""

from __future__ import annotations

import logging
from typing import Any

import nats
from nats.aio.client import Client as NatsClient

from fulcrum.kit.config import Service, Settings
from fulcrum.kit.logging import get_logger
from fulcrum.kit.tls import ClientTLS

log = get_logger(__name__)


class _DropSslEofNoise(logging.Filter):
    """asyncio warns on every TLS close of a nats-py connection; the warning is harmless."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "eof_received() has no effect when using ssl" not in record.getMessage()


logging.getLogger("asyncio").addFilter(_DropSslEofNoise())


async def _log_error(exc: Exception) -> None:
    log.warning("nats.error", error=type(exc).__name__, detail=str(exc))


async def _ignore_error(_: Exception) -> None:
    return None


async def _log_disconnect() -> None:
    log.warning("nats.disconnected")


async def _log_reconnect() -> None:
    log.info("nats.reconnected")


def inbox_prefix(service: Service) -> str:
    """Each service gets its replies on its own prefix: NATS permissions then let a service
    subscribe to its replies and nobody else's."""
    return f"_INBOX_{service.value}"


async def connect_nats(
    settings: Settings,
    service: Service,
    *,
    connect_timeout: float = 2.0,
    retry: bool = True,
    quiet: bool = False,
) -> NatsClient:
    """Connect; with ``retry`` the client keeps reconnecting forever in the background."""
    options: dict[str, Any] = {
        "servers": [settings.nats_url],
        "name": f"fulcrum-{service.value}",
        "connect_timeout": connect_timeout,
        "allow_reconnect": retry,
        "max_reconnect_attempts": -1 if retry else 0,
        "reconnect_time_wait": 0.5,
        "inbox_prefix": inbox_prefix(service),
    }
    if not quiet:
        options |= {
            "error_cb": _log_error,
            "disconnected_cb": _log_disconnect,
            "reconnected_cb": _log_reconnect,
        }
    else:
        options["error_cb"] = _ignore_error
    if settings.tls:
        options["tls"] = ClientTLS.for_service(settings, service).ssl_context()
    return await nats.connect(**options)
