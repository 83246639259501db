"""All SQL for members."""

from __future__ import annotations

import uuid

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from fulcrum.auth.scopes import Role
from fulcrum.kit.db import CURRENT_TENANT
from fulcrum.kit.pagination import Cursor, after_clause
from fulcrum.members.models import Member, MemberStatus

Conn = AsyncConnection[TupleRow]
_COLUMNS = "id, tenant_id, external_user_id, role, created_at, status, invited_by"
MAX_INVITATIONS = 100


def _member(row: TupleRow) -> Member:
    return Member(row[0], row[1], row[2], Role(row[3]), row[4], MemberStatus(row[5]), row[6])


async def get(conn: Conn, member_id: uuid.UUID, *, for_update: bool = False) -> Member | None:
    lock = " FOR UPDATE" if for_update else ""
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM members WHERE id = %s{lock}", (member_id,))
    row = await cur.fetchone()
    return _member(row) if row else None


async def find_by_user(conn: Conn, external_user_id: str) -> list[Member]:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM members WHERE external_user_id = %s ORDER BY created_at",
        (external_user_id,),
    )
    return [_member(row) for row in await cur.fetchall()]


async def list_page(conn: Conn, after: Cursor | None, limit: int) -> list[Member]:
    where, params = after_clause(after)
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM members WHERE {where} ORDER BY created_at, id LIMIT %s",
        (*params, limit),
    )
    return [_member(row) for row in await cur.fetchall()]


async def invitations_of(conn: Conn, external_user_id: str) -> list[Member]:
    """The user's pending invitations in every tenant: the caller's transaction has set
    ``fulcrum.external_user_id`` (the ``member_lookup`` policy) and no tenant."""
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM members WHERE external_user_id = %s AND status = 'invited' "
        "ORDER BY created_at, id LIMIT %s",
        (external_user_id, MAX_INVITATIONS),
    )
    return [_member(row) for row in await cur.fetchall()]


async def tenant_name(conn: Conn) -> str | None:
    """The name of the transaction's tenant, which an invited user is shown."""
    cur = await conn.execute(f"SELECT name FROM tenants WHERE id = {CURRENT_TENANT}")
    row = await cur.fetchone()
    return str(row[0]) if row else None


async def insert(
    conn: Conn,
    tenant_id: uuid.UUID,
    external_user_id: str,
    role: Role,
    *,
    status: MemberStatus = MemberStatus.ACTIVE,
    invited_by: str | None = None,
) -> Member | None:
    """Insert; None when the user is already a member (or invited)."""
    cur = await conn.execute(
        f"""
        INSERT INTO members (tenant_id, external_user_id, role, status, invited_by)
        VALUES (%s, %s, %s, %s, %s)
        ON CONFLICT (tenant_id, external_user_id) DO NOTHING
        RETURNING {_COLUMNS}
        """,
        (tenant_id, external_user_id, role.value, status.value, invited_by),
    )
    row = await cur.fetchone()
    return _member(row) if row else None


async def set_role(conn: Conn, member_id: uuid.UUID, role: Role) -> Member:
    cur = await conn.execute(
        f"UPDATE members SET role = %s WHERE id = %s RETURNING {_COLUMNS}", (role.value, member_id)
    )
    row = await cur.fetchone()
    assert row is not None
    return _member(row)


async def activate(conn: Conn, member_id: uuid.UUID) -> Member:
    cur = await conn.execute(
        f"UPDATE members SET status = 'active' WHERE id = %s RETURNING {_COLUMNS}", (member_id,)
    )
    row = await cur.fetchone()
    assert row is not None
    return _member(row)


async def delete(conn: Conn, member_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM members WHERE id = %s", (member_id,))


async def lock_member_changes(conn: Conn, tenant_id: uuid.UUID) -> None:
    """Serialise the tenant's membership changes until the transaction ends.

    Taken before any member row is locked, so two changes never hold one row each while
    waiting for the other's (two owners removing each other deadlocked that way)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('fulcrum.members:' || %s::text, 0))",
        (tenant_id,),
    )


async def count_active_owners(conn: Conn) -> int:
    """Active owners of the tenant; call under :func:`lock_member_changes`."""
    cur = await conn.execute(
        "SELECT count(*) FROM members WHERE role = 'owner' AND status = 'active'"
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])
