"""All SQL for members."""

from __future__ import annotations

import uuid

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from fulcrum.auth.scopes import Role
from fulcrum.kit.pagination import Cursor, after_clause
from fulcrum.members.models import Member

Conn = AsyncConnection[TupleRow]
_COLUMNS = "id, tenant_id, external_user_id, role, created_at"


def _member(row: TupleRow) -> Member:
    return Member(row[0], row[1], row[2], Role(row[3]), row[4])


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


async def insert(
    conn: Conn, tenant_id: uuid.UUID, external_user_id: str, role: Role
) -> Member | None:
    """Insert; None when the user is already a member."""
    cur = await conn.execute(
        f"""
        INSERT INTO members (tenant_id, external_user_id, role) VALUES (%s, %s, %s)
        ON CONFLICT (tenant_id, external_user_id) DO NOTHING
        RETURNING {_COLUMNS}
        """,
        (tenant_id, external_user_id, role.value),
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


async def delete(conn: Conn, member_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM members WHERE id = %s", (member_id,))


async def lock_owners(conn: Conn) -> int:
    """Lock every owner row of the tenant (serialises last-owner checks); return the count."""
    cur = await conn.execute("SELECT id FROM members WHERE role = 'owner' FOR UPDATE")
    return len(await cur.fetchall())
