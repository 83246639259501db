"""Verifies a tenant's ledger straight from PostgreSQL, streaming records through a
server-side cursor so a chain of millions verifies in constant memory.

Runs on a plain (blocking) connection of its own: verification is rare and long, and should
neither hold a pooled connection nor block the event loop (callers use a thread). The
caller reads the tenant's anchors first (``audit.anchors.read_anchors``): an anchor is
published only after its checkpoint committed, so everything an anchor pins is visible to
the transaction that starts after the anchors were read.
"""

from __future__ import annotations

import uuid

import psycopg

from fulcrum.audit.checkpoints import CheckpointVerifier
from fulcrum.audit.repository import (
    CHECKPOINTS_QUERY,
    RANGE_QUERY,
    checkpoint_from_row,
    record_from_row,
)
from fulcrum.audit.verify import AnchorLog, VerificationResult, verify_chain
from fulcrum.kit.db import TENANT_GUC
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
    with psycopg.connect(conninfo) as conn, conn.transaction():
        conn.execute("SELECT set_config(%s, %s, true)", (TENANT_GUC, str(tenant_id)))
        expected_prev: bytes | None = None
        if from_seq > 1:
            row = conn.execute(
                "SELECT hash FROM audit_records WHERE seq = %s", (from_seq - 1,)
            ).fetchone()
            if row is None:
                return _failed(
                    VerificationResult(
                        ok=False,
                        checked=0,
                        first_bad_seq=from_seq - 1,
                        problem="gap",
                        detail=f"record {from_seq - 1}, which record {from_seq} links to, "
                        "is missing",
                    )
                )
            expected_prev = bytes(row[0])
        head = conn.execute("SELECT seq FROM audit_chain_heads").fetchone()
        checkpoints = [checkpoint_from_row(r) for r in conn.execute(CHECKPOINTS_QUERY)]
        with conn.cursor(name="ledger_verify") as cursor:
            cursor.itersize = 5000
            cursor.execute(RANGE_QUERY, (from_seq, to_seq, to_seq))
            result = verify_chain(
                (record_from_row(row) for row in cursor),
                checkpoints,
                verifier,
                tenant_id=tenant_id,
                start_seq=from_seq,
                expected_prev_hash=expected_prev,
                last_seq=to_seq,
                anchors=anchors,
            )
    last_verified = from_seq + result.checked - 1
    # A broken chain is reported first; a head beyond the ledger outranks what only
    # concerns the anchors as a whole (unreadable, or messages that are not anchors).
    chain_ok = result.first_bad_seq is None
    if chain_ok and to_seq is None and head is not None and int(head[0]) > last_verified:
        # Records newer than the last checkpoint are pinned only by the chain head.
        result = VerificationResult(
            ok=False,
            checked=result.checked,
            first_bad_seq=last_verified + 1,
            problem="gap",
            detail=f"the chain head names record {head[0]} but the ledger ends at {last_verified}",
        )
    return _failed(result)


def _failed(result: VerificationResult) -> VerificationResult:
    if not result.ok:
        LEDGER_VERIFICATION_FAILURES.inc()
    return result
