"""``fulcrum api`` on every core: a supervisor and ``FULCRUM_API_PROCESSES`` serving processes
(each one ``serve.serve_api``) sharing the REST and gRPC ports.

REST: the supervisor binds the listening socket once and every process accepts from it
(``pass_fds``). One accept queue means a process that dies loses none of the connections
still queued (with SO_REUSEPORT each process has its own queue, reset when it dies), a
process that is busy or restarting takes no new connection while the others are free, and
the port stays held, by the supervisor, between restarts. gRPC cannot adopt a socket, so
each process binds the port itself with SO_REUSEPORT (the kernel spreads connections by
their addresses), and the supervisor first checks that no other process holds it: sockets
of the same user with SO_REUSEPORT would otherwise share the port silently, with a stale
server among them.

Before any process starts, the supervisor checks what would make them all fail, so the
refusal names it: the API's certificate, and the three ports. Metrics: each process writes
its values to the supervisor's multiprocess directory, and the supervisor serves their sum
on the one metrics port (``observability/multiprocess.py``). It opens no connection to a
data store; readiness (``/readyz``, gRPC health) is each serving process's own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

from prometheus_client import start_http_server

from fulcrum.kit.config import Settings
from fulcrum.kit.errors import ConfigurationError
from fulcrum.kit.logging import get_logger
from fulcrum.observability.multiprocess import ENV, MetricsDirectory
from fulcrum.serving.supervisor import Supervisor
from fulcrum.transports.tls import api_certificate

log = get_logger(__name__)

# Under the 15 s that `fulcrum up` and the tests give the whole API to stop: the serving
# processes drain first (gRPC's grace is 5 s), then the supervisor kills the late ones.
STOP_GRACE_SECONDS = 10.0
BACKLOG = 2048  # uvicorn's default, which a single process listens with


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def bind_rest(host: str, port: int) -> socket.socket:
    """The REST listening socket, for every serving process."""
    try:
        return socket.create_server((host, port), family=_family(host), backlog=BACKLOG)
    except OSError as exc:
        raise ConfigurationError(
            f"the REST port {host}:{port} (FULCRUM_HTTP_PORT) cannot be bound: {exc.strerror}"
        ) from exc


def ensure_free(host: str, port: int, what: str, setting: str) -> None:
    """Bind ``port`` without SO_REUSEPORT, then let it go: this fails if any socket holds it,
    one that would share it (SO_REUSEPORT) included."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigurationError(
                f"the {what} port {host}:{port} ({setting}) cannot be bound: {exc.strerror}"
            ) from exc


async def supervise_api(settings: Settings) -> str | None:
    """Serve until SIGINT or SIGTERM (None), or until the processes cannot start (why)."""
    api_certificate(settings)
    listener = bind_rest(settings.api_host, settings.http_port)
    directory: MetricsDirectory | None = None
    try:
        ensure_free(settings.api_host, settings.grpc_port, "gRPC", "FULCRUM_GRPC_PORT")
        directory = MetricsDirectory()
        try:
            metrics, _ = start_http_server(
                settings.metrics_port, addr=settings.api_host, registry=directory.registry()
            )
        except OSError as exc:
            raise ConfigurationError(
                f"the metrics port {settings.api_host}:{settings.metrics_port} "
                f"(FULCRUM_METRICS_PORT) cannot be bound: {exc.strerror}"
            ) from exc
        try:
            return await _supervise(settings, listener, directory)
        finally:
            metrics.shutdown()
    finally:
        listener.close()
        if directory:
            directory.remove()


async def _supervise(
    settings: Settings, listener: socket.socket, directory: MetricsDirectory
) -> str | None:
    def command(slot: int, lifeline_fd: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "fulcrum.cli",
            "api-process",
            "--slot",
            str(slot),
            "--listen-fd",
            str(listener.fileno()),
            "--lifeline-fd",
            str(lifeline_fd),
        ]

    supervisor = Supervisor(
        settings.api_processes,
        command,
        env={**os.environ, ENV: str(directory.path)},
        pass_fds=(listener.fileno(),),
        stop_grace=STOP_GRACE_SECONDS,
        on_exit=directory.process_died,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, supervisor.stop)
    log.info(
        "api.supervising",
        processes=settings.api_processes,
        pid=os.getpid(),
        grpc=f"{settings.api_host}:{settings.grpc_port}",
        http=f"{settings.api_host}:{settings.http_port}",
        metrics=f"{settings.api_host}:{settings.metrics_port}",
    )
    reason = await supervisor.run()
    log.info("api.stopped", gave_up=reason is not None)
    return reason
