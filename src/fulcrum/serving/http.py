"""Uvicorn embedded in a process that owns its own signal handling, with TLS, a bound on
open connections and a deadline for request headers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable, Generator
from typing import Any

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves SIGINT/SIGTERM to the host process, and bounds the
    TLS handshake.

    Stock uvicorn captures the signals and re-raises them after it exits, which would
    kill the process before the gRPC server and the connection pools are closed.
    """

    handshake_timeout: float = 10.0

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # A client that connects and never sends its ClientHello would hold the connection
        # for asyncio's default 60 s, before the protocol (and its header deadline) exists.
        # Uvicorn does not pass a handshake timeout to create_server: add it, for this call.
        loop = asyncio.get_running_loop()
        create_server = loop.create_server
        timeout = self.handshake_timeout

        async def with_handshake_timeout(*args: Any, **kwargs: Any) -> asyncio.Server:
            if kwargs.get("ssl") is not None:
                kwargs["ssl_handshake_timeout"] = timeout
            return await create_server(*args, **kwargs)

        loop.create_server = with_handshake_timeout  # type: ignore[method-assign]
        try:
            await super().startup(sockets)
        finally:
            del loop.create_server


class HeaderDeadlineProtocol(H11Protocol):
    """HTTP/1.1 that closes a connection whose client does not finish a request's headers
    within ``header_timeout`` seconds of connecting (or of its previous answer).

    Uvicorn has no such deadline: a client trickling one header byte at a time would hold
    its connection (and a slot of the connection limit) for as long as it likes.
    """

    header_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._arm()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()

    def _arm(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _expire(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def embedded_server(
    app: Callable[..., Any] | FastAPI,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    max_connections: int = 100,
    header_timeout: float = 10.0,
) -> EmbeddedServer:
    protocol = type("Protocol", (HeaderDeadlineProtocol,), {"header_timeout": header_timeout})
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        log_config=None,
        access_log=False,
        server_header=False,
        limit_concurrency=max_connections,
        ssl_context_factory=(lambda *_: ssl_context) if ssl_context else None,
    )
    server = EmbeddedServer(config)
    server.handshake_timeout = header_timeout
    return server
