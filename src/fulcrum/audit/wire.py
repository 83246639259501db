"""A ledger record on each wire: protobuf (``fulcrum.v1.AuditRecord``), the REST body and
the line of an offline bundle (``audit.bundle``). The field list is written once here."""

from __future__ import annotations

import json
from typing import Any

from fulcrum.audit.records import LedgerRecord, timestamp_text
from fulcrum.kit.timestamps import timestamp
from fulcrum.pb.v1 import audit_pb2


def _fields(r: LedgerRecord) -> dict[str, Any]:
    e = r.entry
    return {
        "seq": r.seq,
        "event_id": str(e.event_id),
        "kind": e.kind.value,
        "trace_id": e.trace_id,
        "actor": e.actor,
        "action": e.action,
        "resource_type": e.resource_type,
        "resource_id": e.resource_id,
        "outcome": e.outcome,
        "agent_id": e.agent_id,
        "tool_name": e.tool_name,
        "prev_hash": r.prev_hash.hex(),
        "hash": r.hash.hex(),
    }


def record_body(r: LedgerRecord) -> dict[str, Any]:
    return {**_fields(r), "occurred_at": r.entry.occurred_at, "details": r.entry.details}


def record_line(r: LedgerRecord) -> dict[str, Any]:
    """A bundle's record line: JSON-ready, with the tenant and the time as the chain hashed
    them, so a verifier can recompute each hash from the line alone."""
    return {
        "type": "record",
        **_fields(r),
        "tenant_id": str(r.entry.tenant_id),
        "occurred_at": timestamp_text(r.entry.occurred_at),
        "details": r.entry.details,
    }


def record_message(r: LedgerRecord) -> audit_pb2.AuditRecord:
    return audit_pb2.AuditRecord(
        **_fields(r),
        time=timestamp(r.entry.occurred_at),
        details_json=json.dumps(r.entry.details, sort_keys=True),
    )
