"""REST bodies for decisions, simulation and settings."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from fulcrum.decisions.requests import build_request
from fulcrum.decisions.service import Decision, DecisionInput
from fulcrum.engine.model import Evaluation, Verdict
from fulcrum.kit.tracing import from_traceparent
from fulcrum.tenants.settings import TenantSettings
from fulcrum.transports.rest.schemas import Request


class ToolIn(Request):
    name: str = Field(max_length=256)
    args: dict[str, Any] = Field(default_factory=dict)


class AgentIn(Request):
    id: str = Field(default="", max_length=256)
    roles: list[str] = Field(default_factory=list, max_length=50)


class TextIn(Request):
    text: str = Field(default="", max_length=64 * 1024)


class ModelIn(Request):
    id: str = Field(default="", max_length=256)


class CostIn(Request):
    estimate: float | None = None


class DecisionIn(Request):
    tool: ToolIn
    agent: AgentIn = Field(default_factory=AgentIn)
    transport: str = Field(default="", max_length=64)
    input: TextIn = Field(default_factory=TextIn)
    model: ModelIn = Field(default_factory=ModelIn)
    cost: CostIn = Field(default_factory=CostIn)
    context: dict[str, Any] = Field(default_factory=dict)
    traceparent: str | None = Field(default=None, max_length=128)
    explain: bool = False

    def to_input(self) -> DecisionInput:
        request = build_request(
            tool_name=self.tool.name,
            tool_args=self.tool.args,
            agent_id=self.agent.id,
            agent_roles=self.agent.roles,
            transport=self.transport,
            input_text=self.input.text,
            model_id=self.model.id,
            cost_estimate=self.cost.estimate,
            context=self.context,
        )
        trace = from_traceparent(self.traceparent).trace_id if self.traceparent else None
        return DecisionInput(request, self.explain, trace)


class BatchIn(Request):
    requests: list[DecisionIn] = Field(max_length=100)


class VerdictOut(BaseModel):
    action: str
    reason: str
    policy_id: str
    policy_version: int
    rule_id: str

    @classmethod
    def of(cls, v: Verdict) -> VerdictOut:
        return cls(
            action=v.action.value,
            reason=v.reason,
            policy_id=v.policy_id,
            policy_version=v.policy_version,
            rule_id=v.rule_id,
        )


class ConditionOut(BaseModel):
    path: str
    field: str
    op: str
    held: bool


class RuleTraceOut(BaseModel):
    policy_id: str
    policy_version: int
    rule_id: str
    matched: bool
    conditions: list[ConditionOut]


def _explanation(e: Evaluation) -> list[RuleTraceOut] | None:
    if e.explanation is None:
        return None
    return [
        RuleTraceOut(
            policy_id=t.policy_id,
            policy_version=t.policy_version,
            rule_id=t.rule_id,
            matched=t.matched,
            conditions=[
                ConditionOut(path=c.path, field=c.field, op=c.op, held=c.held) for c in t.conditions
            ],
        )
        for t in e.explanation
    ]


class EvaluationOut(BaseModel):
    action: str
    reason: str
    policy_id: str
    policy_version: int
    rule_id: str
    bundle_hash: str
    matched: bool
    shadow: list[VerdictOut]
    explanation: list[RuleTraceOut] | None

    @classmethod
    def of(cls, e: Evaluation) -> EvaluationOut:
        v = e.verdict
        return cls(
            action=v.action.value,
            reason=v.reason,
            policy_id=v.policy_id,
            policy_version=v.policy_version,
            rule_id=v.rule_id,
            bundle_hash=e.bundle_hash,
            matched=e.matched,
            shadow=[VerdictOut.of(s) for s in e.shadow],
            explanation=_explanation(e),
        )


class DecisionOut(EvaluationOut):
    decision_id: str
    trace_id: str
    evaluation_time_ms: float

    @classmethod
    def of_decision(cls, d: Decision) -> DecisionOut:
        base = EvaluationOut.of(d.evaluation).model_dump()
        return cls(
            **base,
            decision_id=str(d.decision_id),
            trace_id=d.trace_id,
            evaluation_time_ms=d.evaluation_ns / 1e6,
        )


class BatchOut(BaseModel):
    decisions: list[DecisionOut]


class SimulateIn(Request):
    policy: dict[str, Any] | str
    requests: list[DecisionIn] = Field(max_length=100)


class SimulationOut(BaseModel):
    with_draft: EvaluationOut
    current: EvaluationOut


class SimulateOut(BaseModel):
    results: list[SimulationOut]


class RateLimitOut(BaseModel):
    per_second: float
    burst: int
    key_per_second: float
    key_burst: int


class SettingsOut(BaseModel):
    default_action: str
    plan: str
    rate_limit: RateLimitOut

    @classmethod
    def of(cls, s: TenantSettings) -> SettingsOut:
        return cls(
            default_action=s.default_action.value,
            plan=s.plan.value,
            rate_limit=RateLimitOut(
                per_second=s.limits.tenant_rate,
                burst=s.limits.tenant_burst,
                key_per_second=s.limits.key_rate,
                key_burst=s.limits.key_burst,
            ),
        )


class RateLimitIn(Request):
    per_second: float | None = None
    burst: int | None = None
    key_per_second: float | None = None
    key_burst: int | None = None


class SettingsIn(Request):
    default_action: str | None = Field(default=None, max_length=32)
    rate_limit: RateLimitIn | None = None
