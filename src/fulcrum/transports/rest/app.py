"""The REST application: routers for every domain under ``/v1`` plus health."""

from __future__ import annotations

from fastapi import FastAPI

from fulcrum import __version__
from fulcrum.runtime import Resources
from fulcrum.transports.rest import health


def create_app(resources: Resources) -> FastAPI:
    app = FastAPI(title="Fulcrum", version=__version__, docs_url="/docs", redoc_url=None)
    app.state.resources = resources
    app.include_router(health.router)
    return app
