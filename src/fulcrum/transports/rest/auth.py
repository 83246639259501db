"""HasScope for REST: every route declares the operation it serves
(``who: Annotated[Principal, allowed(ops.X)]``, the operation from its domain's
``operations`` table); the :class:`Gate` middleware enforces it, before the route reads a
byte of the body.

FastAPI reads and parses a request's body before it runs the route's dependencies, so a
dependency that authenticates comes too late: an unauthenticated client could make the API
buffer and parse a large body. The gate therefore matches the route itself, finds its
declaration (collected once, at app creation), authenticates, checks the scopes and charges
the rate limit; the dependency only hands the admitted principal to the route. A route with
no declaration is refused (fail closed), except the public ones (health, docs).

A route whose operation is ``per_item`` answers many requests in one call: the gate
charges nothing, and the route charges one token per item itself, once its body is
validated, with :func:`charge` (all or none). A ``user_only`` operation serves a signed-in
user outside any tenant (their own invitations); no other route can be reached by that
user.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fulcrum.auth.operations import Operation
from fulcrum.auth.principal import Principal
from fulcrum.container import Services
from fulcrum.kit.errors import PermissionDenied, Unauthenticated
from fulcrum.kit.validation import batch_cost
from fulcrum.ratelimit.limiter import RateDecision
from fulcrum.transports.rest.errors import answer

TENANT_HEADER = "x-fulcrum-tenant"
PRINCIPAL = "principal"


@dataclass(frozen=True)
class Caller:
    """What the gate knows of a request before its body: what a declaration may look at."""

    authorization: str | None
    tenant_hint: str | None
    client_host: str | None


class Authorize:
    """A route's access: the operation it serves (and, as a FastAPI dependency, the
    admitted principal)."""

    def __init__(self, operation: Operation) -> None:
        self.operation = operation

    async def admit(
        self, services: Services, caller: Caller
    ) -> tuple[Principal, RateDecision | None]:
        """Authenticate, check the operation's scopes, charge the rate limit; raise to
        refuse."""
        principal = await services.authenticator.authenticate(
            caller.authorization,
            caller.tenant_hint,
            user_only=self.operation.user_only,
            client=caller.client_host,
        )
        tenant = str(principal.tenant_id) if principal.tenant_id else None
        structlog.contextvars.bind_contextvars(tenant_id=tenant)
        principal.require(*self.operation.scopes)
        if self.operation.per_item:
            return principal, None
        return principal, await services.rate_limiter.check(principal)

    async def __call__(self, request: Request) -> Principal:
        principal = request.scope.get("state", {}).get(PRINCIPAL)
        if not isinstance(principal, Principal):
            raise Unauthenticated("the request was not admitted")  # no gate ran: fail closed
        return principal


def allowed(operation: Operation) -> Any:
    """How a route declares the operation it serves:
    ``who: Annotated[Principal, allowed(ops.CREATE)]``."""
    return Depends(Authorize(operation))


async def charge(request: Request, principal: Principal, items: int) -> dict[str, str]:
    """Charge a batch of ``items`` (checked against the batch limit first) at one token
    each, all or none; the rate limit's headers, for the answer."""
    decision = await services_of(request).rate_limiter.check(principal, batch_cost(items))
    return decision.headers() if decision is not None else {}


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def declarations(dependant: Dependant) -> list[Authorize]:
    found = [d.call for d in dependant.dependencies if isinstance(d.call, Authorize)]
    for sub in dependant.dependencies:
        found += declarations(sub)
    return found


def flatten(routes: Iterable[Any]) -> list[BaseRoute]:
    """Every route in match order, included routers expanded (FastAPI >= 0.16x keeps them)."""
    found: list[BaseRoute] = []
    for route in routes:
        if hasattr(route, "original_router"):
            found += flatten(route.original_router.routes)
        else:
            found.append(route)
    return found


class Public:
    """The access of a route anyone may call (health, docs)."""


PUBLIC = Public()
Access = Authorize | Public | None  # None: nothing declared, so refused


@dataclass(frozen=True)
class Entry:
    route: BaseRoute
    access: Access

    def serves(self, path: str, method: str) -> bool:
        """Whether the route matches fully: its path pattern and its method. Read from the
        route's own pattern: FastAPI's ``matches`` costs many times more per call."""
        regex = getattr(self.route, "path_regex", None)
        methods = getattr(self.route, "methods", None)
        if regex is None or regex.match(path) is None:
            return False
        return methods is None or method in methods


def access_map(routes: Iterable[Any], public_paths: set[str]) -> list[Entry]:
    entries = []
    for route in flatten(routes):
        found = declarations(route.dependant) if isinstance(route, APIRoute) else []
        path = getattr(route, "path", None)
        if len(found) > 1:
            raise ValueError(f"{path} declares its access more than once")
        access: Access = found[0] if found else (PUBLIC if path in public_paths else None)
        entries.append(Entry(route, access))
    return entries


class Gate:
    """Pure ASGI middleware: admits a request (or answers the refusal) before the route runs.

    Starlette builds its middleware when the app starts serving, so the map covers every
    route registered by then.
    """

    def __init__(self, app: ASGIApp, router: Router, public_paths: set[str]) -> None:
        self.app = app
        self.entries = access_map(router.routes, public_paths)

    def _match(self, scope: Scope) -> Entry | None:
        path, method = scope["path"], scope["method"]
        for entry in self.entries:
            if entry.serves(path, method):
                return entry
        return None  # the router answers 404 / 405 without reading a body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        entry = self._match(scope) if scope["type"] == "http" else None
        if entry is None or isinstance(entry.access, Public):
            await self.app(scope, receive, send)
            return
        if entry.access is None:
            await answer(PermissionDenied("this route declares no access"))(scope, receive, send)
            return
        headers = Headers(scope=scope)
        client = scope.get("client")
        caller = Caller(
            headers.get("authorization"), headers.get(TENANT_HEADER), client[0] if client else None
        )
        services: Services = scope["app"].state.services
        try:
            principal, decision = await entry.access.admit(services, caller)
        except Exception as exc:  # a refusal, or a store that is down (503)
            await answer(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})[PRINCIPAL] = principal
        if decision is None:
            await self.app(scope, receive, send)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_limits)
