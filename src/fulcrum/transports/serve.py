"""``fulcrum api``: one process serving gRPC and REST over the same application layer, alone
or as one of the serving processes of a supervisor (``transports/supervise.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from dataclasses import dataclass

from prometheus_client import start_http_server

from fulcrum.container import build_services
from fulcrum.kit.config import Service, Settings
from fulcrum.kit.logging import get_logger
from fulcrum.runtime import Resources
from fulcrum.serving.http import embedded_server
from fulcrum.serving.lifeline import Lifeline
from fulcrum.transports.grpc.server import create_server, track_readiness
from fulcrum.transports.rest.app import create_app
from fulcrum.transports.tls import ReloadingTLS, api_certificate

log = get_logger(__name__)


async def reload_certificate(tls: ReloadingTLS) -> None:
    while True:
        await asyncio.sleep(tls.check_every)
        tls.refresh_rest()


@dataclass(frozen=True)
class Supervised:
    """What a serving process is handed by its supervisor: the REST socket it bound once for
    all of them, and the lifeline. Its metrics go to the supervisor's directory
    (``PROMETHEUS_MULTIPROC_DIR``), which the supervisor serves."""

    slot: int
    listener: socket.socket
    lifeline: Lifeline


async def serve_api(settings: Settings, supervised: Supervised | None = None) -> None:
    pair = api_certificate(settings)  # before anything starts: a refusal names the fix
    tls = ReloadingTLS(pair, settings.api_tls_reload_seconds) if pair else None
    stop = asyncio.Event()
    if supervised:
        supervised.lifeline.on_lost(stop.set)  # the supervisor is gone: stop, do not linger
    resources = Resources(settings, Service.API)
    services = build_services(settings, resources)
    await resources.open()
    services.start()
    if supervised is None:
        start_http_server(settings.metrics_port, addr=settings.api_host)
    grpc_server, health_servicer = create_server(
        resources, services, tls.grpc_credentials() if tls else None
    )
    app = create_app(
        resources,
        services,
        docs=settings.docs_enabled,
        cors_origins=settings.cors_origins,
        body_idle_timeout=settings.http_body_idle_timeout_seconds,
        access_log_share=settings.access_log_share,
    )
    http = embedded_server(
        app,
        settings.api_host,
        settings.http_port,
        ssl_context=tls.ssl_context if tls else None,
        max_connections=settings.http_max_connections,
        header_timeout=settings.http_header_timeout_seconds,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    await grpc_server.start()
    http_task = asyncio.create_task(
        http.serve(sockets=[supervised.listener] if supervised else None)
    )
    health_task = asyncio.create_task(track_readiness(resources, health_servicer))
    reload_task = asyncio.create_task(reload_certificate(tls)) if tls else None
    log.info(
        "api.started",
        grpc=f"{settings.api_host}:{settings.grpc_port}",
        http=f"{'https' if tls else 'http'}://{settings.api_host}:{settings.http_port}",
        tls=tls is not None,
    )
    if supervised:
        # Serving once uvicorn listens (or not at all: it failed, and we stop).
        listening = asyncio.create_task(http.listening.wait())
        await asyncio.wait({listening, http_task}, return_when=asyncio.FIRST_COMPLETED)
        listening.cancel()
        if http.listening.is_set():
            supervised.lifeline.serving()
    stopped = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({stopped, http_task}, return_when=asyncio.FIRST_COMPLETED)
    if http_task in done and not stop.is_set():
        log.error("api.http_exited")
    log.info("api.stopping")
    health_task.cancel()
    if reload_task:
        reload_task.cancel()
    http.should_exit = True
    await grpc_server.stop(grace=5)
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(http_task, health_task, return_exceptions=True)
    stopped.cancel()
    await services.stop()
    await resources.close()
    if supervised:
        supervised.lifeline.close()
    log.info("api.stopped")
