"""All SQL for tenants. Cross-tenant reads and writes need a platform transaction
(``Database.platform_tx``); a tenant's own transaction sees only its row."""

from __future__ import annotations

import uuid

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from fulcrum.auth.limits import ceiling_limits, effective_limits
from fulcrum.kit.db import CURRENT_TENANT
from fulcrum.kit.pagination import Cursor, after_clause
from fulcrum.tenants.models import Tenant, TenantStatus

Conn = AsyncConnection[TupleRow]
_COLUMNS = (
    "id, name, status, created_at, clerk_org_id, plan, rate_limit_per_second, "
    "rate_limit_burst, key_rate_limit_per_second, key_rate_limit_burst, default_action, "
    "limit_per_second, limit_burst, key_limit_per_second, key_limit_burst"
)
# The platform's custom ceilings (migration 0009), by API field.
CEILING_COLUMNS = {
    "per_second": "limit_per_second",
    "burst": "limit_burst",
    "key_per_second": "key_limit_per_second",
    "key_burst": "key_limit_burst",
}


def _tenant(row: TupleRow) -> Tenant:
    ceiling = ceiling_limits(row[5], *row[11:15])
    return Tenant(
        id=row[0],
        name=row[1],
        status=TenantStatus(row[2]),
        created_at=row[3],
        clerk_org_id=row[4],
        limits=effective_limits(*row[5:10], ceiling=ceiling),
        plan=row[5],
        default_action=row[10],
        ceiling=ceiling,
        custom_limits=any(value is not None for value in row[11:15]),
    )


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


async def current(conn: Conn) -> Tenant | None:
    """The tenant named by the transaction's ``fulcrum.tenant_id``."""
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM tenants WHERE id = {CURRENT_TENANT}")
    row = await cur.fetchone()
    return _tenant(row) if row else None


async def by_name(conn: Conn, name: str) -> Tenant | None:
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM tenants WHERE name = %s", (name,))
    row = await cur.fetchone()
    return _tenant(row) if row else None


async def by_clerk_org(conn: Conn, org_id: str) -> Tenant | None:
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM tenants WHERE clerk_org_id = %s", (org_id,))
    row = await cur.fetchone()
    return _tenant(row) if row else None


async def list_page(conn: Conn, after: Cursor | None, limit: int) -> list[Tenant]:
    where, params = after_clause(after)
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM tenants WHERE {where} ORDER BY created_at, id LIMIT %s",
        (*params, limit),
    )
    return [_tenant(row) for row in await cur.fetchall()]


async def set_status(conn: Conn, tenant_id: uuid.UUID, status: TenantStatus) -> Tenant | None:
    cur = await conn.execute(
        f"UPDATE tenants SET status = %s WHERE id = %s RETURNING {_COLUMNS}",
        (status.value, tenant_id),
    )
    row = await cur.fetchone()
    return _tenant(row) if row else None


async def set_rate_overrides(conn: Conn, overrides: dict[str, float | int | None]) -> None:
    """Set the transaction's tenant's rate-limit override columns (names are fixed)."""
    allowed = {
        "rate_limit_per_second",
        "rate_limit_burst",
        "key_rate_limit_per_second",
        "key_rate_limit_burst",
    }
    assert set(overrides) <= allowed
    if not overrides:
        return
    assignments = ", ".join(f"{column} = %s" for column in overrides)
    await conn.execute(
        f"UPDATE tenants SET {assignments} WHERE id = {CURRENT_TENANT}",
        tuple(overrides.values()),
    )


async def set_plan(conn: Conn, tenant_id: uuid.UUID, plan: str) -> Tenant | None:
    """Platform transactions only (the guard trigger of migration 0007)."""
    cur = await conn.execute(
        f"UPDATE tenants SET plan = %s WHERE id = %s RETURNING {_COLUMNS}", (plan, tenant_id)
    )
    row = await cur.fetchone()
    return _tenant(row) if row else None


async def set_ceilings(
    conn: Conn, tenant_id: uuid.UUID, ceilings: dict[str, float | int | None]
) -> Tenant | None:
    """Set the named custom ceilings (None: back to the plan's); platform transactions only
    (the guard trigger, as extended by migration 0009)."""
    assignments = ", ".join(f"{CEILING_COLUMNS[name]} = %s" for name in ceilings)
    cur = await conn.execute(
        f"UPDATE tenants SET {assignments} WHERE id = %s RETURNING {_COLUMNS}",
        (*ceilings.values(), tenant_id),
    )
    row = await cur.fetchone()
    return _tenant(row) if row else None
