"""All SQL for tenants. Cross-tenant reads need ``fulcrum.platform_admin = on``."""

from __future__ import annotations

import uuid

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from fulcrum.kit.pagination import Cursor
from fulcrum.tenants.models import Tenant, TenantStatus

Conn = AsyncConnection[TupleRow]
_COLUMNS = "id, name, status, created_at, clerk_org_id"


def _tenant(row: TupleRow) -> Tenant:
    return Tenant(row[0], row[1], TenantStatus(row[2]), row[3], row[4])


async def insert(conn: Conn, tenant_id: uuid.UUID, name: str) -> Tenant | None:
    cur = await conn.execute(
        f"""
        INSERT INTO tenants (id, name) VALUES (%s, %s)
        ON CONFLICT (name) DO NOTHING RETURNING {_COLUMNS}
        """,
        (tenant_id, name),
    )
    row = await cur.fetchone()
    return _tenant(row) if row else None


async def get(conn: Conn, tenant_id: uuid.UUID) -> Tenant | None:
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM tenants WHERE id = %s", (tenant_id,))
    row = await cur.fetchone()
    return _tenant(row) if row else None


async def by_clerk_org(conn: Conn, org_id: str) -> Tenant | None:
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM tenants WHERE clerk_org_id = %s", (org_id,))
    row = await cur.fetchone()
    return _tenant(row) if row else None


async def list_page(conn: Conn, after: Cursor | None, limit: int) -> list[Tenant]:
    if after is None:
        cur = await conn.execute(
            f"SELECT {_COLUMNS} FROM tenants ORDER BY created_at, id LIMIT %s", (limit,)
        )
    else:
        cur = await conn.execute(
            f"""
            SELECT {_COLUMNS} FROM tenants WHERE (created_at, id) > (%s, %s::uuid)
            ORDER BY created_at, id LIMIT %s
            """,
            (after.created_at, after.id, limit),
        )
    return [_tenant(row) for row in await cur.fetchall()]


async def set_status(conn: Conn, tenant_id: uuid.UUID, status: TenantStatus) -> Tenant | None:
    cur = await conn.execute(
        f"UPDATE tenants SET status = %s WHERE id = %s RETURNING {_COLUMNS}",
        (status.value, tenant_id),
    )
    row = await cur.fetchone()
    return _tenant(row) if row else None
