"""The envelope every Fulcrum event travels in (``fulcrum.v1.Event``): its schema version,
its subject and its de-duplication id. What the bodies mean is their producers' and
consumers' business (``decisions.wire`` writes decisions, ``audit`` reads both kinds)."""

from __future__ import annotations

from dataclasses import dataclass

from fulcrum.events.streams import SCHEMA_VERSION, subject
from fulcrum.pb.v1 import events_pb2


class UndecodableEvent(ValueError):
    """A message the worker cannot read; it is set aside, never retried forever."""


@dataclass(frozen=True)
class OutgoingEvent:
    subject: str
    msg_id: str
    data: bytes


def decision_message(event: events_pb2.DecisionEvent) -> OutgoingEvent:
    envelope = events_pb2.Event(schema_version=SCHEMA_VERSION, decision=event)
    return OutgoingEvent(
        subject(event.tenant_id, "decision"), event.decision_id, envelope.SerializeToString()
    )


def change_message(event: events_pb2.ChangeEvent) -> OutgoingEvent:
    envelope = events_pb2.Event(schema_version=SCHEMA_VERSION, change=event)
    return OutgoingEvent(
        subject(event.tenant_id, "change"),
        event.change_id,
        envelope.SerializeToString(),
    )


def parse(data: bytes) -> events_pb2.Event:
    """The envelope, or ``UndecodableEvent`` for bytes or versions this worker cannot read."""
    try:
        envelope = events_pb2.Event.FromString(data)
    except Exception as exc:
        raise UndecodableEvent(f"not a fulcrum.v1.Event: {type(exc).__name__}") from exc
    if envelope.schema_version != SCHEMA_VERSION:
        raise UndecodableEvent(f"unknown schema version {envelope.schema_version}")
    return envelope
