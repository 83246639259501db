"""Invitations end to end: a tenant invites, the user lists, accepts or declines with their
own session, over REST and gRPC; a Clerk organisation vouches for its own tenant."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import psycopg
import pytest

from fulcrum.pb.v1 import invitations_pb2, members_pb2
from tests.support.identity import (
    TenantFixture,
    grpc_clients,
    member_token,
    new_tenant,
    rest,
    user_token,
)
from tests.support.processes import FulcrumProcess
from tests.support.stack import LiveStack

TENANT_HEADER = "x-fulcrum-tenant"


def invite(api: FulcrumProcess, tenant: TenantFixture, user: str, role: str = "viewer") -> str:
    with rest(api, tenant.owner_key) as client:
        made = client.post("/v1/members", json={"external_user_id": user, "role": role})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["status"] == "invited"
    assert body["invited_by"] == f"key:{tenant.owner_key.split('_')[1]}"
    return str(body["id"])


def audit_actions(stack: LiveStack, tenant: TenantFixture, member: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(stack.superuser_dsn()) as su:
        return su.execute(
            "SELECT action, actor FROM audit_events WHERE tenant_id = %s AND resource_id = %s "
            "ORDER BY occurred_at",
            (tenant.id, member),
        ).fetchall()


def member_rows(stack: LiveStack, tenant: TenantFixture) -> dict[str, str]:
    with psycopg.connect(stack.superuser_dsn()) as su:
        rows = su.execute(
            "SELECT external_user_id, status FROM members WHERE tenant_id = %s", (tenant.id,)
        ).fetchall()
    return dict(rows)


def test_invited_user_accepts_over_rest(api: FulcrumProcess, stack: LiveStack) -> None:
    home, inviting = new_tenant(stack, "home"), new_tenant(stack, "inviting")
    user = home.owner_user
    member = invite(api, inviting, user)
    with rest(api, inviting.owner_key) as client:
        listed = {
            m["external_user_id"]: m["status"] for m in client.get("/v1/members").json()["members"]
        }
    assert listed == {inviting.owner_user: "active", user: "invited"}

    token = member_token(stack, home, "owner", user)
    with rest(api, token) as client:
        mine = client.get("/v1/me/invitations")
        assert mine.status_code == 200, mine.text
        [pending] = mine.json()["invitations"]
        assert (pending["id"], pending["tenant_id"], pending["tenant_name"], pending["role"]) == (
            member,
            str(inviting.id),
            inviting.name,
            "viewer",
        )
        accepted = client.post(f"/v1/me/invitations/{member}/accept")
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["status"] == "active"
        assert client.get("/v1/me/invitations").json() == {"invitations": []}
        # Two active memberships now, by the user's own choice: they name one.
        assert client.get("/v1/members").status_code == 400
        again = client.post(f"/v1/me/invitations/{member}/accept")
        assert again.status_code == 404
    with rest(api, token, **{TENANT_HEADER: str(inviting.id)}) as client:
        in_inviting = client.get("/v1/members")
    assert in_inviting.status_code == 200, in_inviting.text
    assert audit_actions(stack, inviting, member) == [
        ("member.invite", f"key:{inviting.owner_key.split('_')[1]}"),
        ("member.accept_invitation", f"user:{user}"),
    ]


def test_invited_user_declines_over_grpc(api: FulcrumProcess, stack: LiveStack) -> None:
    inviting = new_tenant(stack, "declined")
    user = f"user_{uuid.uuid4().hex[:8]}"
    member = invite(api, inviting, user, "admin")
    with grpc_clients(api, user_token(stack, user)) as clients:
        mine = clients.invitations.ListMyInvitations(
            invitations_pb2.ListMyInvitationsRequest(), metadata=clients.metadata
        )
        assert [(i.id, i.tenant_name, i.role) for i in mine.invitations] == [
            (member, inviting.name, "admin")
        ]
        clients.invitations.DeclineInvitation(
            invitations_pb2.DeclineInvitationRequest(invitation_id=member),
            metadata=clients.metadata,
        )
        with pytest.raises(grpc.RpcError) as err:
            clients.invitations.AcceptInvitation(
                invitations_pb2.AcceptInvitationRequest(invitation_id=member),
                metadata=clients.metadata,
            )
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert user not in member_rows(stack, inviting)
    assert [a for a, _ in audit_actions(stack, inviting, member)] == [
        "member.invite",
        "member.decline_invitation",
    ]


def test_grpc_accept_makes_the_membership_sign_in(api: FulcrumProcess, stack: LiveStack) -> None:
    inviting = new_tenant(stack, "gaccept")
    user = f"user_{uuid.uuid4().hex[:8]}"
    member = invite(api, inviting, user)
    token = user_token(stack, user)
    with grpc_clients(api, token) as clients:
        with pytest.raises(grpc.RpcError) as err:
            clients.members.ListMembers(members_pb2.ListMembersRequest(), metadata=clients.metadata)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        accepted = clients.invitations.AcceptInvitation(
            invitations_pb2.AcceptInvitationRequest(invitation_id=member),
            metadata=clients.metadata,
        )
        assert (accepted.member.status, accepted.member.role) == ("active", "viewer")
        listed = clients.members.ListMembers(
            members_pb2.ListMembersRequest(), metadata=clients.metadata
        )
    assert {m.external_user_id: m.status for m in listed.members} == {
        inviting.owner_user: "active",
        user: "active",
    }


def test_nobody_answers_someone_elses_invitation(api: FulcrumProcess, stack: LiveStack) -> None:
    inviting = new_tenant(stack, "notyours")
    member = invite(api, inviting, "user_invitee_x")
    intruder = user_token(stack, "user_intruder_x")
    with rest(api, intruder) as client:
        assert client.get("/v1/me/invitations").json() == {"invitations": []}
        for verb in ("accept", "decline"):
            answer = client.post(f"/v1/me/invitations/{member}/{verb}")
            assert answer.status_code == 404, answer.text
    with rest(api, inviting.owner_key) as client:  # a key is not a signed-in user
        refused = client.get("/v1/me/invitations")
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == "missing scope invitations:respond"
    assert member_rows(stack, inviting)["user_invitee_x"] == "invited"


def test_a_user_principal_reaches_no_tenant_route(api: FulcrumProcess, stack: LiveStack) -> None:
    """A token whose user has only an invitation is refused on the tenant surface."""
    inviting = new_tenant(stack, "onlyinv")
    user = f"user_{uuid.uuid4().hex[:8]}"
    invite(api, inviting, user, "owner")
    token = user_token(stack, user)
    for headers in ({}, {TENANT_HEADER: str(inviting.id)}):
        with rest(api, token, **headers) as client:
            for path in ("/v1/members", "/v1/api-keys", "/v1/policies", "/v1/settings"):
                assert client.get(path).status_code == 401, (path, headers)
            made = client.post("/v1/api-keys", json={"name": "x", "scopes": ["keys:read"]})
            assert made.status_code == 401


def set_org(stack: LiveStack, tenant: TenantFixture, org: str) -> None:
    # Only platform administration may set a tenant's Clerk organisation (an operator here).
    with psycopg.connect(stack.superuser_dsn()) as su:
        su.execute("SELECT fulcrum_operator_begin()")
        su.execute("UPDATE tenants SET clerk_org_id = %s WHERE id = %s", (org, tenant.id))


def test_clerk_organisation_selects_its_tenant(api: FulcrumProcess, stack: LiveStack) -> None:
    home, org_tenant = new_tenant(stack, "orghome"), new_tenant(stack, "org")
    org = f"org_{uuid.uuid4().hex[:10]}"
    set_org(stack, org_tenant, org)
    user = home.owner_user
    member_token(stack, home, "owner", user)  # an active membership elsewhere
    invite(api, org_tenant, user, "auditor")

    # The organisation vouches for the user: its token accepts the invitation there.
    with rest(api, user_token(stack, user, org_id=org)) as client:
        listed = client.get("/v1/members")
        assert listed.status_code == 200, listed.text
        statuses = {m["external_user_id"]: m["status"] for m in listed.json()["members"]}
        assert statuses[user] == "active"
        assert client.get("/v1/api-keys").status_code == 200  # auditor: keys:read
        made = client.post("/v1/api-keys", json={"name": "k", "scopes": ["keys:read"]})
        assert made.status_code == 403  # an auditor holds no keys:manage
    member = next(m["id"] for m in listed.json()["members"] if m["external_user_id"] == user)
    assert audit_actions(stack, org_tenant, member)[-1] == (
        "member.accept_invitation",
        f"user:{user}",
    )
    with rest(api, user_token(stack, user, org_id=org), **{TENANT_HEADER: str(home.id)}) as c:
        mismatch = c.get("/v1/members")
    assert mismatch.status_code == 400
    assert mismatch.json()["error"]["field"] == TENANT_HEADER
    # Without the organisation the user has two active memberships now and names one.
    with rest(api, user_token(stack, user)) as client:
        assert client.get("/v1/members").status_code == 400
    with rest(api, user_token(stack, user), **{TENANT_HEADER: str(home.id)}) as client:
        ids = {m["external_user_id"] for m in client.get("/v1/members").json()["members"]}
    assert ids == {user}


def test_an_organisation_token_does_not_accept_another_tenants_invitation(
    api: FulcrumProcess, stack: LiveStack
) -> None:
    org_tenant, other = new_tenant(stack, "orgown"), new_tenant(stack, "orgother")
    org = f"org_{uuid.uuid4().hex[:10]}"
    set_org(stack, org_tenant, org)
    user = f"user_{uuid.uuid4().hex[:8]}"
    invite(api, org_tenant, user)
    invite(api, other, user)
    with rest(api, user_token(stack, user, org_id=org)) as client:
        assert client.get("/v1/members").status_code == 200
    assert member_rows(stack, org_tenant)[user] == "active"
    assert member_rows(stack, other)[user] == "invited"
