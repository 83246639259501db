"""Privilege escalation through the real API, over REST and gRPC alike.

Acceptance: a key holding keys:manage but not policies:write cannot mint a key with
policies:write; an admin cannot make anyone owner; nobody can change their own role; the
last owner stays. A tenant key never carries a platform scope.

Every test runs once per transport (``transport`` is parametrized). Both transports are
driven through one small interface that reports an :class:`Outcome`, with error codes
spelled as REST spells them (gRPC's FAILED_PRECONDITION is ``conflict``). Each test gets
a fresh tenant; what the database holds afterwards is read as the superuser.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from dataclasses import field as default
from typing import Any, Protocol

import grpc
import psycopg
import pytest
from google.protobuf.message import Message

from fulcrum.pb.v1 import api_keys_pb2, invitations_pb2, members_pb2
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
REST_STATUS = {
    "invalid_argument": 400,
    "unauthenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "conflict": 409,
}
GRPC_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: "invalid_argument",
    grpc.StatusCode.UNAUTHENTICATED: "unauthenticated",
    grpc.StatusCode.PERMISSION_DENIED: "permission_denied",
    grpc.StatusCode.NOT_FOUND: "not_found",
    grpc.StatusCode.FAILED_PRECONDITION: "conflict",
}
# gRPC carries a field error as "<field>: <message>" in the status details.
GRPC_FIELD = re.compile(r"^(?P<field>[A-Za-z_][\w.\-]*(?:\[\d+\])*): (?P<message>.*)$", re.S)


# --- one interface, two transports ------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    credential: str
    tenant: uuid.UUID | None = None  # dashboard users name their tenant in x-fulcrum-tenant

    def headers(self) -> dict[str, str]:
        return {TENANT_HEADER: str(self.tenant)} if self.tenant else {}


@dataclass(frozen=True)
class Outcome:
    code: str  # "ok", or an error code as REST spells it
    message: str = ""
    field: str | None = None
    data: dict[str, str] = default(default_factory=dict)


class Transport(Protocol):
    def create_key(self, caller: Caller, scopes: list[str]) -> Outcome: ...
    def revoke_key(self, caller: Caller, key_id: str) -> Outcome: ...
    def rotate_key(self, caller: Caller, key_id: str) -> Outcome: ...
    def add_member(self, caller: Caller, user: str, role: str) -> Outcome: ...
    def set_role(self, caller: Caller, member_id: str, role: str) -> Outcome: ...
    def remove_member(self, caller: Caller, member_id: str) -> Outcome: ...
    def accept_invitation(self, caller: Caller, invitation_id: str) -> Outcome: ...


@dataclass
class Rest:
    api: FulcrumProcess

    def _call(
        self, caller: Caller, method: str, path: str, success: int, body: Any = None
    ) -> tuple[Outcome, Any]:
        with rest(self.api, caller.credential, **caller.headers()) as client:
            response = client.request(method, path, json=body)
        if response.status_code == success:
            return Outcome("ok"), response.json() if response.content else None
        try:
            error = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            return Outcome(f"HTTP {response.status_code}", response.text), None
        code = error["code"]
        if REST_STATUS.get(code) != response.status_code:
            code = f"HTTP {response.status_code} with code {code}"
        return Outcome(code, error["message"], error.get("field")), None

    def create_key(self, caller: Caller, scopes: list[str]) -> Outcome:
        body = {"name": "escalation", "scopes": scopes}
        outcome, data = self._call(caller, "POST", "/v1/api-keys", 201, body)
        if data is not None:
            outcome = Outcome("ok", data={"id": data["api_key"]["id"], "secret": data["secret"]})
        return outcome

    def revoke_key(self, caller: Caller, key_id: str) -> Outcome:
        return self._call(caller, "POST", f"/v1/api-keys/{key_id}/revoke", 200)[0]

    def rotate_key(self, caller: Caller, key_id: str) -> Outcome:
        return self._call(caller, "POST", f"/v1/api-keys/{key_id}/rotate", 200)[0]

    def add_member(self, caller: Caller, user: str, role: str) -> Outcome:
        body = {"external_user_id": user, "role": role}
        outcome, data = self._call(caller, "POST", "/v1/members", 201, body)
        if data is not None:
            outcome = Outcome("ok", data={"id": data["id"], "role": data["role"]})
        return outcome

    def set_role(self, caller: Caller, member_id: str, role: str) -> Outcome:
        body = {"role": role}
        outcome, data = self._call(caller, "PATCH", f"/v1/members/{member_id}", 200, body)
        if data is not None:
            outcome = Outcome("ok", data={"role": data["role"]})
        return outcome

    def remove_member(self, caller: Caller, member_id: str) -> Outcome:
        return self._call(caller, "DELETE", f"/v1/members/{member_id}", 204)[0]

    def accept_invitation(self, caller: Caller, invitation_id: str) -> Outcome:
        return self._call(caller, "POST", f"/v1/me/invitations/{invitation_id}/accept", 200)[0]


@dataclass
class Grpc:
    api: FulcrumProcess

    def _call(self, caller: Caller, stub: str, rpc: str, request: Message) -> tuple[Outcome, Any]:
        with grpc_clients(self.api, caller.credential, **caller.headers()) as clients:
            method = getattr(getattr(clients, stub), rpc)
            try:
                response = method(request, metadata=clients.metadata, timeout=10)
            except grpc.RpcError as err:
                code = GRPC_CODE.get(err.code(), str(err.code()))
                details = err.details() or ""
                match = GRPC_FIELD.match(details)
                if match:
                    return Outcome(code, match["message"], match["field"]), None
                return Outcome(code, details), None
        return Outcome("ok"), response

    def create_key(self, caller: Caller, scopes: list[str]) -> Outcome:
        request = api_keys_pb2.CreateApiKeyRequest(name="escalation", scopes=scopes)
        outcome, response = self._call(caller, "api_keys", "CreateApiKey", request)
        if response is not None:
            outcome = Outcome("ok", data={"id": response.api_key.id, "secret": response.secret})
        return outcome

    def revoke_key(self, caller: Caller, key_id: str) -> Outcome:
        request = api_keys_pb2.RevokeApiKeyRequest(api_key_id=key_id)
        return self._call(caller, "api_keys", "RevokeApiKey", request)[0]

    def rotate_key(self, caller: Caller, key_id: str) -> Outcome:
        request = api_keys_pb2.RotateApiKeyRequest(api_key_id=key_id)
        return self._call(caller, "api_keys", "RotateApiKey", request)[0]

    def add_member(self, caller: Caller, user: str, role: str) -> Outcome:
        request = members_pb2.AddMemberRequest(external_user_id=user, role=role)
        outcome, response = self._call(caller, "members", "AddMember", request)
        if response is not None:
            member = response.member
            outcome = Outcome("ok", data={"id": member.id, "role": member.role})
        return outcome

    def set_role(self, caller: Caller, member_id: str, role: str) -> Outcome:
        request = members_pb2.UpdateMemberRoleRequest(member_id=member_id, role=role)
        outcome, response = self._call(caller, "members", "UpdateMemberRole", request)
        if response is not None:
            outcome = Outcome("ok", data={"role": response.member.role})
        return outcome

    def remove_member(self, caller: Caller, member_id: str) -> Outcome:
        request = members_pb2.RemoveMemberRequest(member_id=member_id)
        return self._call(caller, "members", "RemoveMember", request)[0]

    def accept_invitation(self, caller: Caller, invitation_id: str) -> Outcome:
        request = invitations_pb2.AcceptInvitationRequest(invitation_id=invitation_id)
        return self._call(caller, "invitations", "AcceptInvitation", request)[0]


@pytest.fixture(params=["rest", "grpc"])
def transport(request: pytest.FixtureRequest, api: FulcrumProcess) -> Transport:
    return Rest(api) if request.param == "rest" else Grpc(api)


@pytest.fixture
def tenant(stack: LiveStack) -> TenantFixture:
    return new_tenant(stack, "esc")


# --- what the database holds (as the superuser) ----------------------------------------


def key_count(stack: LiveStack, tenant: TenantFixture) -> int:
    with psycopg.connect(stack.superuser_dsn()) as su:
        row = su.execute(
            "SELECT count(*) FROM api_keys WHERE tenant_id = %s", (tenant.id,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def key_state(stack: LiveStack, key_id: str) -> tuple[Any, Any]:
    """(revoked_at, expires_at) of one key."""
    with psycopg.connect(stack.superuser_dsn()) as su:
        row = su.execute(
            "SELECT revoked_at, expires_at FROM api_keys WHERE id = %s", (key_id,)
        ).fetchone()
    assert row is not None, f"no key {key_id}"
    return row[0], row[1]


def roles(stack: LiveStack, tenant: TenantFixture) -> dict[str, str]:
    """external_user_id -> role for every member of the tenant."""
    with psycopg.connect(stack.superuser_dsn()) as su:
        rows = su.execute(
            "SELECT external_user_id, role FROM members WHERE tenant_id = %s", (tenant.id,)
        ).fetchall()
    return dict(rows)


def member_id(stack: LiveStack, tenant: TenantFixture, user: str) -> str:
    with psycopg.connect(stack.superuser_dsn()) as su:
        row = su.execute(
            "SELECT id::text FROM members WHERE tenant_id = %s AND external_user_id = %s",
            (tenant.id, user),
        ).fetchone()
    assert row is not None, f"{user} is not a member"
    return str(row[0])


def key_id_of(secret: str) -> str:
    """A tenant key reads fk_<20 hex key id>_<secret>."""
    return secret.split("_")[1]


def owner_key(tenant: TenantFixture) -> Caller:
    return Caller(tenant.owner_key)


def as_member(stack: LiveStack, tenant: TenantFixture, role: str, user: str) -> Caller:
    """A dashboard user's token; it also makes ``user`` a member with ``role``."""
    return Caller(member_token(stack, tenant, role, user), tenant.id)


def assert_outcome(outcome: Outcome, code: str, *, mentions: str = "") -> None:
    assert outcome.code == code, outcome
    assert mentions.lower() in outcome.message.lower(), outcome


# --- (a) and (b): a key cannot grant or touch scopes it does not hold ------------------


def limited_key(transport: Transport, tenant: TenantFixture) -> Caller:
    """A key holding keys:manage and keys:read, minted by the owner key."""
    made = transport.create_key(owner_key(tenant), ["keys:manage", "keys:read"])
    assert_outcome(made, "ok")
    return Caller(made.data["secret"])


def test_keys_manager_cannot_mint_policies_write(
    stack: LiveStack, transport: Transport, tenant: TenantFixture
) -> None:
    limited = limited_key(transport, tenant)
    before = key_count(stack, tenant)

    for scopes in (["policies:write"], ["keys:read", "policies:write"]):
        refused = transport.create_key(limited, scopes)
        assert_outcome(refused, "permission_denied", mentions="policies:write")
    assert key_count(stack, tenant) == before

    allowed = transport.create_key(limited, ["keys:read"])
    assert_outcome(allowed, "ok")
    assert key_count(stack, tenant) == before + 1


def test_keys_manager_cannot_rotate_or_revoke_a_broader_key(
    stack: LiveStack, transport: Transport, tenant: TenantFixture
) -> None:
    limited = limited_key(transport, tenant)
    owner_key_id = key_id_of(tenant.owner_key)
    before = key_count(stack, tenant)

    assert_outcome(transport.rotate_key(limited, owner_key_id), "permission_denied")
    assert_outcome(transport.revoke_key(limited, owner_key_id), "permission_denied")

    assert key_state(stack, owner_key_id) == (None, None)
    assert key_count(stack, tenant) == before


# --- (c) an admin cannot make, unmake or remove an owner -------------------------------


def test_admin_cannot_make_or_unmake_owners(
    stack: LiveStack, transport: Transport, tenant: TenantFixture
) -> None:
    admin = as_member(stack, tenant, "admin", "user_admin_x")
    owner_member = member_id(stack, tenant, tenant.owner_user)

    refused = transport.add_member(admin, "user_would_be_owner", "owner")
    assert_outcome(refused, "permission_denied")

    viewer = transport.add_member(admin, "user_viewer_x", "viewer")
    assert_outcome(viewer, "ok")
    assert viewer.data["role"] == "viewer"

    assert_outcome(transport.set_role(admin, viewer.data["id"], "owner"), "permission_denied")
    assert_outcome(transport.set_role(admin, owner_member, "admin"), "permission_denied")
    assert_outcome(transport.remove_member(admin, owner_member), "permission_denied")

    assert roles(stack, tenant) == {
        tenant.owner_user: "owner",
        "user_admin_x": "admin",
        "user_viewer_x": "viewer",
    }


# --- (d) nobody changes their own role -------------------------------------------------


def test_nobody_changes_their_own_role(
    stack: LiveStack, transport: Transport, tenant: TenantFixture
) -> None:
    owner = as_member(stack, tenant, "owner", tenant.owner_user)
    admin = as_member(stack, tenant, "admin", "user_admin_x")
    # Each target role is one the caller could grant to someone else.
    attempts = [(owner, tenant.owner_user, "admin"), (admin, "user_admin_x", "viewer")]
    before = roles(stack, tenant)

    for caller, user, role in attempts:
        outcome = transport.set_role(caller, member_id(stack, tenant, user), role)
        assert_outcome(outcome, "permission_denied", mentions="own role")

    assert roles(stack, tenant) == before


# --- (e) the last owner stays ----------------------------------------------------------


def test_last_owner_cannot_be_demoted_or_removed(
    stack: LiveStack, transport: Transport, tenant: TenantFixture
) -> None:
    o1_user, o2_user = tenant.owner_user, "user_owner_two"
    o1 = as_member(stack, tenant, "owner", o1_user)

    added = transport.add_member(o1, o2_user, "owner")
    assert_outcome(added, "ok")
    o2_member = added.data["id"]
    # Adding invites: until O2 accepts, O1 is still the last owner and O2 cannot sign in.
    o2 = Caller(user_token(stack, o2_user), tenant.id)
    early = transport.set_role(o2, member_id(stack, tenant, o1_user), "admin")
    assert_outcome(early, "unauthenticated")
    lone = transport.remove_member(owner_key(tenant), member_id(stack, tenant, o1_user))
    assert_outcome(lone, "conflict", mentions="last owner")
    assert_outcome(transport.accept_invitation(Caller(o2.credential), o2_member), "ok")

    # Two owners: one may demote the other.
    demoted = transport.set_role(o2, member_id(stack, tenant, o1_user), "admin")
    assert_outcome(demoted, "ok")
    assert roles(stack, tenant) == {o1_user: "admin", o2_user: "owner"}

    # O2 is the last owner. The owner key is not a member, so the self-rule is not in play.
    demote = transport.set_role(owner_key(tenant), o2_member, "admin")
    assert_outcome(demote, "conflict", mentions="last owner")
    remove = transport.remove_member(owner_key(tenant), o2_member)
    assert_outcome(remove, "conflict", mentions="last owner")

    assert roles(stack, tenant) == {o1_user: "admin", o2_user: "owner"}


# --- (f) tenant keys never carry platform or unknown scopes ----------------------------


@pytest.mark.parametrize(
    ("scopes", "bad_field"),
    [
        pytest.param(["tenants:admin"], "scopes[0]", id="platform-scope"),
        pytest.param(["keys:read", "no:such-scope"], "scopes[1]", id="unknown-scope"),
        pytest.param(["keys:read", "invitations:respond"], "scopes[1]", id="user-scope"),
    ],
)
def test_tenant_key_scopes_are_validated(
    stack: LiveStack,
    transport: Transport,
    tenant: TenantFixture,
    scopes: list[str],
    bad_field: str,
) -> None:
    before = key_count(stack, tenant)

    outcome = transport.create_key(owner_key(tenant), scopes)

    assert_outcome(outcome, "invalid_argument")
    assert outcome.field == bad_field, outcome
    assert key_count(stack, tenant) == before
