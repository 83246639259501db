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
from json.encoder import encode_basestring as _quote
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
    # isoformat: the strftime form "%Y-%m-%dT%H:%M:%S.%fZ" at a fifth of the cost.
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")[:-6] + "Z"


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


def canonical_split(
    *,
    tenant_id: uuid.UUID,
    event_id: uuid.UUID,
    kind: RecordKind,
    occurred_at: dt.datetime,
    trace_id: str,
    actor: str,
    action: str,
    resource_type: str,
    resource_id: str,
    outcome: str,
    agent_id: str,
    tool_name: str,
    details_json: str,
) -> tuple[str, str]:
    """RFC 8785 JSON of :func:`chained_fields` as the text before and after ``seq``.

    A record's hashed bytes are then ``before + str(seq) + after``: everything but the
    position is encoded before the chain head is known (and outside the head's lock).
    ``details_json`` is the canonical JSON of the details. The keys are all ASCII, so
    RFC 8785's order is a plain sort; strings are escaped by the standard library's C
    escaper, which writes them as RFC 8785 does. test_chain.py checks it against the
    reference.
    """
    before = (
        f'{{"action":{_quote(action)},"actor":{_quote(actor)},'
        f'"agent_id":{_quote(agent_id)},"details":{details_json},'
        f'"event_id":"{event_id}","kind":"{kind.value}",'
        f'"occurred_at":"{timestamp_text(occurred_at)}","outcome":{_quote(outcome)},'
        f'"resource_id":{_quote(resource_id)},"resource_type":{_quote(resource_type)},"seq":'
    )
    after = (
        f',"tenant_id":"{tenant_id}","tool_name":{_quote(tool_name)},'
        f'"trace_id":{_quote(trace_id)}}}'
    )
    return before, after
