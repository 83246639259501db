"""All SQL for the ledger, its chain heads and checkpoints, the outbox of changes, and the
decision time series.

Every tenant's function runs inside ``Database.tenant_tx``: RLS confines it to one tenant.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from fulcrum.audit.chain import Link
from fulcrum.audit.checkpoints import Checkpoint
from fulcrum.audit.decision_records import SERIES_DETAILS
from fulcrum.audit.records import (
    GENESIS_HASH,
    LedgerEntry,
    LedgerRecord,
    RecordKind,
)
from fulcrum.kit.db import CURRENT_TENANT, enter_tenant_blocking

Conn = AsyncConnection[TupleRow]
Cursor = AsyncCursor[TupleRow]

CHANGES_CHANNEL = "fulcrum_changes"  # LISTEN/NOTIFY channel; the payload is a tenant id

RECORD_COLUMNS = (
    "tenant_id, seq, event_id, kind, occurred_at, trace_id, actor, action, resource_type, "
    "resource_id, outcome, agent_id, tool_name, details, prev_hash, hash"
)
# Records of a seq range, in order; for a server-side cursor (see audit.verification).
RANGE_QUERY = (
    f"SELECT {RECORD_COLUMNS} FROM audit_records WHERE seq >= %s "
    "AND (%s::bigint IS NULL OR seq <= %s) ORDER BY seq"
)
# The decision time series: a projection of the ledger's decision records, its columns
# those of the record and the details audit.decision_records declares for it.
_PROJECTED_COLUMNS = ", ".join(column for _, column, _ in SERIES_DETAILS)
_PROJECTED = ", ".join(f"(details->>'{name}')::{kind}" for name, _, kind in SERIES_DETAILS)
DECISION_COLUMNS = (
    "tenant_id, decided_at, decision_id, agent_id, tool_name, action, "
    f"{_PROJECTED_COLUMNS}, trace_id"
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


async def lock_head(conn: Conn) -> Cursor:
    """Queue the lock of the tenant's chain head (one writer per tenant at a time, until
    commit); the returned cursor gives it (:func:`read_head`) once executed."""
    await conn.execute(
        f"INSERT INTO audit_chain_heads (tenant_id, seq, hash) VALUES ({CURRENT_TENANT}, 0, %s) "
        "ON CONFLICT (tenant_id) DO NOTHING",
        (GENESIS_HASH,),
    )
    return await conn.execute("SELECT seq, hash FROM audit_chain_heads FOR UPDATE")


async def read_head(cursor: Cursor) -> tuple[int, bytes]:
    row = await cursor.fetchone()
    assert row is not None  # the lock's insert-if-absent made sure of the row
    return int(row[0]), bytes(row[1])


async def existing_event_ids(conn: Conn, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    cur = await conn.execute(
        "SELECT event_id FROM audit_records WHERE event_id = ANY(%s)", (list(ids),)
    )
    return {found for (found,) in await cur.fetchall()}


async def set_head(conn: Conn, seq: int, hash_: bytes) -> None:
    await conn.execute(
        "UPDATE audit_chain_heads SET seq = %s, hash = %s, updated_at = now()", (seq, hash_)
    )


async def head(conn: Conn) -> tuple[int, bytes]:
    cur = await conn.execute("SELECT seq, hash FROM audit_chain_heads")
    row = await cur.fetchone()
    return (int(row[0]), bytes(row[1])) if row else (0, GENESIS_HASH)


# One statement stores a batch: the ledger rows, parsed once from the JSON document of
# the bytes that were hashed, and from the same rows the decision time series and its
# per-minute roll-ups (the series is a projection of the ledger's decision records: the
# details audit.decision_records declares for it). COPY is refused on tables
# under row-level security, and one document parses far faster than one array per column.
_BATCH_ROWS = f"""
WITH r AS MATERIALIZED (
    SELECT * FROM jsonb_to_recordset(%s) AS r(
        tenant_id uuid, seq bigint, event_id uuid, kind text, occurred_at timestamptz,
        trace_id text, actor text, action text, resource_type text, resource_id text,
        outcome text, agent_id text, tool_name text, details jsonb, prev_hash text,
        hash text)
), ledger AS (
    INSERT INTO audit_records ({RECORD_COLUMNS})
    SELECT tenant_id, seq, event_id, kind, occurred_at, trace_id, actor, action,
           resource_type, resource_id, outcome, agent_id, tool_name, details,
           decode(prev_hash, 'hex'), decode(hash, 'hex')
    FROM r
)"""
_SERIES = f"""
INSERT INTO decisions ({DECISION_COLUMNS})
SELECT tenant_id, occurred_at, event_id, agent_id, tool_name, outcome, {_PROJECTED}, trace_id
FROM r WHERE kind = 'decision'"""
_ROLLUPS = """
INSERT INTO decision_rollups (tenant_id, minute, action, decisions)
SELECT tenant_id, date_trunc('minute', occurred_at, 'UTC'), outcome, count(*)
FROM r WHERE kind = 'decision' GROUP BY 1, 2, 3
ON CONFLICT (tenant_id, minute, action)
DO UPDATE SET decisions = decision_rollups.decisions + EXCLUDED.decisions"""
INSERT_BATCH = f"{_BATCH_ROWS}, series AS ({_SERIES}\n){_ROLLUPS}"
# Where decision_rollups is TimescaleDB's continuous aggregate, the database keeps it.
INSERT_BATCH_WITHOUT_ROLLUPS = f"{_BATCH_ROWS}{_SERIES}"


async def rollups_are_written(conn: Conn) -> bool:
    """Whether the worker maintains decision_rollups (a table; native partitioning path)."""
    cur = await conn.execute(
        "SELECT relkind = 'r' FROM pg_class WHERE oid = to_regclass('decision_rollups')"
    )
    row = await cur.fetchone()
    return bool(row and row[0])


def batch_document(links: Sequence[Link]) -> bytes:
    """The JSON array of the links' rows: each one the hashed canonical JSON, with its two
    hashes added as hex (the object's last byte is its closing brace)."""
    return b"[%s]" % b",".join(
        b'%s,"prev_hash":"%s","hash":"%s"}'
        % (x.canonical[:-1], x.prev_hash.hex().encode(), x.hash.hex().encode())
        for x in links
    )


async def insert_batch(conn: Conn, links: Sequence[Link], *, rollups: bool = True) -> None:
    """Store linked records, their decision series rows and roll-ups, in one statement."""
    await insert_document(conn, batch_document(links), rollups=rollups)


async def insert_document(conn: Conn, document: bytes, *, rollups: bool = True) -> None:
    """Store the rows of a JSON document (an array of objects with the record columns)."""
    statement = INSERT_BATCH if rollups else INSERT_BATCH_WITHOUT_ROLLUPS
    await conn.execute(statement, (Jsonb(document, dumps=_as_is),))


def _as_is(document: bytes) -> bytes:
    return document


async def last_checkpoint(conn: Conn) -> tuple[int, dt.datetime] | None:
    cur = await conn.execute(
        "SELECT seq, created_at FROM audit_checkpoints ORDER BY seq DESC LIMIT 1"
    )
    row = await cur.fetchone()
    return (int(row[0]), row[1]) if row else None


async def insert_checkpoint(conn: Conn, cp: Checkpoint) -> bool:
    """Whether ``cp`` was stored: not if a checkpoint at its seq already was (two idle-chain
    checkpoints racing), in which case only the stored one may be anchored."""
    cur = await conn.execute(
        """
        INSERT INTO audit_checkpoints (tenant_id, seq, hash, created_at, key_id, signature)
        VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (tenant_id, seq) DO NOTHING
        RETURNING seq
        """,
        (cp.tenant_id, cp.seq, cp.hash, cp.created_at, cp.key_id, cp.signature),
    )
    return await cur.fetchone() is not None


CHECKPOINT_COLUMNS = "tenant_id, seq, hash, created_at, key_id, signature"
# Every checkpoint of the tenant, in order; for blocking readers (audit.verification, bundle).
CHECKPOINTS_QUERY = f"SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq"


def checkpoint_from_row(row: TupleRow) -> Checkpoint:
    return Checkpoint(row[0], int(row[1]), bytes(row[2]), row[3], row[4], bytes(row[5]))


async def newest_checkpoint(conn: Conn) -> Checkpoint | None:
    cur = await conn.execute(
        f"SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq DESC LIMIT 1"
    )
    row = await cur.fetchone()
    return checkpoint_from_row(row) if row else None


async def records_after(
    conn: Conn, after_seq: int, to_seq: int | None, limit: int
) -> list[LedgerRecord]:
    """Up to ``limit`` records after ``after_seq`` (and up to ``to_seq``), in seq order."""
    cur = await conn.execute(
        f"SELECT {RECORD_COLUMNS} FROM audit_records WHERE seq > %s "
        "AND (%s::bigint IS NULL OR seq <= %s) ORDER BY seq LIMIT %s",
        (after_seq, to_seq, to_seq, limit),
    )
    return [record_from_row(row) for row in await cur.fetchall()]


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


# --- the outbox and the worker's housekeeping -----------------------------------------------


async def insert_changes(
    conn: Conn,
    *,
    tenant_id: uuid.UUID,
    actor: str,
    action: str,
    resource_type: str,
    targets: Sequence[tuple[str, str]],
    outcome: str,
    details: dict[str, Any],
) -> None:
    """One ``audit_events`` row per ``(trace id, resource id)`` of ``targets``."""
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
            Jsonb(details),
            [trace_id for trace_id, _ in targets],
            [resource_id for _, resource_id in targets],
        ),
    )


async def notify_changes(conn: Conn, tenant_id: uuid.UUID) -> None:
    """Tell the worker's relay, on commit, that this tenant has changes to publish (PostgreSQL
    delivers the notification only if the transaction commits)."""
    await conn.execute("SELECT pg_notify(%s, %s)", (CHANGES_CHANNEL, str(tenant_id)))


async def unrelayed_changes(conn: Conn, limit: int = 500) -> list[tuple[Any, ...]]:
    """The transaction's tenant's changes (``audit_events``, the outbox) not yet in the
    ledger, oldest first: id, occurred_at, trace_id, actor, action, resource_type,
    resource_id, outcome, details."""
    cur = await conn.execute(
        """
        SELECT e.id, e.occurred_at, e.trace_id, e.actor, e.action, e.resource_type,
               e.resource_id, e.outcome, e.details
        FROM audit_events e
        WHERE NOT EXISTS (SELECT 1 FROM audit_records r
                          WHERE r.tenant_id = e.tenant_id AND r.event_id = e.id)
        ORDER BY e.occurred_at, e.id LIMIT %s
        """,
        (limit,),
    )
    return list(await cur.fetchall())


async def ledger_tenants(conn: Conn) -> list[uuid.UUID]:
    """Tenants with a ledger or with changes to relay (the worker reads no tenant table: a
    narrow database function answers)."""
    cur = await conn.execute("SELECT fulcrum_ledger_tenants()")
    return [row[0] for row in await cur.fetchall()]


async def maintain_partitions(conn: Conn, retention_days: int) -> None:
    """Keep a week of decision partitions ahead; drop those older than the retention."""
    await conn.execute("SELECT fulcrum_ensure_decision_partitions(7)")
    await conn.execute("SELECT fulcrum_drop_decision_partitions(%s)", (retention_days,))


async def listen_for_changes(conn: Conn) -> None:
    """Have PostgreSQL notify this (autocommit) connection of each tenant whose changes
    commit (:data:`CHANGES_CHANNEL`)."""
    await conn.execute(f"LISTEN {CHANGES_CHANNEL}")


# --- reading a range offline (verification and bundles) ------------------------------------


@dataclass(frozen=True)
class LedgerRange:
    """A tenant's ledger from ``from_seq`` on, read in one blocking transaction."""

    prev_hash: bytes | None  # of record from_seq - 1 (None from seq 1, or when it is missing)
    head_seq: int | None  # where the chain head says the ledger ends
    checkpoints: list[Checkpoint]  # all of the tenant's, in seq order
    records: Iterator[LedgerRecord]  # streamed through a server-side cursor


@contextmanager
def ledger_range(
    conninfo: str, tenant_id: uuid.UUID, from_seq: int, to_seq: int | None
) -> Iterator[LedgerRange]:
    """The range, on a plain (blocking) connection of its own: reading a long chain is rare
    and slow, and should neither hold a pooled connection nor block an event loop (callers
    use a thread). Memory stays constant however long the range."""
    with psycopg.connect(conninfo) as conn, conn.transaction():
        enter_tenant_blocking(conn, tenant_id)
        prev_hash = None
        if from_seq > 1:
            row = conn.execute(
                "SELECT hash FROM audit_records WHERE seq = %s", (from_seq - 1,)
            ).fetchone()
            prev_hash = bytes(row[0]) if row else None
        head = conn.execute("SELECT seq FROM audit_chain_heads").fetchone()
        checkpoints = [checkpoint_from_row(r) for r in conn.execute(CHECKPOINTS_QUERY)]
        with conn.cursor(name="ledger_range") as cursor:
            cursor.itersize = 5000
            cursor.execute(RANGE_QUERY, (from_seq, to_seq, to_seq))
            yield LedgerRange(
                prev_hash=prev_hash,
                head_seq=int(head[0]) if head else None,
                checkpoints=checkpoints,
                records=(record_from_row(row) for row in cursor),
            )
