"""``/v1/decisions``: may this agent action run? (scope ``decisions:evaluate``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from fulcrum.auth.principal import Principal
from fulcrum.auth.scopes import Scope
from fulcrum.transports.rest.auth import RequireScopes, charge, services_of
from fulcrum.transports.rest.decision_schemas import BatchIn, BatchOut, DecisionIn, DecisionOut

router = APIRouter(prefix="/v1/decisions", tags=["decisions"])
Evaluator = Annotated[Principal, Depends(RequireScopes(Scope.DECISIONS_EVALUATE))]
# A batch is charged one token per decision, once its size is known to be valid.
BatchEvaluator = Annotated[
    Principal, Depends(RequireScopes(Scope.DECISIONS_EVALUATE, per_item=True))
]


@router.post("")
async def evaluate(body: DecisionIn, request: Request, who: Evaluator) -> DecisionOut:
    decision = await services_of(request).decisions.evaluate(who, body.to_input())
    return DecisionOut.of_decision(decision)


@router.post(":batch")
async def evaluate_batch(
    body: BatchIn, request: Request, response: Response, who: BatchEvaluator
) -> BatchOut:
    await charge(request, response, who, cost=max(1, len(body.requests)))
    items = [item.to_input() for item in body.requests]
    decisions = await services_of(request).decisions.evaluate_batch(who, items)
    return BatchOut(decisions=[DecisionOut.of_decision(d) for d in decisions])
