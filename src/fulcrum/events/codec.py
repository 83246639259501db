"""Events as protobuf (fulcrum.v1.Event) and as ledger entries."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from fulcrum.audit.records import LedgerEntry, RecordKind
from fulcrum.engine.model import Action
from fulcrum.events.streams import SCHEMA_VERSION, subject
from fulcrum.pb.v1 import decisions_pb2, events_pb2

ACTIONS = {
    Action.ALLOW: decisions_pb2.DECISION_ACTION_ALLOW,
    Action.WARN: decisions_pb2.DECISION_ACTION_WARN,
    Action.ESCALATE: decisions_pb2.DECISION_ACTION_ESCALATE,
    Action.REQUIRE_APPROVAL: decisions_pb2.DECISION_ACTION_REQUIRE_APPROVAL,
    Action.DENY: decisions_pb2.DECISION_ACTION_DENY,
}
ACTION_NAMES = {value: action for action, value in ACTIONS.items()}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class UndecodableEvent(ValueError):
    """A message the worker cannot read; it is set aside, never retried forever."""


@dataclass(frozen=True)
class OutgoingEvent:
    subject: str
    msg_id: str
    data: bytes


def _timestamp(value: dt.datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def encode_decision(event: events_pb2.DecisionEvent) -> OutgoingEvent:
    envelope = events_pb2.Event(schema_version=SCHEMA_VERSION, decision=event)
    return OutgoingEvent(
        subject(event.tenant_id, "decision"), event.decision_id, envelope.SerializeToString()
    )


def encode_change(
    *,
    tenant_id: uuid.UUID,
    change_id: uuid.UUID,
    time: dt.datetime,
    trace_id: str,
    actor: str,
    action: str,
    resource_type: str,
    resource_id: str,
    outcome: str,
    details: Mapping[str, Any],
) -> OutgoingEvent:
    struct = Struct()
    struct.update(dict(details))
    change = events_pb2.ChangeEvent(
        tenant_id=str(tenant_id),
        change_id=str(change_id),
        time=_timestamp(time),
        trace_id=trace_id,
        actor=actor,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        outcome=outcome,
        details=struct,
    )
    envelope = events_pb2.Event(schema_version=SCHEMA_VERSION, change=change)
    return OutgoingEvent(subject(tenant_id, "change"), str(change_id), envelope.SerializeToString())


def _decision_details(d: events_pb2.DecisionEvent) -> dict[str, Any]:
    # The decision time series is projected from these keys when the record is stored
    # (policy_id, policy_version, rule_id, matched, evaluation_time_ns: audit.repository).
    details: dict[str, Any] = {
        "reason": d.reason,
        "policy_id": d.policy_id,
        "policy_version": d.policy_version,
        "rule_id": d.rule_id,
        "bundle_hash": d.bundle_hash,
        "matched": d.matched,
        "transport": d.transport,
        "model_id": d.model_id,
        "evaluation_time_ns": d.evaluation_time_ns,
        "shadow": [
            {
                "action": _action(s.action).value,
                "reason": s.reason,
                "policy_id": s.policy_id,
                "policy_version": s.policy_version,
                "rule_id": s.rule_id,
            }
            for s in d.shadow
        ],
    }
    if d.HasField("cost_estimate"):
        details["cost_estimate"] = d.cost_estimate
    return details


def decode(data: bytes) -> LedgerEntry:
    return entry_of(parse(data))


def parse(data: bytes) -> events_pb2.Event:
    """The envelope, or ``UndecodableEvent`` for bytes or versions this worker cannot read."""
    try:
        envelope = events_pb2.Event.FromString(data)
    except Exception as exc:
        raise UndecodableEvent(f"not a fulcrum.v1.Event: {type(exc).__name__}") from exc
    if envelope.schema_version != SCHEMA_VERSION:
        raise UndecodableEvent(f"unknown schema version {envelope.schema_version}")
    return envelope


def entry_of(envelope: events_pb2.Event) -> LedgerEntry:
    """The ledger entry an event stands for, or ``UndecodableEvent`` naming what is wrong."""
    try:
        if envelope.HasField("decision"):
            return _decision(envelope.decision)
        if envelope.HasField("change"):
            return _change(envelope.change)
    except (ValueError, OverflowError) as exc:
        raise UndecodableEvent(f"invalid event: {exc}") from exc
    raise UndecodableEvent("event has no body")


def _decision(d: events_pb2.DecisionEvent) -> LedgerEntry:
    action = _action(d.action)
    return LedgerEntry(
        tenant_id=uuid.UUID(d.tenant_id),
        event_id=uuid.UUID(d.decision_id),
        kind=RecordKind.DECISION,
        occurred_at=timestamp_datetime(d.time),
        trace_id=d.trace_id,
        actor=d.actor,
        action=f"decision.{action.value}",
        resource_type="tool",
        resource_id=d.tool_name,
        outcome=action.value,
        agent_id=d.agent_id,
        tool_name=d.tool_name,
        details=_decision_details(d),
    )


def _action(value: decisions_pb2.DecisionAction.ValueType) -> Action:
    try:
        return ACTION_NAMES[value]
    except KeyError:
        raise ValueError(f"unknown decision action {value}") from None


def timestamp_datetime(ts: Timestamp) -> dt.datetime:
    # Timestamp.ToDatetime, at a third of its cost: the worker decodes every event.
    if not 0 <= ts.nanos < 1_000_000_000:
        raise ValueError(f"timestamp nanos {ts.nanos} out of range")
    return _EPOCH + dt.timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)


def _change(c: events_pb2.ChangeEvent) -> LedgerEntry:
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
