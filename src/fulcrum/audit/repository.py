"""All SQL for the ledger, its chain heads and checkpoints, and the decision time series.

Every function runs inside ``Database.tenant_tx``: RLS confines it to one tenant.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from fulcrum.audit.checkpoints import Checkpoint
from fulcrum.audit.records import (
    GENESIS_HASH,
    LedgerEntry,
    LedgerRecord,
    RecordKind,
    timestamp_text,
)
from fulcrum.events.codec import DecisionRow

Conn = AsyncConnection[TupleRow]
CURRENT_TENANT = "NULLIF(current_setting('fulcrum.tenant_id', true), '')::uuid"

RECORD_COLUMNS = (
    "tenant_id, seq, event_id, kind, occurred_at, trace_id, actor, action, resource_type, "
    "resource_id, outcome, agent_id, tool_name, details, prev_hash, hash"
)
# Records of a seq range, in order; for a server-side cursor (see audit.verification).
RANGE_QUERY = (
    f"SELECT {RECORD_COLUMNS} FROM audit_records WHERE seq >= %s "
    "AND (%s::bigint IS NULL OR seq <= %s) ORDER BY seq"
)
DECISION_COLUMNS = (
    "tenant_id, decided_at, decision_id, agent_id, tool_name, action, policy_id, "
    "policy_version, rule_id, matched, evaluation_ns, trace_id"
)


def record_from_row(row: TupleRow) -> LedgerRecord:
    entry = LedgerEntry(
        tenant_id=row[0],
        event_id=row[2],
        kind=RecordKind(row[3]),
        occurred_at=row[4],
        trace_id=row[5],
        actor=row[6],
        action=row[7],
        resource_type=row[8],
        resource_id=row[9],
        outcome=row[10],
        agent_id=row[11],
        tool_name=row[12],
        details=row[13],
    )
    return LedgerRecord(entry, int(row[1]), bytes(row[14]), bytes(row[15]))


async def lock_head(conn: Conn) -> tuple[int, bytes]:
    """The tenant's chain head, locked until commit: one writer per tenant at a time."""
    await conn.execute(
        f"INSERT INTO audit_chain_heads (tenant_id, seq, hash) VALUES ({CURRENT_TENANT}, 0, %s) "
        "ON CONFLICT (tenant_id) DO NOTHING",
        (GENESIS_HASH,),
    )
    cur = await conn.execute("SELECT seq, hash FROM audit_chain_heads FOR UPDATE")
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]), bytes(row[1])


async def set_head(conn: Conn, seq: int, hash_: bytes) -> None:
    await conn.execute(
        "UPDATE audit_chain_heads SET seq = %s, hash = %s, updated_at = now()", (seq, hash_)
    )


async def head(conn: Conn) -> tuple[int, bytes]:
    cur = await conn.execute("SELECT seq, hash FROM audit_chain_heads")
    row = await cur.fetchone()
    return (int(row[0]), bytes(row[1])) if row else (0, GENESIS_HASH)


async def existing_event_ids(conn: Conn, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    cur = await conn.execute(
        "SELECT event_id FROM audit_records WHERE event_id = ANY(%s)", (list(ids),)
    )
    return {row[0] for row in await cur.fetchall()}


async def insert_records(conn: Conn, records: Sequence[LedgerRecord]) -> None:
    """One INSERT of all rows, sent as a single JSON document: far cheaper to encode than
    one array per column (COPY is refused on tables under row-level security)."""
    rows = [
        {
            "tenant_id": str(r.entry.tenant_id),
            "seq": r.seq,
            "event_id": str(r.entry.event_id),
            "kind": r.entry.kind.value,
            "occurred_at": timestamp_text(r.entry.occurred_at),
            "trace_id": r.entry.trace_id,
            "actor": r.entry.actor,
            "action": r.entry.action,
            "resource_type": r.entry.resource_type,
            "resource_id": r.entry.resource_id,
            "outcome": r.entry.outcome,
            "agent_id": r.entry.agent_id,
            "tool_name": r.entry.tool_name,
            "details": r.entry.details,
            "prev_hash": r.prev_hash.hex(),
            "hash": r.hash.hex(),
        }
        for r in records
    ]
    await conn.execute(
        f"""
        INSERT INTO audit_records ({RECORD_COLUMNS})
        SELECT tenant_id, seq, event_id, kind, occurred_at, trace_id, actor, action,
               resource_type, resource_id, outcome, agent_id, tool_name, details,
               decode(prev_hash, 'hex'), decode(hash, 'hex')
        FROM jsonb_to_recordset(%s) AS r(
            tenant_id uuid, seq bigint, event_id uuid, kind text, occurred_at timestamptz,
            trace_id text, actor text, action text, resource_type text, resource_id text,
            outcome text, agent_id text, tool_name text, details jsonb, prev_hash text,
            hash text)
        """,
        (Jsonb(rows),),
    )


async def insert_decisions(conn: Conn, rows: Sequence[DecisionRow]) -> None:
    if not rows:
        return
    document = [
        {
            "tenant_id": str(d.tenant_id),
            "decided_at": timestamp_text(d.decided_at),
            "decision_id": str(d.decision_id),
            "agent_id": d.agent_id,
            "tool_name": d.tool_name,
            "action": d.action,
            "policy_id": d.policy_id,
            "policy_version": d.policy_version,
            "rule_id": d.rule_id,
            "matched": d.matched,
            "evaluation_ns": d.evaluation_ns,
            "trace_id": d.trace_id,
        }
        for d in rows
    ]
    await conn.execute(
        f"""
        INSERT INTO decisions ({DECISION_COLUMNS})
        SELECT {DECISION_COLUMNS} FROM jsonb_to_recordset(%s) AS r(
            tenant_id uuid, decided_at timestamptz, decision_id uuid, agent_id text,
            tool_name text, action text, policy_id text, policy_version integer,
            rule_id text, matched boolean, evaluation_ns bigint, trace_id text)
        """,
        (Jsonb(document),),
    )
    minutes = Counter((d.decided_at.replace(second=0, microsecond=0), d.action) for d in rows)
    await conn.execute(
        f"""
        INSERT INTO decision_rollups (tenant_id, minute, action, decisions)
        SELECT {CURRENT_TENANT}, m, a, n FROM unnest(%s::timestamptz[], %s::text[], %s::int[])
            AS u(m, a, n)
        ON CONFLICT (tenant_id, minute, action)
        DO UPDATE SET decisions = decision_rollups.decisions + EXCLUDED.decisions
        """,
        (
            [minute for minute, _ in minutes],
            [action for _, action in minutes],
            list(minutes.values()),
        ),
    )


async def last_checkpoint(conn: Conn) -> tuple[int, dt.datetime] | None:
    cur = await conn.execute(
        "SELECT seq, created_at FROM audit_checkpoints ORDER BY seq DESC LIMIT 1"
    )
    row = await cur.fetchone()
    return (int(row[0]), row[1]) if row else None


async def insert_checkpoint(conn: Conn, cp: Checkpoint) -> None:
    await conn.execute(
        """
        INSERT INTO audit_checkpoints (tenant_id, seq, hash, created_at, key_id, signature)
        VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (tenant_id, seq) DO NOTHING
        """,
        (cp.tenant_id, cp.seq, cp.hash, cp.created_at, cp.key_id, cp.signature),
    )


async def stream_records(
    conn: Conn, from_seq: int, to_seq: int | None, batch: int = 2000
) -> AsyncIterator[LedgerRecord]:
    """Records in seq order, fetched in pages so millions stream in constant memory."""
    after = from_seq - 1
    while True:
        cur = await conn.execute(
            f"SELECT {RECORD_COLUMNS} FROM audit_records WHERE seq > %s "
            "AND (%s::bigint IS NULL OR seq <= %s) ORDER BY seq LIMIT %s",
            (after, to_seq, to_seq, batch),
        )
        rows = await cur.fetchall()
        for row in rows:
            yield record_from_row(row)
        if len(rows) < batch:
            return
        after = int(rows[-1][1])


async def record_at(conn: Conn, seq: int) -> LedgerRecord | None:
    cur = await conn.execute(f"SELECT {RECORD_COLUMNS} FROM audit_records WHERE seq = %s", (seq,))
    row = await cur.fetchone()
    return record_from_row(row) if row else None


@dataclass(frozen=True)
class RecordFilter:
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    agent_id: str | None = None
    tool_name: str | None = None
    action: str | None = None
    actor: str | None = None
    trace_id: str | None = None
    kind: RecordKind | None = None


async def find_records(
    conn: Conn, where: RecordFilter, after_seq: int, limit: int
) -> list[LedgerRecord]:
    clauses = ["seq > %s"]
    params: list[Any] = [after_seq]
    for column, op, value in (
        ("occurred_at", ">=", where.since),
        ("occurred_at", "<", where.until),
        ("agent_id", "=", where.agent_id),
        ("tool_name", "=", where.tool_name),
        ("actor", "=", where.actor),
        ("trace_id", "=", where.trace_id),
        ("kind", "=", where.kind.value if where.kind else None),
    ):
        if value is not None:
            clauses.append(f"{column} {op} %s")
            params.append(value)
    if where.action is not None:
        # "deny" matches decisions with that outcome; "policy.update" matches a change.
        clauses.append("(action = %s OR (kind = 'decision' AND outcome = %s))")
        params += [where.action, where.action]
    cur = await conn.execute(
        f"SELECT {RECORD_COLUMNS} FROM audit_records WHERE {' AND '.join(clauses)} "
        "ORDER BY seq LIMIT %s",
        (*params, limit),
    )
    return [record_from_row(row) for row in await cur.fetchall()]
