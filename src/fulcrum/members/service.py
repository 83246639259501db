"""Member management: no escalation, no self-promotion, never without an owner."""

from __future__ import annotations

import re
import uuid

from fulcrum.api_keys.service import ensure_grantable
from fulcrum.audit.changes import record_change
from fulcrum.auth.principal import Principal
from fulcrum.auth.scopes import ROLE_SCOPES, Role, Scope, parse_role
from fulcrum.kit.db import Database
from fulcrum.kit.errors import Conflict, InvalidArgument, NotFound, PermissionDenied
from fulcrum.kit.pagination import Cursor, decode_cursor, page_size, paginate
from fulcrum.kit.validation import parse_uuid
from fulcrum.members import repository as repo
from fulcrum.members.models import Member

_USER_ID = re.compile(r"^[A-Za-z0-9_\-.:@|]{1,200}$")


def parse_external_user_id(value: str, field: str = "external_user_id") -> str:
    if not isinstance(value, str) or not _USER_ID.match(value):
        raise InvalidArgument("must be 1-200 characters of letters, digits and _-.:@|", field=field)
    return value


class MemberService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list(
        self, principal: Principal, *, size: int | None, token: str | None
    ) -> tuple[list[Member], str]:
        principal.require(Scope.MEMBERS_READ)
        tenant_id = principal.require_tenant()
        limit = page_size(size)
        after = decode_cursor(token)
        if after is not None:
            parse_uuid(after.id, "page_token")
        async with self._db.tenant_tx(tenant_id) as conn:
            members = await repo.list_page(conn, after, limit + 1)
        return paginate(members, limit, lambda m: Cursor(m.created_at, str(m.id)))

    async def get(self, principal: Principal, member_id: str) -> Member:
        principal.require(Scope.MEMBERS_READ)
        tenant_id = principal.require_tenant()
        mid = parse_uuid(member_id, "member_id")
        async with self._db.tenant_tx(tenant_id) as conn:
            member = await repo.get(conn, mid)
        if member is None:
            raise NotFound(f"member {mid} not found")
        return member

    async def add(self, principal: Principal, *, external_user_id: str, role: str) -> Member:
        principal.require(Scope.MEMBERS_MANAGE)
        tenant_id = principal.require_tenant()
        user = parse_external_user_id(external_user_id)
        new_role = parse_role(role)
        ensure_grantable(principal, ROLE_SCOPES[new_role])
        async with self._db.tenant_tx(tenant_id) as conn:
            member = await repo.insert(conn, tenant_id, user, new_role)
            if member is None:
                raise Conflict(f"user {user} is already a member", field="external_user_id")
            await record_change(
                conn,
                tenant_id=tenant_id,
                actor=principal.actor,
                action="member.add",
                resource_type="member",
                resource_id=str(member.id),
                details={"after": {"external_user_id": user, "role": new_role.value}},
            )
        return member

    async def update_role(self, principal: Principal, member_id: str, role: str) -> Member:
        principal.require(Scope.MEMBERS_MANAGE)
        tenant_id = principal.require_tenant()
        mid = parse_uuid(member_id, "member_id")
        new_role = parse_role(role)
        async with self._db.tenant_tx(tenant_id) as conn:
            current = await self._modifiable(conn, principal, mid)
            if current.external_user_id == principal.external_user_id:
                raise PermissionDenied("nobody can change their own role")
            ensure_grantable(principal, ROLE_SCOPES[new_role])
            if current.role is Role.OWNER and new_role is not Role.OWNER:
                await self._keep_an_owner(conn)
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
        return updated

    async def remove(self, principal: Principal, member_id: str) -> None:
        principal.require(Scope.MEMBERS_MANAGE)
        tenant_id = principal.require_tenant()
        mid = parse_uuid(member_id, "member_id")
        async with self._db.tenant_tx(tenant_id) as conn:
            current = await self._modifiable(conn, principal, mid)
            if current.role is Role.OWNER:
                await self._keep_an_owner(conn)
            await repo.delete(conn, mid)
            await record_change(
                conn,
                tenant_id=tenant_id,
                actor=principal.actor,
                action="member.remove",
                resource_type="member",
                resource_id=str(mid),
                details={
                    "before": {
                        "external_user_id": current.external_user_id,
                        "role": current.role.value,
                    }
                },
            )

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

    async def _keep_an_owner(self, conn: repo.Conn) -> None:
        if await repo.lock_owners(conn) <= 1:
            raise Conflict("the last owner cannot be removed or demoted")
