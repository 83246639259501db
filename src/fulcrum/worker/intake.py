"""Events from JetStream into prepared ledger entries, as cheaply as exactness allows.

Decision events are nearly all of the traffic and have a fixed shape, so their canonical
JSON is written straight from the protobuf fields by a template: no ledger entry, no
details dict, no walk over it. Anything unusual in one (NUL characters, numbers beyond
what JSON hashes stably, an invalid id or time) and every change event take the general
path instead, ``codec.entry_of`` then ``chain.prepare``, which also names what is wrong.
tests/unit/test_worker_intake.py checks both paths give the same bytes, and that these
are RFC 8785's.
"""

from __future__ import annotations

import uuid
from json.encoder import encode_basestring as _quote

from fulcrum.audit.canonical import NotFast, fast_form
from fulcrum.audit.chain import PreparedEntry, prepare, prepared_entry
from fulcrum.audit.records import RecordKind, canonical_split
from fulcrum.events.codec import ACTION_NAMES, entry_of, parse, timestamp_datetime
from fulcrum.pb.v1 import decisions_pb2, events_pb2

_SAFE = 2**53  # integers from here on cannot be hashed stably (see audit.canonical)
_ACTION_TEXT = {value: action.value for value, action in ACTION_NAMES.items()}


def prepare_event(data: bytes) -> PreparedEntry:
    """The event ready to be linked, or ``UndecodableEvent`` / ``ValueError`` if it never
    can be (the worker sets such events aside)."""
    envelope = parse(data)
    if envelope.HasField("decision"):
        try:
            return _prepared_decision(envelope.decision)
        except (NotFast, ValueError, KeyError, OverflowError):
            pass  # the general path decides, and says why if it refuses
    return prepare(entry_of(envelope))


def _prepared_decision(d: events_pb2.DecisionEvent) -> PreparedEntry:
    outcome = _ACTION_TEXT[d.action]
    texts = "".join(
        (
            d.trace_id,
            d.actor,
            d.agent_id,
            d.tool_name,
            d.transport,
            d.model_id,
            d.reason,
            d.policy_id,
            d.rule_id,
            d.bundle_hash,
        )
    )
    if "\x00" in texts or not -_SAFE < d.evaluation_time_ns < _SAFE:
        raise NotFast
    # The keys of codec._decision_details, in RFC 8785 order.
    cost = (
        # repr is json's float form; fast_form makes integral floats ints, as RFC 8785 does.
        f',"cost_estimate":{fast_form(d.cost_estimate)!r}' if d.HasField("cost_estimate") else ""
    )
    details = (
        f'{{"bundle_hash":{_quote(d.bundle_hash)}{cost},'
        f'"evaluation_time_ns":{d.evaluation_time_ns},'
        f'"matched":{"true" if d.matched else "false"},"model_id":{_quote(d.model_id)},'
        f'"policy_id":{_quote(d.policy_id)},"policy_version":{d.policy_version},'
        f'"reason":{_quote(d.reason)},"rule_id":{_quote(d.rule_id)},'
        f'"shadow":[{",".join(_shadow(s) for s in d.shadow)}],'
        f'"transport":{_quote(d.transport)}}}'
    )
    tenant_id, event_id = uuid.UUID(d.tenant_id), uuid.UUID(d.decision_id)
    occurred_at = timestamp_datetime(d.time)
    before, after = canonical_split(
        tenant_id=tenant_id,
        event_id=event_id,
        kind=RecordKind.DECISION,
        occurred_at=occurred_at,
        trace_id=d.trace_id,
        actor=d.actor,
        action=f"decision.{outcome}",
        resource_type="tool",
        resource_id=d.tool_name,
        outcome=outcome,
        agent_id=d.agent_id,
        tool_name=d.tool_name,
        details_json=details,
    )
    return prepared_entry(
        tenant_id=tenant_id,
        event_id=event_id,
        kind=RecordKind.DECISION,
        occurred_at=occurred_at,
        before_seq=before,
        after_seq=after,
    )


def _shadow(s: decisions_pb2.Verdict) -> str:
    return (
        f'{{"action":"{_ACTION_TEXT[s.action]}","policy_id":{_text(s.policy_id)},'
        f'"policy_version":{s.policy_version},"reason":{_text(s.reason)},'
        f'"rule_id":{_text(s.rule_id)}}}'
    )


def _text(value: str) -> str:
    if "\x00" in value:
        raise NotFast
    return _quote(value)
