"""Records administrative changes in the append-only ``audit_events`` table.

The record is written in the same transaction as the change it describes, so a change
without its record (or a record without its change) cannot exist.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from fulcrum.kit.tracing import current_trace_id, new_trace


async def record_change(
    conn: AsyncConnection[TupleRow],
    *,
    tenant_id: uuid.UUID,
    actor: str,
    action: str,
    resource_type: str,
    resource_id: str,
    details: dict[str, Any] | None = None,
) -> None:
    trace_id = current_trace_id.get() or new_trace().trace_id
    await conn.execute(
        """
        INSERT INTO audit_events
            (tenant_id, trace_id, actor, action, resource_type, resource_id, details)
        VALUES (%s, %s, %s, %s, %s, %s, %s)
        """,
        (tenant_id, trace_id, actor, action, resource_type, resource_id, Jsonb(details or {})),
    )
