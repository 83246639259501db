"""Evaluate: authorise, take the tenant's bundle from memory, evaluate, answer.

Any failure inside evaluation fails closed: the answer is deny with reason
``evaluation_error``, never an allow and never a bare error.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from fulcrum.auth.principal import Principal
from fulcrum.auth.scopes import Scope
from fulcrum.decisions.bundles import BundleCache
from fulcrum.engine.compiler import Bundle
from fulcrum.engine.model import EVALUATION_ERROR, Action, DecisionRequest, Evaluation, Verdict
from fulcrum.kit.errors import InvalidArgument
from fulcrum.kit.ids import uuid7
from fulcrum.kit.logging import get_logger
from fulcrum.kit.tracing import current_trace_id, new_trace
from fulcrum.observability.metrics import DECISION_EVALUATION, DECISIONS

log = get_logger(__name__)

MAX_BATCH = 100


@dataclass(frozen=True)
class DecisionInput:
    request: DecisionRequest
    explain: bool = False
    trace_id: str | None = None  # from the request's own traceparent, when it has one


@dataclass(frozen=True)
class Decision:
    decision_id: uuid.UUID
    trace_id: str
    evaluation: Evaluation
    evaluation_ns: int


def failed_closed(bundle_hash: str = "") -> Evaluation:
    return Evaluation(Verdict(Action.DENY, EVALUATION_ERROR), bundle_hash)


class DecisionService:
    def __init__(self, bundles: BundleCache) -> None:
        self._bundles = bundles

    async def evaluate(self, principal: Principal, item: DecisionInput) -> Decision:
        principal.require(Scope.DECISIONS_EVALUATE)
        bundle = await self._bundle(principal.require_tenant())
        return self._decide(bundle, item)

    async def evaluate_batch(
        self, principal: Principal, items: Sequence[DecisionInput]
    ) -> list[Decision]:
        principal.require(Scope.DECISIONS_EVALUATE)
        tenant_id = principal.require_tenant()
        if not items:
            raise InvalidArgument("at least one request is required", field="requests")
        if len(items) > MAX_BATCH:
            raise InvalidArgument(f"at most {MAX_BATCH} requests per batch", field="requests")
        bundle = await self._bundle(tenant_id)
        return [self._decide(bundle, item) for item in items]

    async def _bundle(self, tenant_id: uuid.UUID) -> Bundle | None:
        """The tenant's bundle, or None when it cannot be loaded or compiled (fail closed)."""
        try:
            return await self._bundles.get(tenant_id)
        except Exception as exc:
            log.error("decision.bundle_unavailable", error=type(exc).__name__, detail=str(exc))
            return None

    def _decide(self, bundle: Bundle | None, item: DecisionInput) -> Decision:
        trace_id = item.trace_id or current_trace_id.get() or new_trace().trace_id
        started = time.perf_counter_ns()
        if bundle is None:
            evaluation = failed_closed()
        else:
            try:
                evaluation = bundle.evaluate(item.request, explain=item.explain)
            except Exception as exc:  # the engine fails closed itself; this guards the guard
                log.error("decision.evaluation_error", error=type(exc).__name__)
                evaluation = failed_closed(bundle.hash)
        elapsed = time.perf_counter_ns() - started
        DECISIONS.labels(action=evaluation.verdict.action.value).inc()
        DECISION_EVALUATION.observe(elapsed / 1e9)
        return Decision(uuid7(), trace_id, evaluation, elapsed)
