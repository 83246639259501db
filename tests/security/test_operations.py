"""Every operation is declared once, with its scopes, in its domain's ``operations`` table;
its REST route, its RPC and its service method all require that same operation.

The doors are checked by what they do, not by what they say: each route and each RPC is
called in-process against services whose caller is a spy principal. The principal holds
every scope, so the door's gate admits it; the service then asks it to authorize an
operation, which the spy records and refuses. The operation the service asked for must be
the one the door declared.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import pkgutil
import uuid
from types import ModuleType, SimpleNamespace
from typing import Any, cast

import grpc
import httpx
import pytest
from fastapi.routing import APIRoute

import fulcrum
import fulcrum.pb.v1 as pb
from fulcrum.api_keys.service import ApiKeyService
from fulcrum.audit.service import AuditService
from fulcrum.auth.operations import Operation
from fulcrum.auth.principal import Principal, PrincipalKind
from fulcrum.auth.scopes import ROLE_SCOPES, USER_SCOPES, Scope
from fulcrum.decisions.service import DecisionService
from fulcrum.kit.errors import PermissionDenied
from fulcrum.members.invitations import InvitationService
from fulcrum.members.service import MemberService
from fulcrum.policies.service import PolicyService
from fulcrum.policies.simulate import SimulationService
from fulcrum.tenants.service import TenantService
from fulcrum.tenants.settings import SettingsService
from fulcrum.transports.grpc.auth import current_principal
from fulcrum.transports.grpc.server import DOORS, RPC_OPERATIONS
from fulcrum.transports.rest.app import create_app
from fulcrum.transports.rest.auth import declarations, flatten
from tests.support.processes import FulcrumProcess
from tests.support.rpcs import all_rpcs

PUBLIC_ROUTES = {"/healthz", "/readyz"}
ALL_SCOPES = frozenset(Scope)


class Authorized(PermissionDenied):
    """What the spy raises once it has recorded the operation a service asked for."""


@dataclasses.dataclass(frozen=True)
class SpyPrincipal(Principal):
    asked: list[Operation] = dataclasses.field(default_factory=list, compare=False)

    def authorize(self, operation: Operation) -> None:
        self.asked.append(operation)
        raise Authorized(f"spy: {operation.name}")


def spy() -> SpyPrincipal:
    return SpyPrincipal(
        kind=PrincipalKind.MEMBER,
        scopes=ALL_SCOPES,
        actor="user:spy",
        tenant_id=uuid.uuid4(),
        external_user_id="spy",
        member_id=uuid.uuid4(),
    )


def bare(cls: type[Any]) -> Any:
    """A service with no resources: the spy refuses before any would be used."""
    return object.__new__(cls)


def spy_services(principal: SpyPrincipal) -> Any:
    async def authenticate(*_: Any, **__: Any) -> Principal:
        return principal

    async def check(*_: Any, **__: Any) -> None:
        return None

    return SimpleNamespace(
        authenticator=SimpleNamespace(authenticate=authenticate),
        rate_limiter=SimpleNamespace(check=check),
        tenants=bare(TenantService),
        members=bare(MemberService),
        invitations=bare(InvitationService),
        api_keys=bare(ApiKeyService),
        policies=bare(PolicyService),
        settings=bare(SettingsService),
        decisions=bare(DecisionService),
        simulations=bare(SimulationService),
        audit=bare(AuditService),
    )


def domain_operations() -> dict[str, Operation]:
    """Every operation of every domain's ``operations`` table."""
    found: dict[str, Operation] = {}
    for info in pkgutil.iter_modules(fulcrum.__path__):
        try:
            module: ModuleType = importlib.import_module(f"fulcrum.{info.name}.operations")
        except ModuleNotFoundError:
            continue
        for value in vars(module).values():
            if isinstance(value, Operation):
                assert value.name not in found, f"{value.name} is declared twice"
                found[value.name] = value
    return found


# --- REST ----------------------------------------------------------------------------------

DECISION = {"tool": {"name": "db.query"}}
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/tenants"): {"name": "acme"},
    ("POST", "/v1/tenants/{tenant_id}/plan"): {"plan": "free"},
    ("PATCH", "/v1/tenants/{tenant_id}/limits"): {"burst": 5},
    ("POST", "/v1/members"): {"external_user_id": "u1", "role": "viewer"},
    ("PATCH", "/v1/members/{member_id}"): {"role": "viewer"},
    ("POST", "/v1/api-keys"): {"name": "k", "scopes": ["keys:read"]},
    ("POST", "/v1/policies"): {"name": "p", "rules": []},
    ("PUT", "/v1/policies/{policy_id}"): {"name": "p", "rules": []},
    ("POST", "/v1/policies:simulate"): {"policy": {"name": "p"}, "requests": [DECISION]},
    ("POST", "/v1/decisions"): DECISION,
    ("POST", "/v1/decisions:batch"): {"requests": [DECISION]},
    ("PATCH", "/v1/settings"): {},
}


def api_routes() -> list[APIRoute]:
    app = create_app(cast(Any, None), cast(Any, None))
    return [r for r in flatten(app.routes) if isinstance(r, APIRoute)]


def declared(route: APIRoute) -> Operation:
    found = declarations(route.dependant)
    assert len(found) == 1, f"{route.path} declares {len(found)} operations"
    return found[0].operation


def served_routes() -> list[tuple[str, APIRoute]]:
    return [
        (method, route)
        for route in api_routes()
        if route.path not in PUBLIC_ROUTES
        for method in sorted(route.methods)
    ]


async def call_route(method: str, route: APIRoute) -> list[Operation]:
    principal = spy()
    app = create_app(cast(Any, None), spy_services(principal))
    path = route.path.replace("{seq}", "1").replace("{version}", "1")
    path = path.replace("{", "").replace("}", "")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://in-process") as client:
        body = BODIES.get((method, route.path))
        response = await client.request(method, path, json=body)
    assert response.status_code == 403, (method, route.path, response.text)
    return principal.asked


@pytest.mark.parametrize(
    ("method", "route"), served_routes(), ids=lambda v: v if isinstance(v, str) else v.path
)
def test_each_route_requires_what_its_service_requires(method: str, route: APIRoute) -> None:
    operation = declared(route)
    assert asyncio.run(call_route(method, route)) == [operation]


# --- gRPC ----------------------------------------------------------------------------------


def request_for(rpc: str) -> Any:
    service, method = rpc.strip("/").split("/")
    for info in pkgutil.iter_modules(pb.__path__):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"{pb.__name__}.{info.name}")
            descriptor = module.DESCRIPTOR.services_by_name.get(service.split(".")[-1])
            if descriptor is not None and descriptor.full_name == service:
                message = getattr(module, descriptor.methods_by_name[method].input_type.name)()
                fields = message.DESCRIPTOR.fields_by_name
                if "tool" in fields:  # a decision request names its tool (checked first)
                    message.tool.name = "db.query"
                if "requests" in fields:
                    message.requests.add().tool.name = "db.query"
                return message
    raise AssertionError(f"no request message for {rpc}")


async def call_rpc(rpc: str) -> list[Operation]:
    principal = spy()
    services = spy_services(principal)
    service, method = rpc.strip("/").split("/")
    door = next(d for d in DOORS if service == d.SERVICE)
    servicer_class = next(
        v for v in vars(door).values() if isinstance(v, type) and v.__name__.endswith("Servicer")
    )
    servicer = servicer_class(services)
    token = current_principal.set(principal)
    try:
        answer = getattr(servicer, method)(request_for(rpc), None)
        with pytest.raises(Authorized):
            if hasattr(answer, "__aiter__"):
                async for _ in answer:
                    pass
            else:
                await answer
    finally:
        current_principal.reset(token)
    return principal.asked


@pytest.mark.parametrize("rpc", all_rpcs())
def test_each_rpc_requires_what_its_service_requires(rpc: str) -> None:
    assert rpc in RPC_OPERATIONS, f"{rpc} declares no operation"
    assert asyncio.run(call_rpc(rpc)) == [RPC_OPERATIONS[rpc]]


# --- the tables ----------------------------------------------------------------------------


def test_every_operation_has_a_route_and_an_rpc() -> None:
    operations = domain_operations()
    assert len(operations) >= 30
    by_routes = {declared(route).name for _, route in served_routes()}
    by_rpcs = {operation.name for operation in RPC_OPERATIONS.values()}
    assert by_routes == set(operations), set(operations) ^ by_routes
    assert by_rpcs == set(operations), set(operations) ^ by_rpcs


def test_the_doors_use_the_tables_own_operations() -> None:
    operations = domain_operations()
    for operation in [declared(r) for _, r in served_routes()] + list(RPC_OPERATIONS.values()):
        assert operations[operation.name] is operation


def test_no_operation_is_declared_for_an_rpc_that_does_not_exist() -> None:
    assert set(RPC_OPERATIONS) <= set(all_rpcs())


def test_user_operations_are_the_users_alone() -> None:
    """A signed-in user outside any tenant reaches only operations built for them: those
    authenticate ``user_only`` and need user scopes alone; every other operation needs
    none, so the user principal (which holds nothing else) is refused there."""
    for operation in domain_operations().values():
        if operation.user_only:
            assert set(operation.scopes) <= USER_SCOPES, operation.name
        else:
            assert not set(operation.scopes) & USER_SCOPES, operation.name
    for _, route in served_routes():
        assert declared(route).user_only == route.path.startswith("/v1/me/"), route.path


def test_no_role_carries_a_user_scope() -> None:
    assert all(not scopes & USER_SCOPES for scopes in ROLE_SCOPES.values())


def test_an_operation_cannot_declare_an_empty_scope_set() -> None:
    with pytest.raises(ValueError, match="at least one scope"):
        Operation("nothing.at_all", ())


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


def test_a_route_that_declares_no_operation_is_refused() -> None:
    """Fail closed: a route added without an operation answers 403 and never runs."""
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
