"""gRPC door onto decisions: may this agent action run?"""

from __future__ import annotations

from typing import Any

import grpc

from fulcrum.container import Services
from fulcrum.decisions import operations as ops
from fulcrum.decisions.wire import decision_message_of, message_input
from fulcrum.pb.v1 import (
    decisions_pb2,
    decisions_pb2_grpc,
)
from fulcrum.transports.grpc.auth import current_principal, rpcs

Context = grpc.aio.ServicerContext[Any, Any]


class DecisionServicer(decisions_pb2_grpc.DecisionServiceServicer):
    def __init__(self, services: Services) -> None:
        self._decisions = services.decisions

    async def Evaluate(  # noqa: N802
        self, request: decisions_pb2.EvaluateRequest, context: Context
    ) -> decisions_pb2.EvaluateResponse:
        made = await self._decisions.evaluate(current_principal.get(), message_input(request))
        return decisions_pb2.EvaluateResponse(decision=decision_message_of(made))

    async def EvaluateBatch(  # noqa: N802
        self, request: decisions_pb2.EvaluateBatchRequest, context: Context
    ) -> decisions_pb2.EvaluateBatchResponse:
        items = [message_input(r) for r in request.requests]
        made = await self._decisions.evaluate_batch(current_principal.get(), items)
        return decisions_pb2.EvaluateBatchResponse(decisions=[decision_message_of(d) for d in made])


SERVICE = decisions_pb2.DESCRIPTOR.services_by_name["DecisionService"].full_name
OPERATIONS = rpcs(
    SERVICE,
    {
        "Evaluate": ops.EVALUATE,
        "EvaluateBatch": ops.EVALUATE_BATCH,
    },
)


def register(server: grpc.aio.Server, services: Services) -> None:
    decisions_pb2_grpc.add_DecisionServiceServicer_to_server(DecisionServicer(services), server)
