"""How a decision is recorded: from its event (``fulcrum.v1.DecisionEvent``) to its ledger
entry, and which of its details the decision time series projects.

The details of a decision record are declared once, in :data:`DETAILS`. From that one
table come the general path (:func:`decision_entry`: a details dict, then
``chain.prepare``), the fast path (:func:`fast_prepared`: the canonical JSON written
straight from the protobuf fields, with no dict and no walk over it) and the series
projection (:data:`SERIES_DETAILS`, read by ``audit.repository``).
tests/unit/audit/test_intake.py checks both paths give the same bytes, and that these are
RFC 8785's.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import encode_basestring as _quote
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from fulcrum.audit.canonical import NotFast, fast_form
from fulcrum.audit.chain import PreparedEntry, prepared_entry
from fulcrum.audit.records import LedgerEntry, RecordKind, canonical_split
from fulcrum.engine.model import Action
from fulcrum.pb.v1 import decisions_pb2, events_pb2

DecisionEvent = events_pb2.DecisionEvent

# The engine's actions on the wire (decisions_pb2.DecisionAction): the one mapping, which
# every door and the ledger use.
ACTIONS: dict[Action, decisions_pb2.DecisionAction.ValueType] = {
    Action.ALLOW: decisions_pb2.DECISION_ACTION_ALLOW,
    Action.WARN: decisions_pb2.DECISION_ACTION_WARN,
    Action.ESCALATE: decisions_pb2.DECISION_ACTION_ESCALATE,
    Action.REQUIRE_APPROVAL: decisions_pb2.DECISION_ACTION_REQUIRE_APPROVAL,
    Action.DENY: decisions_pb2.DECISION_ACTION_DENY,
}
ACTION_OF = {value: action for action, value in ACTIONS.items()}
_ACTION_TEXT = {value: action.value for value, action in ACTION_OF.items()}

_SAFE = 2**53  # integers from here on cannot be hashed stably (see audit.canonical)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def action_of(value: decisions_pb2.DecisionAction.ValueType) -> Action:
    try:
        return ACTION_OF[value]
    except KeyError:
        raise ValueError(f"unknown decision action {value}") from None


def timestamp_datetime(ts: Timestamp) -> dt.datetime:
    # Timestamp.ToDatetime, at a third of its cost: the worker decodes every event.
    if not 0 <= ts.nanos < 1_000_000_000:
        raise ValueError(f"timestamp nanos {ts.nanos} out of range")
    return _EPOCH + dt.timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)


# --- the details, declared once -------------------------------------------------------------


def _text(value: str) -> str:
    """A string's canonical JSON, for the fast path (NUL takes the careful path)."""
    if "\x00" in value:
        raise NotFast
    return _quote(value)


def _integer(value: int) -> str:
    if not -_SAFE < value < _SAFE:
        raise NotFast
    return str(value)


def _verdict(s: decisions_pb2.Verdict) -> dict[str, Any]:
    return {
        "action": action_of(s.action).value,
        "reason": s.reason,
        "policy_id": s.policy_id,
        "policy_version": s.policy_version,
        "rule_id": s.rule_id,
    }


def _fast_verdict(s: decisions_pb2.Verdict) -> str:
    # The keys of _verdict, in RFC 8785 order.
    return (
        f'{{"action":"{_ACTION_TEXT[s.action]}","policy_id":{_text(s.policy_id)},'
        f'"policy_version":{_integer(s.policy_version)},"reason":{_text(s.reason)},'
        f'"rule_id":{_text(s.rule_id)}}}'
    )


def _cost(d: DecisionEvent) -> float | None:
    return d.cost_estimate if d.HasField("cost_estimate") else None


def _fast_cost(d: DecisionEvent) -> str | None:
    # repr is json's float form; fast_form makes integral floats ints, as RFC 8785 does.
    return repr(fast_form(d.cost_estimate)) if d.HasField("cost_estimate") else None


@dataclass(frozen=True)
class Detail:
    """One key of a decision record's details."""

    name: str
    value: Callable[[DecisionEvent], Any]  # None: the key is left out
    fast: Callable[[DecisionEvent], str | None]  # its canonical JSON; None: left out
    # The time series column it is projected into, and that column's SQL type.
    series: tuple[str, str] | None = None


DETAILS: tuple[Detail, ...] = tuple(
    sorted(
        (
            Detail("reason", lambda d: d.reason, lambda d: _text(d.reason)),
            Detail(
                "policy_id",
                lambda d: d.policy_id,
                lambda d: _text(d.policy_id),
                series=("policy_id", "text"),
            ),
            Detail(
                "policy_version",
                lambda d: d.policy_version,
                lambda d: _integer(d.policy_version),
                series=("policy_version", "integer"),
            ),
            Detail(
                "rule_id",
                lambda d: d.rule_id,
                lambda d: _text(d.rule_id),
                series=("rule_id", "text"),
            ),
            Detail("bundle_hash", lambda d: d.bundle_hash, lambda d: _text(d.bundle_hash)),
            Detail(
                "matched",
                lambda d: d.matched,
                lambda d: "true" if d.matched else "false",
                series=("matched", "boolean"),
            ),
            Detail("transport", lambda d: d.transport, lambda d: _text(d.transport)),
            Detail("model_id", lambda d: d.model_id, lambda d: _text(d.model_id)),
            Detail(
                "evaluation_time_ns",
                lambda d: d.evaluation_time_ns,
                lambda d: _integer(d.evaluation_time_ns),
                series=("evaluation_ns", "bigint"),
            ),
            Detail(
                "shadow",
                lambda d: [_verdict(s) for s in d.shadow],
                lambda d: f"[{','.join(_fast_verdict(s) for s in d.shadow)}]",
            ),
            Detail("cost_estimate", _cost, _fast_cost),
        ),
        key=lambda detail: detail.name,  # RFC 8785 order: the names are ASCII
    )
)
# The details the decision time series (table ``decisions``) keeps: (detail, column, type).
SERIES_DETAILS: tuple[tuple[str, str, str], ...] = tuple(
    (detail.name, *detail.series) for detail in DETAILS if detail.series is not None
)


def decision_details(d: DecisionEvent) -> dict[str, Any]:
    details = {}
    for detail in DETAILS:
        value = detail.value(d)
        if value is not None:
            details[detail.name] = value
    return details


# --- the two paths into the ledger ----------------------------------------------------------


def decision_entry(d: DecisionEvent) -> LedgerEntry:
    """The general path: the entry, for ``chain.prepare`` (which names what is wrong)."""
    action = action_of(d.action)
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
        details=decision_details(d),
    )


def fast_prepared(d: DecisionEvent) -> PreparedEntry:
    """The fast path, or ``NotFast`` / ``ValueError`` / ``KeyError`` for anything unusual
    (NUL characters, numbers beyond what JSON hashes stably, an invalid id or time)."""
    outcome = _ACTION_TEXT[d.action]
    if "\x00" in "".join((d.trace_id, d.actor, d.agent_id, d.tool_name)):
        raise NotFast
    parts = []
    for detail in DETAILS:
        encoded = detail.fast(d)
        if encoded is not None:
            parts.append(f'"{detail.name}":{encoded}')
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
        details_json="{" + ",".join(parts) + "}",
    )
    return prepared_entry(
        tenant_id=tenant_id,
        event_id=event_id,
        kind=RecordKind.DECISION,
        occurred_at=occurred_at,
        before_seq=before,
        after_seq=after,
    )
