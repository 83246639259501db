"""Void records: decisions refused although their events may already be in the stream.

When the API gives up on confirming a decision's event (NATS went away after it was sent),
the event may still be stored, and then chained, although the caller was refused. A void
record says so: one ``decision.void`` administrative change per decision, written through
the change outbox (``audit_events``, in PostgreSQL), so it reaches the ledger once NATS is
back even if this process does not live that long. A decision in the ledger that was not
answered therefore always has its void record next to it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from fulcrum.audit.outbox import record_changes
from fulcrum.kit.db import Database
from fulcrum.kit.logging import get_logger
from fulcrum.observability.metrics import DECISION_VOIDS, DECISION_VOIDS_FAILED

log = get_logger(__name__)

VOID_ACTION = "decision.void"
VOID_OUTCOME = "not_answered"


class DecisionVoids:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self,
        tenant_id: uuid.UUID,
        *,
        actor: str,
        trace_ids: Sequence[str],
        decision_ids: Sequence[uuid.UUID],
        reason: str,
    ) -> None:
        """Write the void records; a failure is logged and counted, never raised (the
        caller is refusing the request anyway)."""
        try:
            async with self._db.tenant_tx(tenant_id) as conn:
                await record_changes(
                    conn,
                    tenant_id=tenant_id,
                    actor=actor,
                    action=VOID_ACTION,
                    resource_type="decision",
                    targets=[
                        (trace_id, str(decision_id))
                        for trace_id, decision_id in zip(trace_ids, decision_ids, strict=True)
                    ],
                    outcome=VOID_OUTCOME,
                    details={"reason": reason},
                )
        except Exception as exc:
            DECISION_VOIDS_FAILED.inc(len(decision_ids))
            log.error(
                "decision.void_failed",
                tenant_id=str(tenant_id),
                decisions=len(decision_ids),
                error=type(exc).__name__,
            )
            return
        DECISION_VOIDS.inc(len(decision_ids))
        log.warning("decision.voided", tenant_id=str(tenant_id), decisions=len(decision_ids))
