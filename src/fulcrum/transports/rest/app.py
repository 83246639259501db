"""The REST application: routers for every domain under ``/v1`` plus health."""

from __future__ import annotations

from fastapi import FastAPI

from fulcrum import __version__
from fulcrum.container import Services
from fulcrum.runtime import Resources
from fulcrum.transports.rest import (
    api_keys,
    audit,
    decisions,
    errors,
    health,
    invitations,
    members,
    policies,
    settings,
    tenants,
)
from fulcrum.transports.rest.observe import observe


def create_app(resources: Resources, services: Services) -> FastAPI:
    app = FastAPI(title="Fulcrum", version=__version__, docs_url="/docs", redoc_url=None)
    app.state.resources = resources
    app.state.services = services
    errors.install(app)

    app.middleware("http")(observe)
    app.include_router(health.router)
    app.include_router(tenants.router)
    app.include_router(members.router)
    app.include_router(invitations.router)
    app.include_router(api_keys.router)
    app.include_router(policies.router)
    app.include_router(decisions.router)
    app.include_router(settings.router)
    app.include_router(audit.router)
    return app
