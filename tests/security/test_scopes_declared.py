"""Every REST route and every gRPC RPC declares the scopes it needs (health aside)."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from typing import Any, cast

import grpc
import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

import fulcrum.pb.v1 as pb
from fulcrum.auth.scopes import ROLE_SCOPES, USER_SCOPES
from fulcrum.transports.grpc.interceptor import RPC_SCOPES, USER_RPCS
from fulcrum.transports.rest.app import create_app
from fulcrum.transports.rest.auth import RequireScopes
from tests.support.processes import FulcrumProcess

PUBLIC_ROUTES = {"/healthz", "/readyz"}


def declared_scopes(dependant: Dependant) -> list[RequireScopes]:
    found = [d.call for d in dependant.dependencies if isinstance(d.call, RequireScopes)]
    for sub in dependant.dependencies:
        found += declared_scopes(sub)
    return found


def _flatten(routes: list[Any]) -> list[APIRoute]:
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):  # an included router (FastAPI >= 0.16x)
            found += _flatten(route.original_router.routes)
    return found


def api_routes() -> list[APIRoute]:
    return _flatten(create_app(cast(Any, None), cast(Any, None)).routes)


def all_rpcs() -> list[str]:
    rpcs = []
    for module_info in pkgutil.iter_modules(pb.__path__):
        if not module_info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"{pb.__name__}.{module_info.name}")
        for service in module.DESCRIPTOR.services_by_name.values():
            rpcs += [f"/{service.full_name}/{method.name}" for method in service.methods]
    return rpcs


def test_there_are_routes_and_rpcs_to_check() -> None:
    assert len([r for r in api_routes() if r.path not in PUBLIC_ROUTES]) >= 15
    assert len(all_rpcs()) >= 15


@pytest.mark.parametrize("route", api_routes(), ids=lambda r: f"{sorted(r.methods)} {r.path}")
def test_every_rest_route_declares_scopes(route: APIRoute) -> None:
    if route.path in PUBLIC_ROUTES:
        return
    requirements = declared_scopes(route.dependant)
    assert requirements, f"{route.path} declares no scope"
    assert all(req.scopes for req in requirements)


@pytest.mark.parametrize("rpc", all_rpcs())
def test_every_rpc_declares_scopes(rpc: str) -> None:
    assert RPC_SCOPES.get(rpc), f"{rpc} declares no scope"


@pytest.mark.parametrize("route", api_routes(), ids=lambda r: f"{sorted(r.methods)} {r.path}")
def test_user_scopes_only_on_user_routes(route: APIRoute) -> None:
    """A signed-in user outside any tenant reaches only routes built for them: those
    authenticate ``user_only`` and declare user scopes alone; every other route declares
    none, so the user principal (which holds nothing else) is refused there."""
    for requirement in declared_scopes(route.dependant):
        declared = set(requirement.scopes)
        if requirement.user_only:
            assert declared <= USER_SCOPES, route.path
            assert route.path.startswith("/v1/me/"), route.path
        else:
            assert not declared & USER_SCOPES, route.path


def test_user_scopes_only_on_user_rpcs() -> None:
    assert USER_RPCS.issubset(all_rpcs())
    for rpc, scopes in RPC_SCOPES.items():
        if rpc in USER_RPCS:
            assert set(scopes) <= USER_SCOPES, rpc
        else:
            assert not set(scopes) & USER_SCOPES, rpc


def test_no_role_carries_a_user_scope() -> None:
    assert all(not scopes & USER_SCOPES for scopes in ROLE_SCOPES.values())


def test_no_scope_declared_for_an_rpc_that_does_not_exist() -> None:
    assert set(RPC_SCOPES) <= set(all_rpcs())


def test_a_route_cannot_declare_an_empty_scope_set() -> None:
    with pytest.raises(ValueError, match="at least one scope"):
        RequireScopes()


def test_unauthenticated_calls_are_refused_everywhere(api: FulcrumProcess) -> None:
    """No route or RPC answers anything but 401 / UNAUTHENTICATED without credentials."""

    for route in api_routes():
        if route.path in PUBLIC_ROUTES:
            continue
        path = route.path.replace("{", "").replace("}", "")
        for method in route.methods:
            with api.http() as client:
                response = client.request(method, path)
            assert response.status_code == 401, (method, path, response.text)
    with api.channel() as channel:
        for rpc in all_rpcs():
            call = channel.unary_unary(rpc, request_serializer=None, response_deserializer=None)
            with pytest.raises(grpc.RpcError) as err:
                call(b"", timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, rpc


def test_a_route_that_declares_no_access_is_refused() -> None:
    """Fail closed: a route added without ``RequireScopes`` answers 403 and never runs."""
    app = create_app(cast(Any, None), cast(Any, None))
    ran: list[bool] = []

    @app.post("/v1/undeclared")
    async def undeclared() -> dict[str, str]:
        ran.append(True)
        return {"ok": "yes"}

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://in-process") as c:
            return await c.post("/v1/undeclared", json={})

    response = asyncio.run(call())
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not ran
