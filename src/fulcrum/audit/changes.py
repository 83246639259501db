"""Records administrative changes in the append-only ``audit_events`` table.

The record is written in the same transaction as the change it describes, so a change
without its record (or a record without its change) cannot exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from fulcrum.kit.tracing import current_trace_id, new_trace

CHANGES_CHANNEL = "fulcrum_changes"  # LISTEN/NOTIFY channel; the payload is a tenant id


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
    await record_changes(
        conn,
        tenant_id=tenant_id,
        actor=actor,
        action=action,
        resource_type=resource_type,
        targets=[(trace_id, resource_id)],
        details=details,
    )


async def record_changes(
    conn: AsyncConnection[TupleRow],
    *,
    tenant_id: uuid.UUID,
    actor: str,
    action: str,
    resource_type: str,
    targets: Sequence[tuple[str, str]],
    outcome: str = "success",
    details: dict[str, Any] | None = None,
) -> None:
    """One change per ``(trace id, resource id)`` of ``targets``, in one statement."""
    await conn.execute(
        """
        INSERT INTO audit_events
            (tenant_id, trace_id, actor, action, resource_type, resource_id, outcome, details)
        SELECT %s, t, %s, %s, %s, r, %s, %s FROM unnest(%s::text[], %s::text[]) AS u(t, r)
        """,
        (
            tenant_id,
            actor,
            action,
            resource_type,
            outcome,
            Jsonb(details or {}),
            [trace_id for trace_id, _ in targets],
            [resource_id for _, resource_id in targets],
        ),
    )
    await notify_changes(conn, tenant_id)


async def notify_changes(conn: AsyncConnection[TupleRow], tenant_id: uuid.UUID) -> None:
    """Tell the worker's relay, on commit, that this tenant has changes to publish (PostgreSQL
    delivers the notification only if the transaction commits)."""
    await conn.execute("SELECT pg_notify(%s, %s)", (CHANGES_CHANNEL, str(tenant_id)))
