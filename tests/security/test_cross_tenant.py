"""Cross-tenant isolation through the real API, over REST and gRPC.

Acceptance: with tenant A's owner key, every route and RPC that takes a resource id,
given tenant B's ids, answers not-found and changes nothing in B. Also: A's listings
never show B's ids, platform administration (``/v1/tenants``, ``TenantService``) is never
reachable with a tenant key, and a platform key is refused on the tenant surfaces.

Each check snapshots B's rows as the database superuser (bypassing row-level security)
before and after, and asserts the two snapshots are identical. The checklists below are
the routes and RPCs under test; a new id-taking route belongs in them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import grpc
import httpx
import psycopg
import pytest
from google.protobuf.message import Message

from fulcrum.pb.v1 import api_keys_pb2, members_pb2, tenants_pb2
from tests.support.identity import (
    GrpcClients,
    TenantFixture,
    grpc_clients,
    new_tenant,
    platform_key,
    rest,
)
from tests.support.processes import FulcrumProcess
from tests.support.stack import LiveStack

TENANT_HEADER = "x-fulcrum-tenant"


# --- the checklists ---------------------------------------------------------------------


class Route(NamedTuple):
    """A REST route; ``{member_id}``, ``{api_key_id}`` or ``{tenant_id}`` take each id."""

    method: str
    path: str
    body: dict[str, Any] | None = None


class Rpc(NamedTuple):
    """An RPC; ``id_field`` (when set) takes each id of that kind."""

    stub: str
    name: str
    request: type[Message]
    id_field: str | None = None
    fields: dict[str, Any] | None = None


# Every route / RPC that takes a member or API key id.
ROUTES_BY_ID = [
    Route("GET", "/v1/members/{member_id}"),
    Route("PATCH", "/v1/members/{member_id}", {"role": "admin"}),
    Route("DELETE", "/v1/members/{member_id}"),
    Route("GET", "/v1/api-keys/{api_key_id}"),
    Route("POST", "/v1/api-keys/{api_key_id}/revoke"),
    Route("POST", "/v1/api-keys/{api_key_id}/rotate"),
]
RPCS_BY_ID = [
    Rpc("members", "GetMember", members_pb2.GetMemberRequest, "member_id"),
    Rpc(
        "members",
        "UpdateMemberRole",
        members_pb2.UpdateMemberRoleRequest,
        "member_id",
        {"role": "admin"},
    ),
    Rpc("members", "RemoveMember", members_pb2.RemoveMemberRequest, "member_id"),
    Rpc("api_keys", "GetApiKey", api_keys_pb2.GetApiKeyRequest, "api_key_id"),
    Rpc("api_keys", "RevokeApiKey", api_keys_pb2.RevokeApiKeyRequest, "api_key_id"),
    Rpc("api_keys", "RotateApiKey", api_keys_pb2.RotateApiKeyRequest, "api_key_id"),
]

# The rest of the tenant surface: listing and creating.
TENANT_ROUTES = [
    *ROUTES_BY_ID,
    Route("GET", "/v1/members"),
    Route("POST", "/v1/members", {"external_user_id": "user_intruder", "role": "owner"}),
    Route("GET", "/v1/api-keys"),
    Route("POST", "/v1/api-keys", {"name": "intruder", "scopes": ["keys:read"]}),
]
TENANT_RPCS = [
    *RPCS_BY_ID,
    Rpc("members", "ListMembers", members_pb2.ListMembersRequest),
    Rpc(
        "members",
        "AddMember",
        members_pb2.AddMemberRequest,
        fields={"external_user_id": "user_intruder", "role": "owner"},
    ),
    Rpc("api_keys", "ListApiKeys", api_keys_pb2.ListApiKeysRequest),
    Rpc(
        "api_keys",
        "CreateApiKey",
        api_keys_pb2.CreateApiKeyRequest,
        fields={"name": "intruder", "scopes": ["keys:read"]},
    ),
]

# Platform administration: every route and RPC of /v1/tenants and TenantService.
INTRUDER_TENANT = f"xt-intruder-{uuid.uuid4().hex[:8]}"
PLATFORM_ROUTES = [
    Route("POST", "/v1/tenants", {"name": INTRUDER_TENANT, "owner_user_id": "user_intruder"}),
    Route("GET", "/v1/tenants"),
    Route("GET", "/v1/tenants/{tenant_id}"),
    Route("POST", "/v1/tenants/{tenant_id}/suspend"),
    Route("POST", "/v1/tenants/{tenant_id}/resume"),
]
PLATFORM_RPCS = [
    Rpc(
        "tenants",
        "CreateTenant",
        tenants_pb2.CreateTenantRequest,
        fields={"name": INTRUDER_TENANT, "owner_user_id": "user_intruder"},
    ),
    Rpc("tenants", "ListTenants", tenants_pb2.ListTenantsRequest),
    Rpc("tenants", "GetTenant", tenants_pb2.GetTenantRequest, "tenant_id"),
    Rpc("tenants", "SuspendTenant", tenants_pb2.SuspendTenantRequest, "tenant_id"),
    Rpc("tenants", "ResumeTenant", tenants_pb2.ResumeTenantRequest, "tenant_id"),
]

# A's owner key is tried bare and while naming B in x-fulcrum-tenant (a key must ignore it).
HINTS = [pytest.param(False, id="no-hint"), pytest.param(True, id="hint-names-B")]


def route_id(route: Route) -> str:
    return f"{route.method} {route.path}"


def rpc_id(rpc: Rpc) -> str:
    return rpc.name


# --- the two tenants --------------------------------------------------------------------


@dataclass(frozen=True)
class Ids:
    tenant_id: str
    member_ids: tuple[str, ...]
    api_key_ids: tuple[str, ...]

    def of(self, kind: str) -> tuple[str, ...]:
        return {
            "member_id": self.member_ids,
            "api_key_id": self.api_key_ids,
            "tenant_id": (self.tenant_id,),
        }[kind]


@dataclass(frozen=True)
class World:
    a: TenantFixture
    b: TenantFixture
    a_ids: Ids
    b_ids: Ids


def ids_of(stack: LiveStack, tenant: TenantFixture) -> Ids:
    with psycopg.connect(stack.superuser_dsn()) as su:
        members = su.execute(
            "SELECT id::text FROM members WHERE tenant_id = %s ORDER BY id", (tenant.id,)
        ).fetchall()
        keys = su.execute(
            "SELECT id FROM api_keys WHERE tenant_id = %s ORDER BY id", (tenant.id,)
        ).fetchall()
    return Ids(str(tenant.id), tuple(r[0] for r in members), tuple(r[0] for r in keys))


@pytest.fixture(scope="module")
def world(stack: LiveStack, api: FulcrumProcess) -> World:
    a, b = new_tenant(stack, "xa"), new_tenant(stack, "xb")
    # B gets an extra key and an extra member, made through the API with B's owner key.
    with rest(api, b.owner_key) as client:
        key = client.post(
            "/v1/api-keys", json={"name": "b-extra", "scopes": ["keys:read", "policies:read"]}
        )
        assert key.status_code == 201, key.text
        member = client.post(
            "/v1/members", json={"external_user_id": f"user_{b.name}_viewer", "role": "viewer"}
        )
        assert member.status_code == 201, member.text
    world = World(a, b, ids_of(stack, a), ids_of(stack, b))
    assert len(world.b_ids.member_ids) == 2
    assert len(world.b_ids.api_key_ids) == 2
    return world


# --- B's rows, as the superuser sees them ----------------------------------------------

Snapshot = dict[str, list[tuple[Any, ...]]]


def snapshot(stack: LiveStack, tenant_id: uuid.UUID) -> Snapshot:
    # api_keys.last_used_at is left out: the API writes it in the background a few seconds
    # after B's own setup calls, and nothing here is meant to be ordered against that.
    queries = {
        "tenants": "SELECT id, name, status, clerk_org_id, created_at FROM tenants WHERE id = %s",
        "members": (
            "SELECT id, external_user_id, role, created_at FROM members "
            "WHERE tenant_id = %s ORDER BY id"
        ),
        "api_keys": (
            "SELECT id, name, scopes, created_at, created_by, expires_at, revoked_at, "
            "rotated_from FROM api_keys WHERE tenant_id = %s ORDER BY id"
        ),
        "audit_events": (
            "SELECT id, occurred_at, trace_id, actor, action, resource_type, resource_id, "
            "outcome, details FROM audit_events WHERE tenant_id = %s ORDER BY occurred_at, id"
        ),
    }
    with psycopg.connect(stack.superuser_dsn()) as su:
        return {table: su.execute(sql, (tenant_id,)).fetchall() for table, sql in queries.items()}


@pytest.fixture
def b_unchanged(stack: LiveStack, world: World) -> Iterator[None]:
    """Asserts, after the test, that B's rows are exactly what they were before it."""
    before = snapshot(stack, world.b.id)
    yield
    assert snapshot(stack, world.b.id) == before


def tenant_count(stack: LiveStack, name: str) -> int:
    with psycopg.connect(stack.superuser_dsn()) as su:
        row = su.execute("SELECT count(*) FROM tenants WHERE name = %s", (name,)).fetchone()
    assert row is not None
    return int(row[0])


# --- calling ----------------------------------------------------------------------------


def concrete_paths(route: Route, *targets: Ids) -> list[str]:
    """The route's path filled with each id of the kind it takes, from each target."""
    for kind in ("member_id", "api_key_id", "tenant_id"):
        if "{" + kind + "}" in route.path:
            return [route.path.format(**{kind: i}) for t in targets for i in t.of(kind)]
    return [route.path]


def concrete_requests(rpc: Rpc, *targets: Ids) -> list[Message]:
    fields = rpc.fields or {}
    if rpc.id_field is None:
        return [rpc.request(**fields)]
    return [rpc.request(**{rpc.id_field: i}, **fields) for t in targets for i in t.of(rpc.id_field)]


def call_rest(
    api: FulcrumProcess, credential: str, route: Route, path: str, headers: dict[str, str]
) -> httpx.Response:
    with rest(api, credential, **headers) as client:
        return client.request(route.method, path, json=route.body)


def call_rpc(
    clients: GrpcClients, rpc: Rpc, request: Message
) -> tuple[grpc.StatusCode, str | None]:
    method = getattr(getattr(clients, rpc.stub), rpc.name)
    try:
        method(request, metadata=clients.metadata, timeout=10)
    except grpc.RpcError as err:
        return err.code(), err.details()
    return grpc.StatusCode.OK, None


def naming_b(world: World, hint: bool = True) -> dict[str, str]:
    """x-fulcrum-tenant naming B (REST header or gRPC metadata), when ``hint``."""
    return {TENANT_HEADER: world.b_ids.tenant_id} if hint else {}


# --- A's owner key on B's ids: not found, nothing changes ------------------------------


@pytest.mark.usefixtures("b_unchanged")
@pytest.mark.parametrize("hint", HINTS)
@pytest.mark.parametrize("route", ROUTES_BY_ID, ids=route_id)
def test_rest_route_with_b_id_is_not_found(
    api: FulcrumProcess, world: World, route: Route, hint: bool
) -> None:
    for path in concrete_paths(route, world.b_ids):
        response = call_rest(api, world.a.owner_key, route, path, naming_b(world, hint))
        assert response.status_code == 404, f"{route.method} {path}: {response.text}"
        assert response.json()["error"]["code"] == "not_found"


@pytest.mark.usefixtures("b_unchanged")
@pytest.mark.parametrize("hint", HINTS)
@pytest.mark.parametrize("rpc", RPCS_BY_ID, ids=rpc_id)
def test_rpc_with_b_id_is_not_found(
    api: FulcrumProcess, world: World, rpc: Rpc, hint: bool
) -> None:
    with grpc_clients(api, world.a.owner_key, **naming_b(world, hint)) as clients:
        for request in concrete_requests(rpc, world.b_ids):
            code, details = call_rpc(clients, rpc, request)
            assert code == grpc.StatusCode.NOT_FOUND, f"{rpc.name}({request}): {code} {details}"


# --- A's listings never show B ---------------------------------------------------------


def rest_listing(
    api: FulcrumProcess, credential: str, path: str, items: str, headers: dict[str, str]
) -> set[str]:
    """Every id on every page of a REST listing."""
    found: set[str] = set()
    token = ""
    with rest(api, credential, **headers) as client:
        while True:
            response = client.get(path, params={"page_size": 1, "page_token": token})
            assert response.status_code == 200, response.text
            page = response.json()
            found |= {item["id"] for item in page[items]}
            token = page["next_page_token"]
            if not token:
                return found


def grpc_listing(clients: GrpcClients, rpc: Rpc, items: str) -> set[str]:
    """Every id on every page of a gRPC listing."""
    method = getattr(getattr(clients, rpc.stub), rpc.name)
    found: set[str] = set()
    token = ""
    while True:
        page = method(rpc.request(page_size=1, page_token=token), metadata=clients.metadata)
        found |= {item.id for item in getattr(page, items)}
        token = page.next_page_token
        if not token:
            return found


@pytest.mark.usefixtures("b_unchanged")
@pytest.mark.parametrize("hint", HINTS)
def test_rest_listings_show_only_a(api: FulcrumProcess, world: World, hint: bool) -> None:
    named = naming_b(world, hint)
    members = rest_listing(api, world.a.owner_key, "/v1/members", "members", named)
    keys = rest_listing(api, world.a.owner_key, "/v1/api-keys", "api_keys", named)
    assert members == set(world.a_ids.member_ids)
    assert keys == set(world.a_ids.api_key_ids)
    assert not members & set(world.b_ids.member_ids)
    assert not keys & set(world.b_ids.api_key_ids)


@pytest.mark.usefixtures("b_unchanged")
@pytest.mark.parametrize("hint", HINTS)
def test_grpc_listings_show_only_a(api: FulcrumProcess, world: World, hint: bool) -> None:
    list_members = Rpc("members", "ListMembers", members_pb2.ListMembersRequest)
    list_keys = Rpc("api_keys", "ListApiKeys", api_keys_pb2.ListApiKeysRequest)
    with grpc_clients(api, world.a.owner_key, **naming_b(world, hint)) as clients:
        members = grpc_listing(clients, list_members, "members")
        keys = grpc_listing(clients, list_keys, "api_keys")
    assert members == set(world.a_ids.member_ids)
    assert keys == set(world.a_ids.api_key_ids)
    assert not members & set(world.b_ids.member_ids)
    assert not keys & set(world.b_ids.api_key_ids)


# --- platform administration is never reachable with a tenant key ----------------------


@pytest.mark.usefixtures("b_unchanged")
@pytest.mark.parametrize("route", PLATFORM_ROUTES, ids=route_id)
def test_tenant_key_is_refused_on_rest_tenant_admin(
    stack: LiveStack, api: FulcrumProcess, world: World, route: Route
) -> None:
    # Tried on B's tenant id and on A's own: a tenant key administers neither.
    for path in dict.fromkeys(concrete_paths(route, world.b_ids, world.a_ids)):
        response = call_rest(api, world.a.owner_key, route, path, {})
        assert response.status_code == 403, f"{route.method} {path}: {response.text}"
        assert response.json()["error"]["code"] == "permission_denied"
    assert tenant_count(stack, INTRUDER_TENANT) == 0


@pytest.mark.usefixtures("b_unchanged")
@pytest.mark.parametrize("rpc", PLATFORM_RPCS, ids=rpc_id)
def test_tenant_key_is_refused_on_tenant_service(
    stack: LiveStack, api: FulcrumProcess, world: World, rpc: Rpc
) -> None:
    with grpc_clients(api, world.a.owner_key) as clients:
        for request in concrete_requests(rpc, world.b_ids, world.a_ids):
            code, details = call_rpc(clients, rpc, request)
            assert code == grpc.StatusCode.PERMISSION_DENIED, f"{rpc.name}: {code} {details}"
    assert tenant_count(stack, INTRUDER_TENANT) == 0


# --- a platform key is refused on the tenant surfaces ----------------------------------


@pytest.fixture(scope="module")
def platform(stack: LiveStack) -> str:
    return platform_key(stack)


@pytest.mark.usefixtures("b_unchanged")
@pytest.mark.parametrize("route", TENANT_ROUTES, ids=route_id)
def test_platform_key_is_refused_on_rest_tenant_routes(
    api: FulcrumProcess, world: World, platform: str, route: Route
) -> None:
    # The platform key names B in x-fulcrum-tenant: it still gets no tenant.
    for path in concrete_paths(route, world.b_ids):
        response = call_rest(api, platform, route, path, naming_b(world))
        assert response.status_code == 403, f"{route.method} {path}: {response.text}"
        assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.usefixtures("b_unchanged")
@pytest.mark.parametrize("rpc", TENANT_RPCS, ids=rpc_id)
def test_platform_key_is_refused_on_tenant_rpcs(
    api: FulcrumProcess, world: World, platform: str, rpc: Rpc
) -> None:
    with grpc_clients(api, platform, **naming_b(world)) as clients:
        for request in concrete_requests(rpc, world.b_ids):
            code, details = call_rpc(clients, rpc, request)
            assert code == grpc.StatusCode.PERMISSION_DENIED, f"{rpc.name}: {code} {details}"
