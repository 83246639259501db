"""``fulcrum worker``: chains JetStream events into each tenant's ledger, relays committed
changes, writes and anchors checkpoints and keeps partitions; health and metrics over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from fulcrum.audit.anchor_publisher import AnchorPublisher
from fulcrum.audit.checkpoints import CheckpointSigner, CheckpointVerifier
from fulcrum.audit.writer import LedgerWriter
from fulcrum.kit.config import Service, Settings
from fulcrum.kit.db import conninfo
from fulcrum.kit.logging import get_logger
from fulcrum.kit.secrets import Secrets
from fulcrum.runtime import Resources
from fulcrum.serving import health
from fulcrum.serving.http import embedded_server
from fulcrum.worker.consumer import LedgerConsumer
from fulcrum.worker.housekeeping import Housekeeper

log = get_logger(__name__)


def create_health_app(resources: Resources) -> FastAPI:
    app = FastAPI(title="Fulcrum worker", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.resources = resources
    app.include_router(health.router)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def tune_gc() -> None:
    """The worker allocates and drops a few dozen objects per event: at the default
    threshold (700) the cyclic collector would run every dozen or so events, about a tenth
    of the worker's time. What startup made lives for good: frozen, out of every collection."""
    gc.freeze()
    gc.set_threshold(50_000, 50, 50)


async def run_worker(settings: Settings) -> None:
    signer = CheckpointSigner(Secrets(settings, Service.WORKER).require("audit_signing_key").get())
    tune_gc()
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
    nats = await resources.wait_for_nats(stop)
    tasks: list[asyncio.Task[None]] = []
    if nats is not None:
        anchors = AnchorPublisher(nats, CheckpointVerifier([signer.public_key_pem()]))
        writer = LedgerWriter(
            resources.db,
            signer,
            checkpoint_every_records=settings.checkpoint_every_records,
            checkpoint_every_seconds=settings.checkpoint_every_seconds,
            committed=anchors.submit,
        )
        consumer = LedgerConsumer(nats, writer)
        housekeeper = Housekeeper(
            resources.db,
            nats,
            writer,
            anchors,
            listen_conninfo=conninfo(settings, Service.WORKER),
            retention_days=settings.decisions_retention_days,
        )
        tasks = [
            asyncio.create_task(consumer.run(stop)),
            asyncio.create_task(housekeeper.run(stop)),
            asyncio.create_task(anchors.run(stop)),
        ]
    await stop.wait()
    log.info("worker.stopping")
    for task in tasks:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
    http.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await http_task
    await resources.close()
    log.info("worker.stopped")
