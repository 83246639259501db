"""Verifies a tenant's stored ledger straight from PostgreSQL, streaming its records
(``audit.repository.ledger_range``) so a chain of millions verifies in constant memory;
blocking (callers use a thread). The
caller reads the tenant's anchors first (``audit.anchors.read_anchors``): an anchor is
published only after its checkpoint committed, so everything an anchor pins is visible to
the transaction that starts after the anchors were read.
"""

from __future__ import annotations

import uuid

from fulcrum.audit.checkpoints import CheckpointVerifier
from fulcrum.audit.repository import ledger_range
from fulcrum.audit.verify_chain import AnchorLog, VerificationResult, verify_chain
from fulcrum.observability.metrics import LEDGER_VERIFICATION_FAILURES


def verify_tenant(
    conninfo: str,
    tenant_id: uuid.UUID,
    verifier: CheckpointVerifier,
    *,
    anchors: AnchorLog,
    from_seq: int = 1,
    to_seq: int | None = None,
) -> VerificationResult:
    with ledger_range(conninfo, tenant_id, from_seq, to_seq) as stored:
        if from_seq > 1 and stored.prev_hash is None:
            return _failed(
                VerificationResult(
                    ok=False,
                    checked=0,
                    first_bad_seq=from_seq - 1,
                    problem="gap",
                    detail=f"record {from_seq - 1}, which record {from_seq} links to, is missing",
                )
            )
        result = verify_chain(
            stored.records,
            stored.checkpoints,
            verifier,
            tenant_id=tenant_id,
            start_seq=from_seq,
            expected_prev_hash=stored.prev_hash,
            last_seq=to_seq,
            anchors=anchors,
        )
    head = stored.head_seq
    last_verified = from_seq + result.checked - 1
    # A broken chain is reported first; a head beyond the ledger outranks what only
    # concerns the anchors as a whole (unreadable, or messages that are not anchors).
    chain_ok = result.first_bad_seq is None
    if chain_ok and to_seq is None and head is not None and head > last_verified:
        # Records newer than the last checkpoint are pinned only by the chain head.
        result = VerificationResult(
            ok=False,
            checked=result.checked,
            first_bad_seq=last_verified + 1,
            problem="gap",
            detail=f"the chain head names record {head} but the ledger ends at {last_verified}",
        )
    return _failed(result)


def _failed(result: VerificationResult) -> VerificationResult:
    if not result.ok:
        LEDGER_VERIFICATION_FAILURES.inc()
    return result
