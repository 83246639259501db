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


class UndecodableEvent(ValueError):
    """A message the worker cannot read; it is set aside, never retried forever."""


@dataclass(frozen=True)
class OutgoingEvent:
    subject: str
    msg_id: str
    data: bytes


@dataclass(frozen=True)
class DecisionRow:
    """One row of the decision time series."""

    tenant_id: uuid.UUID
    decided_at: dt.datetime
    decision_id: uuid.UUID
    agent_id: str
    tool_name: str
    action: str
    policy_id: str
    policy_version: int
    rule_id: str
    matched: bool
    evaluation_ns: int
    trace_id: str


@dataclass(frozen=True)
class IncomingEvent:
    entry: LedgerEntry
    decision: DecisionRow | None


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
                "action": ACTION_NAMES[s.action].value,
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


def decode(data: bytes) -> IncomingEvent:
    try:
        envelope = events_pb2.Event.FromString(data)
    except Exception as exc:
        raise UndecodableEvent(f"not a fulcrum.v1.Event: {type(exc).__name__}") from exc
    if envelope.schema_version != SCHEMA_VERSION:
        raise UndecodableEvent(f"unknown schema version {envelope.schema_version}")
    try:
        if envelope.HasField("decision"):
            return _decision(envelope.decision)
        if envelope.HasField("change"):
            return _change(envelope.change)
    except (ValueError, KeyError) as exc:
        raise UndecodableEvent(f"invalid event: {exc}") from exc
    raise UndecodableEvent("event has no body")


def _decision(d: events_pb2.DecisionEvent) -> IncomingEvent:
    tenant_id, decision_id = uuid.UUID(d.tenant_id), uuid.UUID(d.decision_id)
    when = d.time.ToDatetime(tzinfo=dt.UTC)
    action = ACTION_NAMES[d.action]
    entry = LedgerEntry(
        tenant_id=tenant_id,
        event_id=decision_id,
        kind=RecordKind.DECISION,
        occurred_at=when,
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
    row = DecisionRow(
        tenant_id=tenant_id,
        decided_at=when,
        decision_id=decision_id,
        agent_id=d.agent_id,
        tool_name=d.tool_name,
        action=action.value,
        policy_id=d.policy_id,
        policy_version=d.policy_version,
        rule_id=d.rule_id,
        matched=d.matched,
        evaluation_ns=d.evaluation_time_ns,
        trace_id=d.trace_id,
    )
    return IncomingEvent(entry, row)


def _change(c: events_pb2.ChangeEvent) -> IncomingEvent:
    entry = LedgerEntry(
        tenant_id=uuid.UUID(c.tenant_id),
        event_id=uuid.UUID(c.change_id),
        kind=RecordKind.CHANGE,
        occurred_at=c.time.ToDatetime(tzinfo=dt.UTC),
        trace_id=c.trace_id,
        actor=c.actor,
        action=c.action,
        resource_type=c.resource_type,
        resource_id=c.resource_id,
        outcome=c.outcome,
        details=MessageToDict(c.details),
    )
    return IncomingEvent(entry, None)
