"""All SQL for API keys. Tenant reads run inside ``Database.tenant_tx``."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from fulcrum.api_keys.models import ApiKey
from fulcrum.auth.scopes import Scope
from fulcrum.kit.pagination import Cursor, after_clause

Conn = AsyncConnection[TupleRow]

_COLUMNS = (
    "id, tenant_id, name, scopes, created_at, created_by, expires_at, revoked_at, "
    "last_used_at, rotated_from, owner_member_id, service"
)


def _key(row: TupleRow) -> ApiKey:
    return ApiKey(
        id=row[0],
        tenant_id=row[1],
        name=row[2],
        scopes=frozenset(Scope(s) for s in row[3]),
        created_at=row[4],
        created_by=row[5],
        expires_at=row[6],
        revoked_at=row[7],
        last_used_at=row[8],
        rotated_from=row[9],
        owner_member_id=row[10],
        service=row[11],
    )


async def insert(
    conn: Conn,
    *,
    tenant_id: uuid.UUID,
    key_id: str,
    name: str,
    key_hash: bytes,
    scopes: Iterable[Scope],
    created_by: str,
    expires_at: dt.datetime | None,
    owner_member_id: uuid.UUID | None,
    service: bool,
    rotated_from: str | None = None,
) -> ApiKey:
    cur = await conn.execute(
        f"""
        INSERT INTO api_keys
            (tenant_id, id, name, hash, scopes, created_by, expires_at, rotated_from,
             owner_member_id, service)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        RETURNING {_COLUMNS}
        """,
        (
            tenant_id,
            key_id,
            name,
            key_hash,
            sorted(str(s) for s in scopes),
            created_by,
            expires_at,
            rotated_from,
            owner_member_id,
            service,
        ),
    )
    row = await cur.fetchone()
    assert row is not None
    return _key(row)


async def get(conn: Conn, key_id: str, *, for_update: bool = False) -> ApiKey | None:
    lock = " FOR UPDATE" if for_update else ""
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE id = %s{lock}", (key_id,))
    row = await cur.fetchone()
    return _key(row) if row else None


async def list_page(conn: Conn, after: Cursor | None, limit: int) -> list[ApiKey]:
    where, params = after_clause(after, "text")
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM api_keys WHERE {where} ORDER BY created_at, id LIMIT %s",
        (*params, limit),
    )
    return [_key(row) for row in await cur.fetchall()]


async def revoke(conn: Conn, key_id: str) -> ApiKey:
    cur = await conn.execute(
        f"""
        UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s
        RETURNING {_COLUMNS}
        """,
        (key_id,),
    )
    row = await cur.fetchone()
    assert row is not None
    return _key(row)


async def revoke_owned(
    conn: Conn, owner_member_id: uuid.UUID, allowed: frozenset[Scope]
) -> list[ApiKey]:
    """Revoke the member's live keys holding any scope outside ``allowed``; return them."""
    cur = await conn.execute(
        f"""
        UPDATE api_keys SET revoked_at = now()
        WHERE owner_member_id = %s AND NOT service AND revoked_at IS NULL
          AND NOT scopes <@ %s::text[]
        RETURNING {_COLUMNS}
        """,
        (owner_member_id, sorted(str(s) for s in allowed)),
    )
    return [_key(row) for row in await cur.fetchall()]


async def expire_at(conn: Conn, key_id: str, when: dt.datetime) -> ApiKey:
    cur = await conn.execute(
        f"""
        UPDATE api_keys SET expires_at = least(coalesce(expires_at, %s), %s) WHERE id = %s
        RETURNING {_COLUMNS}
        """,
        (when, when, key_id),
    )
    row = await cur.fetchone()
    assert row is not None
    return _key(row)


async def insert_platform_key(conn: Conn, key_id: str, name: str, key_hash: bytes) -> None:
    await conn.execute(
        "INSERT INTO platform_api_keys (id, name, hash) VALUES (%s, %s, %s)",
        (key_id, name, key_hash),
    )


async def touch_last_used(conn: Conn, used: dict[str, dt.datetime]) -> None:
    """Batch-write last-used times of the transaction's tenant's keys in one statement
    (platform keys: the database's ``fulcrum_platform_check`` keeps theirs)."""
    await conn.execute(
        """
        UPDATE api_keys k SET last_used_at = greatest(k.last_used_at, u.at)
        FROM unnest(%s::text[], %s::timestamptz[]) AS u(id, at)
        WHERE k.id = u.id
        """,
        (list(used), list(used.values())),
    )
