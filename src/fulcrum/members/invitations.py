"""A signed-in user's own invitations: list, accept, decline (scope ``invitations:respond``).

The user has no tenant yet, so each transaction finds the invitation through the
``member_lookup`` policy (``fulcrum.external_user_id``) and only then names its tenant,
under which the change and its audit record are written.
"""

from __future__ import annotations

import uuid

from fulcrum.audit.outbox import record_change
from fulcrum.auth.operations import Operation
from fulcrum.auth.principal import Principal
from fulcrum.kit.db import USER_GUC, Database, enter_tenant
from fulcrum.kit.errors import NotFound, PermissionDenied
from fulcrum.kit.validation import parse_uuid
from fulcrum.members import operations as ops
from fulcrum.members import repository as repo
from fulcrum.members.models import Invitation, Member, MemberStatus


def _user(principal: Principal, operation: Operation) -> str:
    principal.authorize(operation)
    if principal.external_user_id is None:
        raise PermissionDenied("invitations belong to signed-in users")
    return principal.external_user_id


async def activate(
    conn: repo.Conn, invited: Member, *, actor: str, via: dict[str, str] | None = None
) -> Member:
    """Make ``invited`` an active member, with its audit record, in the caller's transaction
    (which has entered the invitation's tenant). ``via``: what vouched for the user when it
    was not their own answer (their Clerk organisation)."""
    member = await repo.activate(conn, invited.id)
    details: dict[str, object] = {
        "before": {"status": invited.status.value},
        "after": {"status": member.status.value, "role": member.role.value},
    }
    if via is not None:
        details["via"] = via
    await record_change(
        conn,
        tenant_id=invited.tenant_id,
        actor=actor,
        action="member.accept_invitation",
        resource_type="member",
        resource_id=str(invited.id),
        details=details,
    )
    return member


async def accept_for_organisation(conn: repo.Conn, invited: Member, org_id: str) -> Member:
    """Accept ``invited`` for a token of the tenant's Clerk organisation, audited, in the
    caller's transaction (which has entered the tenant): the organisation vouches for the
    user."""
    await repo.lock_member_changes(conn, invited.tenant_id)
    current = await repo.get(conn, invited.id, for_update=True)
    if current is None or current.status is not MemberStatus.INVITED:
        return current or invited
    return await activate(
        conn,
        current,
        actor=f"user:{invited.external_user_id}",
        via={"clerk_org_id": org_id},
    )


class InvitationService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list_mine(self, principal: Principal) -> list[Invitation]:
        user = _user(principal, ops.LIST_INVITATIONS)
        async with self._db.tx({USER_GUC: user}) as conn:
            pending = await repo.invitations_of(conn, user)
            found = []
            for member in pending:
                await _enter(conn, member.tenant_id)
                name = await repo.tenant_name(conn)
                if name is not None:
                    found.append(Invitation(member, name))
        return found

    async def accept(self, principal: Principal, invitation_id: str) -> Member:
        user = _user(principal, ops.ACCEPT_INVITATION)
        async with self._db.tx({USER_GUC: user}) as conn:
            invited = await _pending(conn, user, parse_uuid(invitation_id, "invitation_id"))
            return await activate(conn, invited, actor=principal.actor)

    async def decline(self, principal: Principal, invitation_id: str) -> None:
        user = _user(principal, ops.DECLINE_INVITATION)
        async with self._db.tx({USER_GUC: user}) as conn:
            invited = await _pending(conn, user, parse_uuid(invitation_id, "invitation_id"))
            await repo.delete(conn, invited.id)
            await record_change(
                conn,
                tenant_id=invited.tenant_id,
                actor=principal.actor,
                action="member.decline_invitation",
                resource_type="member",
                resource_id=str(invited.id),
                details={
                    "before": {
                        "external_user_id": user,
                        "role": invited.role.value,
                        "status": invited.status.value,
                    }
                },
            )


async def _enter(conn: repo.Conn, tenant_id: uuid.UUID) -> None:
    """Name the invitation's tenant for the rest of the transaction (row-level security)."""
    await enter_tenant(conn, tenant_id)


async def _pending(conn: repo.Conn, user: str, invitation_id: uuid.UUID) -> Member:
    """The user's pending invitation ``invitation_id``, locked (after the tenant's member
    lock, the order every membership change takes), with its tenant entered."""
    for member in await repo.invitations_of(conn, user):
        if member.id == invitation_id:
            await _enter(conn, member.tenant_id)
            await repo.lock_member_changes(conn, member.tenant_id)
            locked = await repo.get(conn, member.id, for_update=True)
            if locked is not None and locked.status is MemberStatus.INVITED:
                return locked
    raise NotFound(f"invitation {invitation_id} not found")
