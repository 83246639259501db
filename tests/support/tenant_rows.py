"""Everything a tenant owns in PostgreSQL, as one comparable value, read as the superuser.

Fuzzers compare it before and after each call the server refused: a refused call must
change nothing. Every table with a ``tenant_id`` column is read (found in the catalog, so a
new table is covered without editing this), and the tenant's own ``tenants`` row.
``api_keys.last_used_at`` is written in the background by the API's batch flush, so it is
not a change.
"""

from __future__ import annotations

import uuid
from types import TracebackType

import psycopg
from psycopg import sql

from tests.support.stack import LiveStack

_TABLES = """
SELECT c.relname FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname
"""


def _digest(table: str, owner: str) -> sql.Composed:
    return sql.SQL(
        "SELECT {name}, count(*), coalesce(md5(string_agg(md5((to_jsonb(t) - 'last_used_at')"
        "::text), ',' ORDER BY md5((to_jsonb(t) - 'last_used_at')::text))), '') "
        "FROM {table} t WHERE {owner} = %(tenant)s"
    ).format(name=sql.Literal(table), table=sql.Identifier(table), owner=sql.Identifier(owner))


class TenantRows:
    def __init__(self, stack: LiveStack) -> None:
        self._conn = psycopg.connect(stack.superuser_dsn(), autocommit=True)
        tables = [row[0] for row in self._conn.execute(_TABLES).fetchall()]
        assert {"api_keys", "members", "policies", "audit_events"} <= set(tables), tables
        parts = [_digest("tenants", "id"), *(_digest(t, "tenant_id") for t in tables)]
        self._query = sql.SQL(" UNION ALL ").join(parts)

    def snapshot(self, tenant_id: uuid.UUID) -> tuple[tuple[object, ...], ...]:
        return tuple(
            tuple(row) for row in self._conn.execute(self._query, {"tenant": tenant_id}).fetchall()
        )

    def __enter__(self) -> TenantRows:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._conn.close()
