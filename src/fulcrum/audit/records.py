"""The audit ledger's record: what is chained, in which form.

Per tenant, records carry a gap-free sequence (1, 2, 3, ...). Each record's ``hash`` is
SHA-256 over ``prev_hash`` followed by the RFC 8785 canonical JSON of its ``chained_fields``
(``prev_hash`` of record 1 is 32 zero bytes), so changing, inserting or deleting any record
breaks every later link. Signed checkpoints pin the newest (seq, hash) so that truncating
the newest records is detectable too.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

GENESIS_HASH = bytes(32)


class RecordKind(StrEnum):
    DECISION = "decision"
    CHANGE = "change"


@dataclass(frozen=True)
class LedgerEntry:
    """An event ready to be chained: everything but its position in the chain."""

    tenant_id: uuid.UUID
    event_id: uuid.UUID  # the decision id or change id; unique per tenant
    kind: RecordKind
    occurred_at: dt.datetime  # timezone-aware
    trace_id: str
    actor: str
    action: str  # e.g. "decision.deny", "policy.update"
    resource_type: str
    resource_id: str
    outcome: str
    agent_id: str = ""
    tool_name: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LedgerRecord:
    """A chained entry as stored in ``audit_records``."""

    entry: LedgerEntry
    seq: int
    prev_hash: bytes
    hash: bytes


def timestamp_text(value: dt.datetime) -> str:
    """The canonical text of a time: UTC, microseconds, 'Z' (what PostgreSQL stores)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def chained_fields(entry: LedgerEntry, seq: int) -> dict[str, Any]:
    """The fields the hash covers. Changing this breaks every existing chain: don't."""
    return {
        "tenant_id": str(entry.tenant_id),
        "seq": seq,
        "event_id": str(entry.event_id),
        "kind": entry.kind.value,
        "occurred_at": timestamp_text(entry.occurred_at),
        "trace_id": entry.trace_id,
        "actor": entry.actor,
        "action": entry.action,
        "resource_type": entry.resource_type,
        "resource_id": entry.resource_id,
        "outcome": entry.outcome,
        "agent_id": entry.agent_id,
        "tool_name": entry.tool_name,
        "details": entry.details,
    }
