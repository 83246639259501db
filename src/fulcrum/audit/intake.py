"""Events from JetStream into prepared ledger entries, as cheaply as exactness allows.

Decision events are nearly all of the traffic and have a fixed shape, so they take the fast
path of ``audit.decision_records``. Anything unusual in one, and every change event, take
the general path instead: the ledger entry, then ``chain.prepare``, which also names what
is wrong.
"""

from __future__ import annotations

import uuid

from google.protobuf.json_format import MessageToDict

from fulcrum.audit.canonical import NotFast
from fulcrum.audit.chain import PreparedEntry, prepare
from fulcrum.audit.decision_records import decision_entry, fast_prepared, timestamp_datetime
from fulcrum.audit.records import LedgerEntry, RecordKind
from fulcrum.events.envelope import UndecodableEvent, parse
from fulcrum.pb.v1 import events_pb2


def prepare_event(data: bytes) -> PreparedEntry:
    """The event ready to be linked, or ``UndecodableEvent`` / ``ValueError`` if it never
    can be (the worker sets such events aside)."""
    envelope = parse(data)
    if envelope.HasField("decision"):
        try:
            return fast_prepared(envelope.decision)
        except (NotFast, ValueError, KeyError, OverflowError):
            pass  # the general path decides, and says why if it refuses
    return prepare(entry_of(envelope))


def decode(data: bytes) -> LedgerEntry:
    """The ledger entry a serialized event stands for (the general path)."""
    return entry_of(parse(data))


def entry_of(envelope: events_pb2.Event) -> LedgerEntry:
    """The ledger entry an event stands for, or ``UndecodableEvent`` naming what is wrong."""
    try:
        if envelope.HasField("decision"):
            return decision_entry(envelope.decision)
        if envelope.HasField("change"):
            return _change_entry(envelope.change)
    except (ValueError, OverflowError) as exc:
        raise UndecodableEvent(f"invalid event: {exc}") from exc
    raise UndecodableEvent("event has no body")


def _change_entry(c: events_pb2.ChangeEvent) -> LedgerEntry:
    return LedgerEntry(
        tenant_id=uuid.UUID(c.tenant_id),
        event_id=uuid.UUID(c.change_id),
        kind=RecordKind.CHANGE,
        occurred_at=timestamp_datetime(c.time),
        trace_id=c.trace_id,
        actor=c.actor,
        action=c.action,
        resource_type=c.resource_type,
        resource_id=c.resource_id,
        outcome=c.outcome,
        details=MessageToDict(c.details),
    )
