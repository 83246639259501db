"""HasScope for REST: every route depends on ``RequireScopes(...)``, the one enforcement point."""

from __future__ import annotations

from fastapi import Request

from fulcrum.auth.principal import Principal
from fulcrum.auth.scopes import Scope
from fulcrum.container import Services

TENANT_HEADER = "x-fulcrum-tenant"


class RequireScopes:
    """A FastAPI dependency that authenticates the caller and checks their scopes."""

    def __init__(self, *scopes: Scope) -> None:
        if not scopes:
            raise ValueError("a route must declare at least one scope")
        self.scopes = scopes

    async def __call__(self, request: Request) -> Principal:
        principal = await services_of(request).authenticator.authenticate(
            request.headers.get("authorization"), request.headers.get(TENANT_HEADER)
        )
        principal.require(*self.scopes)
        return principal


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
