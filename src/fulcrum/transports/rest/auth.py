"""HasScope for REST: every route depends on ``RequireScopes(...)``, the one enforcement
point: authentication, scopes, then the rate limit (whose headers go on every answer).

A route that answers many decisions in one call declares ``per_item=True`` and charges one
token per item itself, once its body is validated, with :func:`charge`."""

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
    reached by that user principal. ``per_item``: the route charges the rate limit itself,
    one token per item it carries (``charge``)."""

    def __init__(self, *scopes: Scope, user_only: bool = False, per_item: bool = False) -> None:
        if not scopes:
            raise ValueError("a route must declare at least one scope")
        self.scopes = scopes
        self.user_only = user_only
        self.per_item = per_item

    async def __call__(self, request: Request, response: Response) -> Principal:
        services = services_of(request)
        principal = await services.authenticator.authenticate(
            request.headers.get("authorization"),
            request.headers.get(TENANT_HEADER),
            user_only=self.user_only,
            client=request.client.host if request.client else None,
        )
        tenant = str(principal.tenant_id) if principal.tenant_id else None
        request.state.tenant_id = tenant
        structlog.contextvars.bind_contextvars(tenant_id=tenant)
        principal.require(*self.scopes)
        if not self.per_item:
            await charge(request, response, principal)
        return principal


async def charge(request: Request, response: Response, principal: Principal, cost: int = 1) -> None:
    """Charge ``cost`` tokens at once (all or none) and put the limit's headers on the answer."""
    decision = await services_of(request).rate_limiter.check(principal, cost)
    if decision is not None:
        response.headers.update(decision.headers())


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
