"""Uvicorn embedded in a process that owns its own signal handling."""

from __future__ import annotations

import contextlib
from collections.abc import Generator

import uvicorn
from fastapi import FastAPI


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves SIGINT/SIGTERM to the host process.

    Stock uvicorn captures the signals and re-raises them after it exits, which would
    kill the process before the gRPC server and the connection pools are closed.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def embedded_server(app: FastAPI, host: str, port: int) -> EmbeddedServer:
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, server_header=False
    )
    return EmbeddedServer(config)
