"""All SQL for policies and their versions."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from fulcrum.kit.db import CURRENT_TENANT
from fulcrum.kit.pagination import Cursor
from fulcrum.policies.models import ActivePolicySet, Policy, PolicyStatus, PolicyVersion

Conn = AsyncConnection[TupleRow]

_SELECT = """
    SELECT p.id, p.tenant_id, p.name, p.status, p.mode, p.priority, p.current_version,
           p.created_at, p.updated_at, v.document
    FROM policies p
    JOIN policy_versions v
      ON v.tenant_id = p.tenant_id AND v.policy_id = p.id AND v.version = p.current_version
"""


def _policy(row: TupleRow) -> Policy:
    return Policy(
        id=row[0],
        tenant_id=row[1],
        name=row[2],
        status=PolicyStatus(row[3]),
        mode=row[4],
        priority=row[5],
        current_version=row[6],
        created_at=row[7],
        updated_at=row[8],
        document=row[9],
    )


async def get(conn: Conn, policy_id: uuid.UUID, *, for_update: bool = False) -> Policy | None:
    lock = " FOR UPDATE OF p" if for_update else ""
    cur = await conn.execute(
        f"{_SELECT} WHERE p.id = %s AND p.status <> 'deleted'{lock}", (policy_id,)
    )
    row = await cur.fetchone()
    return _policy(row) if row else None


async def list_page(
    conn: Conn, after: Cursor | None, limit: int, status: PolicyStatus | None
) -> list[Policy]:
    clauses = ["p.status <> 'deleted'"]
    params: list[Any] = []
    if status is not None:
        clauses.append("p.status = %s")
        params.append(status.value)
    if after is not None:
        clauses.append("(p.created_at, p.id) > (%s, %s::uuid)")
        params += [after.created_at, after.id]
    cur = await conn.execute(
        f"{_SELECT} WHERE {' AND '.join(clauses)} ORDER BY p.created_at, p.id LIMIT %s",
        (*params, limit),
    )
    return [_policy(row) for row in await cur.fetchall()]


async def name_taken(conn: Conn, name: str, except_id: uuid.UUID | None = None) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM policies WHERE name = %s AND status <> 'deleted' AND id IS DISTINCT FROM %s",
        (name, except_id),
    )
    return await cur.fetchone() is not None


async def insert(
    conn: Conn,
    *,
    tenant_id: uuid.UUID,
    name: str,
    mode: str,
    priority: int,
    document: dict[str, Any],
    author: str,
) -> uuid.UUID:
    cur = await conn.execute(
        """
        INSERT INTO policies (tenant_id, name, mode, priority, current_version)
        VALUES (%s, %s, %s, %s, 1) RETURNING id
        """,
        (tenant_id, name, mode, priority),
    )
    row = await cur.fetchone()
    assert row is not None
    await insert_version(
        conn, tenant_id=tenant_id, policy_id=row[0], version=1, document=document, author=author
    )
    return uuid.UUID(str(row[0]))


async def insert_version(
    conn: Conn,
    *,
    tenant_id: uuid.UUID,
    policy_id: uuid.UUID,
    version: int,
    document: dict[str, Any],
    author: str,
) -> None:
    await conn.execute(
        """
        INSERT INTO policy_versions (tenant_id, policy_id, version, document, author)
        VALUES (%s, %s, %s, %s, %s)
        """,
        (tenant_id, policy_id, version, Jsonb(document), author),
    )


async def set_current(
    conn: Conn, policy_id: uuid.UUID, *, version: int, name: str, mode: str, priority: int
) -> None:
    await conn.execute(
        """
        UPDATE policies SET current_version = %s, name = %s, mode = %s, priority = %s,
                            updated_at = now()
        WHERE id = %s
        """,
        (version, name, mode, priority, policy_id),
    )


async def set_status(conn: Conn, policy_id: uuid.UUID, status: PolicyStatus) -> None:
    await conn.execute(
        "UPDATE policies SET status = %s, updated_at = now() WHERE id = %s",
        (status.value, policy_id),
    )


async def get_version(conn: Conn, policy_id: uuid.UUID, version: int) -> PolicyVersion | None:
    cur = await conn.execute(
        """
        SELECT v.policy_id, v.version, v.document, v.author, v.created_at
        FROM policy_versions v JOIN policies p ON p.tenant_id = v.tenant_id AND p.id = v.policy_id
        WHERE v.policy_id = %s AND v.version = %s AND p.status <> 'deleted'
        """,
        (policy_id, version),
    )
    row = await cur.fetchone()
    return PolicyVersion(row[0], row[1], row[2], row[3], row[4]) if row else None


async def bump_revision(conn: Conn) -> int:
    """Advance the tenant's policy revision (the transaction's tenant); return the new one."""
    cur = await conn.execute(
        "UPDATE tenants SET policy_revision = policy_revision + 1 "
        f"WHERE id = {CURRENT_TENANT} "
        "RETURNING policy_revision"
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def revision(conn: Conn) -> tuple[int, str] | None:
    cur = await conn.execute(
        f"SELECT policy_revision, default_action FROM tenants WHERE id = {CURRENT_TENANT}"
    )
    row = await cur.fetchone()
    return (int(row[0]), str(row[1])) if row else None


async def active_set(conn: Conn) -> ActivePolicySet | None:
    """The transaction's tenant's active policies.

    The revision is read first, so the label is never newer than the content: a change
    landing in between only causes one extra reload when its notification arrives.
    """
    current = await revision(conn)
    if current is None:
        return None
    cur = await conn.execute(
        """
        SELECT v.policy_id, v.version, v.document, v.author, v.created_at
        FROM policies p JOIN policy_versions v
          ON v.tenant_id = p.tenant_id AND v.policy_id = p.id AND v.version = p.current_version
        WHERE p.status = 'active'
        ORDER BY p.id
        """
    )
    rows = await cur.fetchall()
    return ActivePolicySet(
        revision=current[0],
        default_action=current[1],
        policies=[PolicyVersion(r[0], r[1], r[2], r[3], r[4]) for r in rows],
    )


async def set_default_action(conn: Conn, action: str) -> None:
    await conn.execute(
        f"UPDATE tenants SET default_action = %s WHERE id = {CURRENT_TENANT}",
        (action,),
    )


async def revisions(conn: Conn, tenant_ids: list[uuid.UUID]) -> list[tuple[uuid.UUID, int]]:
    """The policy revisions of several tenants at once (``fulcrum_policy_revisions``)."""
    cur = await conn.execute("SELECT * FROM fulcrum_policy_revisions(%s)", (tenant_ids,))
    return [(row[0], int(row[1])) for row in await cur.fetchall()]
