"""``fulcrum worker``: holds its JetStream connection and reports health over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from fastapi import FastAPI

from fulcrum.kit.config import Service, Settings
from fulcrum.kit.logging import get_logger
from fulcrum.runtime import Resources
from fulcrum.transports.rest import health
from fulcrum.transports.rest.server import embedded_server

log = get_logger(__name__)


def create_health_app(resources: Resources) -> FastAPI:
    app = FastAPI(title="Fulcrum worker", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.resources = resources
    app.include_router(health.router)
    return app


async def run_worker(settings: Settings) -> None:
    resources = Resources(settings, Service.WORKER)
    await resources.open()
    http = embedded_server(
        create_health_app(resources), settings.api_host, settings.worker_health_port
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    http_task = asyncio.create_task(http.serve())
    log.info("worker.started", health=f"http://{settings.api_host}:{settings.worker_health_port}")
    await stop.wait()
    log.info("worker.stopping")
    http.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await http_task
    await resources.close()
    log.info("worker.stopped")
