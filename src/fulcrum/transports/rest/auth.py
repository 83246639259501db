"""HasScope for REST: every route depends on ``RequireScopes(...)``, the one enforcement
point: authentication, scopes, then the rate limit (whose headers go on every answer)."""

from __future__ import annotations

import structlog
from fastapi import Request, Response

from fulcrum.auth.principal import Principal
from fulcrum.auth.scopes import Scope
from fulcrum.container import Services

TENANT_HEADER = "x-fulcrum-tenant"


class RequireScopes:
    """A FastAPI dependency that authenticates the caller and checks their scopes.

    ``user_only``: the route serves a signed-in user outside any tenant (their own
    invitations); such a route declares user scopes only, and no other route can be
    reached by that user principal."""

    def __init__(self, *scopes: Scope, user_only: bool = False) -> None:
        if not scopes:
            raise ValueError("a route must declare at least one scope")
        self.scopes = scopes
        self.user_only = user_only

    async def __call__(self, request: Request, response: Response) -> Principal:
        services = services_of(request)
        principal = await services.authenticator.authenticate(
            request.headers.get("authorization"),
            request.headers.get(TENANT_HEADER),
            user_only=self.user_only,
        )
        tenant = str(principal.tenant_id) if principal.tenant_id else None
        request.state.tenant_id = tenant
        structlog.contextvars.bind_contextvars(tenant_id=tenant)
        principal.require(*self.scopes)
        decision = await services.rate_limiter.check(principal)
        if decision is not None:
            response.headers.update(decision.headers())
        return principal


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
