"""Evaluate: authorise, take the tenant's bundle from memory, evaluate, answer.

Any failure inside evaluation fails closed: the answer is deny with reason
``evaluation_error``, never an allow and never a bare error.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Sequence

from fulcrum.auth.principal import Principal
from fulcrum.decisions import operations as ops
from fulcrum.decisions.bundles import BundleCache
from fulcrum.decisions.models import Decision, DecisionInput
from fulcrum.decisions.voids import DecisionVoids
from fulcrum.decisions.wire import decision_event
from fulcrum.engine.compiler import Bundle
from fulcrum.engine.model import EVALUATION_ERROR, Action, Evaluation, Verdict
from fulcrum.events.publisher import EventPublisher, Unconfirmed
from fulcrum.kit.errors import FulcrumError
from fulcrum.kit.ids import uuid7
from fulcrum.kit.logging import get_logger
from fulcrum.kit.tracing import current_trace_id, new_trace
from fulcrum.kit.validation import batch_size
from fulcrum.observability.metrics import DECISION_EVALUATION, DECISIONS, DECISIONS_UNRECORDED

log = get_logger(__name__)


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
        principal.authorize(ops.EVALUATE)
        return (await self._evaluate(principal, [item]))[0]

    async def evaluate_batch(
        self, principal: Principal, items: Sequence[DecisionInput]
    ) -> list[Decision]:
        principal.authorize(ops.EVALUATE_BATCH)
        return await self._evaluate(principal, items)

    async def _evaluate(
        self, principal: Principal, items: Sequence[DecisionInput]
    ) -> list[Decision]:
        tenant_id = principal.require_tenant()
        batch_size(len(items))
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
