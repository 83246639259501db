"""``/v1/decisions``: may this agent action run? (operations ``decisions.evaluate`` and
``decisions.evaluate_batch``)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from fulcrum.auth.principal import Principal
from fulcrum.decisions import operations as ops
from fulcrum.decisions.models import DecisionInput
from fulcrum.decisions.requests import build_request
from fulcrum.decisions.wire import decision_body
from fulcrum.kit.tracing import from_traceparent
from fulcrum.transports.rest.auth import allowed, charge, services_of
from fulcrum.transports.rest.bodies import StrictBody

router = APIRouter(prefix="/v1/decisions", tags=["decisions"])


class Answer(JSONResponse):
    """The decision path's JSON, rendered by orjson (several times faster than ``json``;
    a decision holds only strings, numbers, booleans, lists and objects)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ToolIn(StrictBody):
    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class AgentIn(StrictBody):
    id: str = ""
    roles: list[str] = Field(default_factory=list)


class TextIn(StrictBody):
    text: str = ""


class ModelIn(StrictBody):
    id: str = ""


class CostIn(StrictBody):
    estimate: float | None = None


class DecisionIn(StrictBody):
    tool: ToolIn
    agent: AgentIn = Field(default_factory=AgentIn)
    transport: str = ""
    input: TextIn = Field(default_factory=TextIn)
    model: ModelIn = Field(default_factory=ModelIn)
    cost: CostIn = Field(default_factory=CostIn)
    context: dict[str, Any] = Field(default_factory=dict)
    traceparent: str | None = None
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


class BatchIn(StrictBody):
    requests: list[DecisionIn]


# The answers (``decisions.wire`` builds them; these models document them).


class VerdictOut(BaseModel):
    action: str
    reason: str
    policy_id: str
    policy_version: int
    rule_id: str


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


class EvaluationOut(VerdictOut):
    bundle_hash: str
    matched: bool
    shadow: list[VerdictOut]
    explanation: list[RuleTraceOut] | None


class DecisionOut(EvaluationOut):
    decision_id: str
    trace_id: str
    evaluation_time_ms: float


class BatchOut(BaseModel):
    decisions: list[DecisionOut]


@router.post("", response_model=DecisionOut)
async def evaluate(
    body: DecisionIn, request: Request, who: Annotated[Principal, allowed(ops.EVALUATE)]
) -> JSONResponse:
    decision = await services_of(request).decisions.evaluate(who, body.to_input())
    # Built in one step from the decision: the hot path skips a second validation.
    return Answer(decision_body(decision))


@router.post(":batch", response_model=BatchOut)
async def evaluate_batch(
    body: BatchIn, request: Request, who: Annotated[Principal, allowed(ops.EVALUATE_BATCH)]
) -> JSONResponse:
    limits = await charge(request, who, items=len(body.requests))
    items = [item.to_input() for item in body.requests]
    decisions = await services_of(request).decisions.evaluate_batch(who, items)
    return Answer({"decisions": [decision_body(d) for d in decisions]}, headers=limits)
