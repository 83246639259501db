"""Uvicorn embedded in a process that owns its own signal handling, with TLS, a bound on
open connections and a deadline for request headers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable, Generator
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves SIGINT/SIGTERM to the host process, and bounds the
    TLS handshake.

    Stock uvicorn captures the signals and re-raises them after it exits, which would
    kill the process before the gRPC server and the connection pools are closed.
    """

    handshake_timeout: float = 10.0

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()
        """Set once startup has its listeners up (a supervisor is told only then)."""

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
        if not self.should_exit:
            self.listening.set()


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """HTTP/1.1 (httptools) that closes a connection whose client does not finish a
    request's headers within ``header_timeout`` seconds of connecting (or of its previous
    answer).

    Uvicorn has no such deadline: its keep-alive timer restarts on every byte, so a client
    trickling one header byte at a time would hold its connection (and a slot of the
    connection limit) for as long as it likes. This deadline is armed once and not moved by
    data; only complete headers disarm it.
    """

    header_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A pipelined request already had its headers; otherwise the next one starts now.
        if not self.pipeline and not self.transport.is_closing():
            self._arm()

    def _arm(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _expire(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
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
