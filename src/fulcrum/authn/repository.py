"""Authentication's reads: one presented key's record, with what decides whether it works
(its tenant's status and limits, its owner's role). The hash never leaves this module and
the authenticator's cache."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from fulcrum.auth.limits import RateLimits
from fulcrum.auth.scopes import ROLE_SCOPES, Role, Scope
from fulcrum.kit.db import CURRENT_TENANT, enter_tenant
from fulcrum.tenants import repository as tenants_repo
from fulcrum.tenants.models import TenantStatus

Conn = AsyncConnection[TupleRow]


@dataclass(frozen=True)
class StoredCredential:
    """What authentication needs to check one presented key."""

    id: str
    tenant_id: uuid.UUID
    hash: bytes
    scopes: frozenset[Scope]
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    tenant_active: bool
    limits: RateLimits | None = None
    service: bool = True  # platform keys and tenant service keys belong to no member
    owner_member_id: uuid.UUID | None = None
    owner_role: Role | None = None  # the owner's role while they are an active member
    revision: int = 0  # the tenant's credential revision when this was read (migration 0010)

    @property
    def owner_allows(self) -> bool:
        """A member's key works only while its owner is active and holds all its scopes."""
        if self.service:
            return True
        return self.owner_role is not None and self.scopes <= ROLE_SCOPES[self.owner_role]


async def credential_of(conn: Conn, key_id: str) -> StoredCredential | None:
    """Authentication lookup: the caller's transaction has set ``fulcrum.api_key_id``."""
    cur = await conn.execute(
        "SELECT id, tenant_id, hash, scopes, expires_at, revoked_at, service, owner_member_id "
        "FROM api_keys WHERE id = %s",
        (key_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    await enter_tenant(conn, row[1])
    tenant = await tenants_repo.get(conn, row[1])
    cur = await conn.execute(f"SELECT credential_revision FROM tenants WHERE id = {CURRENT_TENANT}")
    revision = await cur.fetchone()
    owner_role = None
    if not row[6] and row[7] is not None:
        # Checked here, within the key cache's TTL, as well as by revoking the keys in the
        # transaction that removes or demotes the member.
        cur = await conn.execute(
            "SELECT role FROM members WHERE id = %s AND status = 'active'", (row[7],)
        )
        owner = await cur.fetchone()
        owner_role = Role(owner[0]) if owner else None
    return StoredCredential(
        id=row[0],
        tenant_id=row[1],
        hash=bytes(row[2]),
        scopes=frozenset(Scope(s) for s in row[3]),
        expires_at=row[4],
        revoked_at=row[5],
        tenant_active=tenant is not None and tenant.status is TenantStatus.ACTIVE,
        limits=tenant.limits if tenant else None,
        service=row[6],
        owner_member_id=row[7],
        owner_role=owner_role,
        revision=revision[0] if revision else 0,
    )


async def credential_revisions(conn: Conn, tenant_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """The credential revisions of several tenants at once (``fulcrum_credential_revisions``):
    a tenant's moves whenever anything a key check reads changes."""
    cur = await conn.execute("SELECT * FROM fulcrum_credential_revisions(%s)", (tenant_ids,))
    return {tenant_id: revision for tenant_id, revision in await cur.fetchall()}
