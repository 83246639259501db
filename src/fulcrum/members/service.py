"""Member management: no escalation, no self-promotion, never without an owner.

Adding a user makes an *invitation*: the user accepts or declines it with their own
session (``invitations:respond``), so a tenant cannot change another tenant's sessions.
Removing or demoting a member revokes their keys that the new role no longer covers, in
the same transaction. Changes to one tenant's members take a tenant-wide lock first, so
concurrent changes queue instead of deadlocking on each other's rows.
"""

from __future__ import annotations

import re
import uuid

from fulcrum.api_keys.service import ensure_grantable, revoke_member_keys
from fulcrum.audit.outbox import record_change
from fulcrum.auth.principal import Principal, PrincipalKind
from fulcrum.auth.scopes import ROLE_SCOPES, Role, parse_role
from fulcrum.kit.db import Database
from fulcrum.kit.errors import Conflict, InvalidArgument, NotFound, PermissionDenied
from fulcrum.kit.pagination import Cursor, decode_cursor, page_size, paginate
from fulcrum.kit.validation import parse_uuid
from fulcrum.members import operations as ops
from fulcrum.members import repository as repo
from fulcrum.members.models import Member, MemberStatus

_USER_ID = re.compile(r"^[A-Za-z0-9_\-.:@|]{1,200}$")


def parse_external_user_id(value: str, field: str = "external_user_id") -> str:
    if not isinstance(value, str) or not _USER_ID.match(value):
        raise InvalidArgument("must be 1-200 characters of letters, digits and _-.:@|", field=field)
    return value


async def add_owner(conn: repo.Conn, tenant_id: uuid.UUID, external_user_id: str) -> None:
    """Make the user an owner of a tenant being created, in the caller's transaction."""
    await repo.insert(conn, tenant_id, external_user_id, Role.OWNER)


async def enroll(
    conn: repo.Conn, tenant_id: uuid.UUID, external_user_id: str, role: Role, *, actor: str
) -> Member:
    """Make the user an active member with ``role`` at once, audited, in the caller's
    transaction (the operator's development sign-in: no invitation to accept)."""
    existing = await repo.find_by_user(conn, external_user_id)
    if not existing:
        member = await repo.insert(conn, tenant_id, external_user_id, role)
        assert member is not None  # the user had no membership in this transaction
        action = "member.add"
    elif existing[0].role is not role or existing[0].status is MemberStatus.INVITED:
        await repo.activate(conn, existing[0].id)
        member = await repo.set_role(conn, existing[0].id, role)
        action = "member.update_role"
    else:
        return existing[0]
    await record_change(
        conn,
        tenant_id=tenant_id,
        actor=actor,
        action=action,
        resource_type="member",
        resource_id=str(member.id),
        details={"after": {"external_user_id": external_user_id, "role": role.value}},
    )
    return member


def _identity(member: Member) -> dict[str, str]:
    return {
        "external_user_id": member.external_user_id,
        "role": member.role.value,
        "status": member.status.value,
    }


class MemberService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list(
        self, principal: Principal, *, size: int | None, token: str | None
    ) -> tuple[list[Member], str]:
        principal.authorize(ops.LIST)
        tenant_id = principal.require_tenant()
        limit = page_size(size)
        after = decode_cursor(token)
        if after is not None:
            parse_uuid(after.id, "page_token")
        async with self._db.tenant_tx(tenant_id) as conn:
            members = await repo.list_page(conn, after, limit + 1)
        return paginate(members, limit, lambda m: Cursor(m.created_at, str(m.id)))

    async def get(self, principal: Principal, member_id: str) -> Member:
        principal.authorize(ops.GET)
        tenant_id = principal.require_tenant()
        mid = parse_uuid(member_id, "member_id")
        async with self._db.tenant_tx(tenant_id) as conn:
            member = await repo.get(conn, mid)
        if member is None:
            raise NotFound(f"member {mid} not found")
        return member

    async def add(self, principal: Principal, *, external_user_id: str, role: str) -> Member:
        """Invite ``external_user_id``: the membership counts once the user accepts it."""
        principal.authorize(ops.ADD)
        tenant_id = principal.require_tenant()
        user = parse_external_user_id(external_user_id)
        new_role = parse_role(role)
        ensure_grantable(principal, ROLE_SCOPES[new_role])
        async with self._db.tenant_tx(tenant_id) as conn:
            await repo.lock_member_changes(conn, tenant_id)
            await self._still_acting(conn, principal)
            member = await repo.insert(
                conn,
                tenant_id,
                user,
                new_role,
                status=MemberStatus.INVITED,
                invited_by=principal.actor,
            )
            if member is None:
                raise Conflict(
                    f"user {user} is already a member or invited", field="external_user_id"
                )
            await record_change(
                conn,
                tenant_id=tenant_id,
                actor=principal.actor,
                action="member.invite",
                resource_type="member",
                resource_id=str(member.id),
                details={"after": _identity(member)},
            )
        return member

    async def update_role(self, principal: Principal, member_id: str, role: str) -> Member:
        principal.authorize(ops.UPDATE_ROLE)
        tenant_id = principal.require_tenant()
        mid = parse_uuid(member_id, "member_id")
        new_role = parse_role(role)
        async with self._db.tenant_tx(tenant_id) as conn:
            await repo.lock_member_changes(conn, tenant_id)
            await self._still_acting(conn, principal)
            current = await self._modifiable(conn, principal, mid)
            if current.external_user_id == principal.external_user_id:
                raise PermissionDenied("nobody can change their own role")
            ensure_grantable(principal, ROLE_SCOPES[new_role])
            if current.role is Role.OWNER and new_role is not Role.OWNER:
                await self._keep_an_owner(conn, current)
            updated = await repo.set_role(conn, mid, new_role)
            await record_change(
                conn,
                tenant_id=tenant_id,
                actor=principal.actor,
                action="member.update_role",
                resource_type="member",
                resource_id=str(mid),
                details={"before": {"role": current.role.value}, "after": {"role": new_role.value}},
            )
            await revoke_member_keys(
                conn,
                tenant_id=tenant_id,
                actor=principal.actor,
                member_id=mid,
                allowed=ROLE_SCOPES[new_role],
                reason="owner demoted",
            )
        return updated

    async def remove(self, principal: Principal, member_id: str) -> None:
        principal.authorize(ops.REMOVE)
        tenant_id = principal.require_tenant()
        mid = parse_uuid(member_id, "member_id")
        async with self._db.tenant_tx(tenant_id) as conn:
            await repo.lock_member_changes(conn, tenant_id)
            await self._still_acting(conn, principal)
            current = await self._modifiable(conn, principal, mid)
            if current.role is Role.OWNER:
                await self._keep_an_owner(conn, current)
            await repo.delete(conn, mid)
            await record_change(
                conn,
                tenant_id=tenant_id,
                actor=principal.actor,
                action="member.remove",
                resource_type="member",
                resource_id=str(mid),
                details={"before": _identity(current)},
            )
            await revoke_member_keys(
                conn,
                tenant_id=tenant_id,
                actor=principal.actor,
                member_id=mid,
                allowed=frozenset(),
                reason="owner removed",
            )

    async def _still_acting(self, conn: repo.Conn, principal: Principal) -> None:
        """Under the tenant's lock: a signed-in member acting must still hold the role the
        request was authorised with (a concurrent change may have removed or demoted them)."""
        if principal.kind is not PrincipalKind.MEMBER or principal.member_id is None:
            return
        me = await repo.get(conn, principal.member_id)
        if me is None or ROLE_SCOPES[me.role] != principal.scopes:
            raise Conflict("the caller's membership changed during the request; retry")

    async def _modifiable(
        self, conn: repo.Conn, principal: Principal, member_id: uuid.UUID
    ) -> Member:
        member = await repo.get(conn, member_id, for_update=True)
        if member is None:
            raise NotFound(f"member {member_id} not found")
        # Acting on a member means holding every scope of their role: an admin cannot
        # demote or remove an owner.
        ensure_grantable(principal, ROLE_SCOPES[member.role])
        return member

    async def _keep_an_owner(self, conn: repo.Conn, leaving: Member) -> None:
        if leaving.status is MemberStatus.ACTIVE and await repo.count_active_owners(conn) <= 1:
            raise Conflict("the last owner cannot be removed or demoted")
