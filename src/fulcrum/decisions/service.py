"""Evaluate: authorise, take the tenant's bundle from memory, evaluate, answer.

Any failure inside evaluation fails closed: the answer is deny with reason
``evaluation_error``, never an allow and never a bare error.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from fulcrum.auth.principal import Principal
from fulcrum.auth.scopes import Scope
from fulcrum.decisions.bundles import BundleCache
from fulcrum.decisions.voids import DecisionVoids
from fulcrum.engine.compiler import Bundle
from fulcrum.engine.model import EVALUATION_ERROR, Action, DecisionRequest, Evaluation, Verdict
from fulcrum.events.codec import ACTIONS, OutgoingEvent, encode_decision
from fulcrum.events.publisher import EventPublisher, Unconfirmed
from fulcrum.kit.errors import FulcrumError, InvalidArgument
from fulcrum.kit.ids import uuid7
from fulcrum.kit.logging import get_logger
from fulcrum.kit.tracing import current_trace_id, new_trace
from fulcrum.observability.metrics import DECISION_EVALUATION, DECISIONS, DECISIONS_UNRECORDED
from fulcrum.pb.v1 import decisions_pb2, events_pb2

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
    decided_at: dt.datetime


def decision_event(
    tenant_id: uuid.UUID, actor: str, item: DecisionInput, decision: Decision
) -> OutgoingEvent:
    verdict, request = decision.evaluation.verdict, item.request
    event = events_pb2.DecisionEvent(
        tenant_id=str(tenant_id),
        decision_id=str(decision.decision_id),
        trace_id=decision.trace_id,
        actor=actor,
        agent_id=request.agent_id,
        tool_name=request.tool_name,
        transport=request.transport,
        model_id=request.model_id,
        action=ACTIONS[verdict.action],
        reason=verdict.reason,
        policy_id=verdict.policy_id,
        policy_version=verdict.policy_version,
        rule_id=verdict.rule_id,
        bundle_hash=decision.evaluation.bundle_hash,
        matched=decision.evaluation.matched,
        shadow=[
            decisions_pb2.Verdict(
                action=ACTIONS[s.action],
                reason=s.reason,
                policy_id=s.policy_id,
                policy_version=s.policy_version,
                rule_id=s.rule_id,
            )
            for s in decision.evaluation.shadow
        ],
        evaluation_time_ns=decision.evaluation_ns,
    )
    event.time.FromDatetime(decision.decided_at)
    if request.cost_estimate is not None:
        event.cost_estimate = request.cost_estimate
    return encode_decision(event)


def failed_closed(bundle_hash: str = "") -> Evaluation:
    return Evaluation(Verdict(Action.DENY, EVALUATION_ERROR), bundle_hash)


class DecisionService:
    """With a publisher, a decision is answered only once its event is stored (audit before
    answer); ``best_effort`` answers anyway when the event path fails, and counts it."""

    def __init__(
        self,
        bundles: BundleCache,
        publisher: EventPublisher | None,
        *,
        voids: DecisionVoids | None = None,
        best_effort: bool = False,
    ) -> None:
        self._bundles = bundles
        self._publisher = publisher
        self._voids = voids
        self._best_effort = best_effort

    async def evaluate(self, principal: Principal, item: DecisionInput) -> Decision:
        return (await self.evaluate_batch(principal, [item]))[0]

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
        decisions = [self._decide(bundle, item) for item in items]
        await self._record(principal, tenant_id, items, decisions)
        # Counted once answered: a decision refused for want of a record was not given.
        for decision in decisions:
            DECISIONS.labels(action=decision.evaluation.verdict.action.value).inc()
        return decisions

    async def _record(
        self,
        principal: Principal,
        tenant_id: uuid.UUID,
        items: Sequence[DecisionInput],
        decisions: Sequence[Decision],
    ) -> None:
        if self._publisher is None:
            return
        events = [
            decision_event(tenant_id, principal.actor, item, decision)
            for item, decision in zip(items, decisions, strict=True)
        ]
        try:
            await self._publisher.publish(events)
        except Unconfirmed as exc:
            if self._best_effort:
                self._count_unrecorded(len(events))
                return
            if self._voids is not None:
                # Refused, yet the events may be stored: the ledger must say they were not
                # answered.
                await self._voids.record(
                    tenant_id,
                    actor=principal.actor,
                    trace_ids=[d.trace_id for d in decisions],
                    decision_ids=[d.decision_id for d in decisions],
                    reason=str(exc.refusal),
                )
            raise exc.refusal from exc
        except FulcrumError:
            if not self._best_effort:
                raise
            self._count_unrecorded(len(events))

    def _count_unrecorded(self, count: int) -> None:
        log.error("decision.unrecorded", decisions=count)
        DECISIONS_UNRECORDED.inc(count)

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
        DECISION_EVALUATION.observe(elapsed / 1e9)
        return Decision(uuid7(), trace_id, evaluation, elapsed, dt.datetime.now(dt.UTC))
