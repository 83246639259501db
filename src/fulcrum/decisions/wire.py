"""A decision on every wire, written once: the protobuf answer (``fulcrum.v1.Decision``),
the REST body (the same fields, as JSON) and the event the ledger records
(``fulcrum.v1.DecisionEvent``). Both doors and the decision service use these; nothing else
spells a decision's fields.

A request's limits are ``decisions.requests.build_request``'s, whichever door it came
through, so both refuse the same bad input with the same words.
"""

from __future__ import annotations

import uuid
from typing import Any

from google.protobuf.json_format import MessageToDict

from fulcrum.audit.decision_records import ACTIONS
from fulcrum.decisions.models import Decision, DecisionInput
from fulcrum.decisions.requests import build_request
from fulcrum.engine.model import Evaluation, Verdict
from fulcrum.events.envelope import OutgoingEvent, decision_message
from fulcrum.kit.tracing import from_traceparent
from fulcrum.pb.v1 import decisions_pb2, events_pb2

# --- requests -------------------------------------------------------------------------------


def message_input(message: decisions_pb2.EvaluateRequest) -> DecisionInput:
    """A decision request from its protobuf form."""
    request = build_request(
        tool_name=message.tool.name,
        tool_args=MessageToDict(message.tool.args) if message.tool.HasField("args") else {},
        agent_id=message.agent.id,
        agent_roles=list(message.agent.roles),
        transport=message.transport,
        input_text=message.input_text,
        model_id=message.model_id,
        cost_estimate=message.cost_estimate if message.HasField("cost_estimate") else None,
        context=MessageToDict(message.context) if message.HasField("context") else {},
    )
    trace = from_traceparent(message.traceparent).trace_id if message.traceparent else None
    return DecisionInput(request, message.explain, trace)


# --- answers: the fields, once --------------------------------------------------------------


def _verdict_fields(v: Verdict) -> dict[str, Any]:
    return {
        "reason": v.reason,
        "policy_id": v.policy_id,
        "policy_version": v.policy_version,
        "rule_id": v.rule_id,
    }


def _explanation(e: Evaluation) -> list[dict[str, Any]] | None:
    if e.explanation is None:
        return None
    return [
        {
            "policy_id": t.policy_id,
            "policy_version": t.policy_version,
            "rule_id": t.rule_id,
            "matched": t.matched,
            "conditions": [
                {"path": c.path, "field": c.field, "op": c.op, "held": c.held} for c in t.conditions
            ],
        }
        for t in e.explanation
    ]


def _decision_fields(d: Decision) -> dict[str, Any]:
    return {"decision_id": str(d.decision_id), "trace_id": d.trace_id}


# --- REST -----------------------------------------------------------------------------------


def verdict_body(v: Verdict) -> dict[str, Any]:
    return {"action": v.action.value, **_verdict_fields(v)}


def evaluation_body(e: Evaluation) -> dict[str, Any]:
    return {
        **verdict_body(e.verdict),
        "bundle_hash": e.bundle_hash,
        "matched": e.matched,
        "shadow": [verdict_body(s) for s in e.shadow],
        "explanation": _explanation(e),
    }


def decision_body(d: Decision) -> dict[str, Any]:
    return {
        **evaluation_body(d.evaluation),
        **_decision_fields(d),
        "evaluation_time_ms": d.evaluation_ns / 1e6,
    }


# --- protobuf -------------------------------------------------------------------------------


def verdict_message(v: Verdict) -> decisions_pb2.Verdict:
    return decisions_pb2.Verdict(action=ACTIONS[v.action], **_verdict_fields(v))


def _trace_message(trace: dict[str, Any]) -> decisions_pb2.RuleTrace:
    conditions = [decisions_pb2.ConditionTrace(**c) for c in trace["conditions"]]
    return decisions_pb2.RuleTrace(**{**trace, "conditions": conditions})


def evaluation_message(e: Evaluation, **extra: Any) -> decisions_pb2.Decision:
    return decisions_pb2.Decision(
        action=ACTIONS[e.verdict.action],
        **_verdict_fields(e.verdict),
        bundle_hash=e.bundle_hash,
        matched=e.matched,
        shadow=[verdict_message(s) for s in e.shadow],
        explanation=[_trace_message(trace) for trace in _explanation(e) or ()],
        **extra,
    )


def decision_message_of(d: Decision) -> decisions_pb2.Decision:
    return evaluation_message(
        d.evaluation, **_decision_fields(d), evaluation_time_ns=d.evaluation_ns
    )


# --- the event the ledger records -----------------------------------------------------------


def decision_event(
    tenant_id: uuid.UUID, actor: str, item: DecisionInput, decision: Decision
) -> OutgoingEvent:
    evaluation, request = decision.evaluation, item.request
    event = events_pb2.DecisionEvent(
        tenant_id=str(tenant_id),
        **_decision_fields(decision),
        actor=actor,
        agent_id=request.agent_id,
        tool_name=request.tool_name,
        transport=request.transport,
        model_id=request.model_id,
        action=ACTIONS[evaluation.verdict.action],
        **_verdict_fields(evaluation.verdict),
        bundle_hash=evaluation.bundle_hash,
        matched=evaluation.matched,
        shadow=[verdict_message(s) for s in evaluation.shadow],
        evaluation_time_ns=decision.evaluation_ns,
    )
    event.time.FromDatetime(decision.decided_at)
    if request.cost_estimate is not None:
        event.cost_estimate = request.cost_estimate
    return decision_message(event)
