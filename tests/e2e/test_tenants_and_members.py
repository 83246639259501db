"""Platform administration and membership over REST and gRPC, with dashboard tokens."""

from __future__ import annotations

import time

import grpc
import httpx
import pytest

from fulcrum.pb.v1 import api_keys_pb2, members_pb2, tenants_pb2
from tests.support.identity import (
    TenantFixture,
    grpc_clients,
    member_token,
    new_tenant,
    platform_key,
    rest,
)
from tests.support.processes import FulcrumProcess
from tests.support.stack import LiveStack


@pytest.fixture(scope="module")
def platform(stack: LiveStack) -> str:
    return platform_key(stack)


def test_platform_key_creates_and_lists_tenants_over_rest_and_grpc(
    api: FulcrumProcess, platform: str
) -> None:
    with rest(api, platform) as client:
        created = client.post("/v1/tenants", json={"name": "rest-made", "owner_user_id": "u_r"})
        assert created.status_code == 201, created.text
        owner_key = created.json()["owner_api_key"]
        tenant_id = created.json()["tenant"]["id"]
        assert client.get(f"/v1/tenants/{tenant_id}").json()["name"] == "rest-made"
        duplicate = client.post("/v1/tenants", json={"name": "rest-made"})
        assert duplicate.status_code == 409
    with rest(api, owner_key) as client:
        members = client.get("/v1/members").json()["members"]
    assert [(m["external_user_id"], m["role"]) for m in members] == [("u_r", "owner")]

    with grpc_clients(api, platform) as clients:
        made = clients.tenants.CreateTenant(
            tenants_pb2.CreateTenantRequest(name="grpc-made"), metadata=clients.metadata
        )
        assert made.owner_api_key.startswith("fk_")
        got = clients.tenants.GetTenant(
            tenants_pb2.GetTenantRequest(tenant_id=tenant_id), metadata=clients.metadata
        )
        assert got.tenant.name == "rest-made"
        assert got.tenant.status == tenants_pb2.TENANT_STATUS_ACTIVE


def test_tenant_listing_paginates(api: FulcrumProcess, platform: str, stack: LiveStack) -> None:
    for _ in range(3):
        new_tenant(stack, "page")
    seen: list[str] = []
    token = ""
    with rest(api, platform) as client:
        while True:
            page = client.get("/v1/tenants", params={"page_size": 2, "page_token": token}).json()
            assert len(page["tenants"]) <= 2
            seen += [t["id"] for t in page["tenants"]]
            token = page["next_page_token"]
            if not token:
                break
    assert len(seen) == len(set(seen)) >= 3
    with grpc_clients(api, platform) as clients:
        listed = clients.tenants.ListTenants(
            tenants_pb2.ListTenantsRequest(page_size=200), metadata=clients.metadata
        )
    assert [t.id for t in listed.tenants] == seen


def test_suspended_tenant_is_refused_until_resumed(
    api: FulcrumProcess, platform: str, stack: LiveStack
) -> None:
    tenant = new_tenant(stack, "suspend")
    with rest(api, platform) as client:
        suspended = client.post(f"/v1/tenants/{tenant.id}/suspend")
        assert suspended.json()["status"] == "suspended"
    response = within_a_second(api, tenant.owner_key, 403)
    assert "suspended" in response.json()["error"]["message"]
    with grpc_clients(api, platform) as clients:
        clients.tenants.ResumeTenant(
            tenants_pb2.ResumeTenantRequest(tenant_id=str(tenant.id)), metadata=clients.metadata
        )
    within_a_second(api, tenant.owner_key, 200)


def within_a_second(api: FulcrumProcess, key: str, status: int) -> httpx.Response:
    """Suspension and resumption reach every API server within one second (key cache TTL)."""
    deadline = time.monotonic() + 1.0
    with rest(api, key) as client:
        while (response := client.get("/v1/api-keys")).status_code != status:
            assert time.monotonic() < deadline, response.text
            time.sleep(0.05)
    return response


def test_dashboard_member_token_over_rest_and_grpc(api: FulcrumProcess, stack: LiveStack) -> None:
    tenant = new_tenant(stack, "dash")
    token = member_token(stack, tenant, "auditor", "user_audrey")
    with rest(api, token, **{"x-fulcrum-tenant": str(tenant.id)}) as client:
        members = client.get("/v1/members")
        assert members.status_code == 200
        assert {m["external_user_id"] for m in members.json()["members"]} == {
            tenant.owner_user,
            "user_audrey",
        }
        denied = client.post("/v1/members", json={"external_user_id": "x", "role": "viewer"})
        assert denied.status_code == 403
        assert denied.json()["error"]["message"] == "missing scope members:manage"
    with grpc_clients(api, token, x_fulcrum_tenant=str(tenant.id)) as clients:
        listed = clients.members.ListMembers(
            members_pb2.ListMembersRequest(), metadata=clients.metadata
        )
        assert len(listed.members) == 2
        with pytest.raises(grpc.RpcError) as err:
            clients.api_keys.CreateApiKey(
                api_keys_pb2.CreateApiKeyRequest(name="k", scopes=["keys:read"]),
                metadata=clients.metadata,
            )
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert err.value.details() == "missing scope keys:manage"


def test_token_for_another_tenant_is_not_a_membership(
    api: FulcrumProcess, stack: LiveStack
) -> None:
    mine, other = new_tenant(stack, "mine"), new_tenant(stack, "other")
    token = member_token(stack, mine, "owner", "user_solo")
    with rest(api, token, **{"x-fulcrum-tenant": str(other.id)}) as client:
        assert client.get("/v1/members").status_code == 401
    with rest(api, token) as client:  # one membership: no header needed
        assert client.get("/v1/members").status_code == 200


def test_member_changes_are_audited_with_actor_and_trace(
    api: FulcrumProcess, stack: LiveStack
) -> None:
    import psycopg

    tenant = new_tenant(stack, "audit")
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    with rest(api, tenant.owner_key, traceparent=f"00-{trace_id}-00f067aa0ba902b7-01") as client:
        added = client.post("/v1/members", json={"external_user_id": "u_new", "role": "viewer"})
        assert added.status_code == 201
        assert added.headers["traceparent"].startswith(f"00-{trace_id}-")
    with psycopg.connect(stack.superuser_dsn()) as su:
        row = su.execute(
            "SELECT actor, action, resource_id, trace_id, details FROM audit_events "
            "WHERE tenant_id = %s AND action = 'member.invite'",
            (tenant.id,),
        ).fetchone()
    assert row is not None
    actor, _action, resource_id, recorded_trace, details = row
    assert actor == f"key:{tenant.owner_key.split('_')[1]}"
    assert resource_id == added.json()["id"]
    assert recorded_trace == trace_id
    assert details == {
        "after": {"external_user_id": "u_new", "role": "viewer", "status": "invited"}
    }


def test_bad_jwts_are_refused_over_http(api: FulcrumProcess) -> None:
    for token in ("a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."):
        with api.http(token) as client:
            response = client.get("/v1/members")
        assert response.status_code == 401


def test_oversized_body_is_refused(api: FulcrumProcess, stack: LiveStack) -> None:
    tenant: TenantFixture = new_tenant(stack, "big")
    with rest(api, tenant.owner_key) as client:
        response = client.post(
            "/v1/api-keys",
            content=b"x" * (2 << 20),
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 413
