"""Real-looking ledger entries, keys and signed chains for the audit tests."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import replace

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from fulcrum.audit.chain import canonical_details, link, prepare
from fulcrum.audit.checkpoints import Checkpoint, CheckpointSigner
from fulcrum.audit.records import GENESIS_HASH, LedgerEntry, LedgerRecord, RecordKind

TENANT = uuid.UUID("5f0c6a2e-3b1d-4c8e-9a7f-2d4e6b8c0a13")
OTHER_TENANT = uuid.UUID("a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d")
T0 = dt.datetime(2026, 11, 28, 9, 30, 0, 123456, tzinfo=dt.UTC)
SIGNED_AT = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def decision_entry(n: int, tenant_id: uuid.UUID = TENANT) -> LedgerEntry:
    denied = n % 3 == 0
    return LedgerEntry(
        tenant_id=tenant_id,
        event_id=uuid.uuid5(tenant_id, f"decision-{n}"),
        kind=RecordKind.DECISION,
        occurred_at=T0 + dt.timedelta(seconds=n, microseconds=n),
        trace_id=f"{n:032x}",
        actor="agent:billing-assistant",
        action="decision.deny" if denied else "decision.allow",
        resource_type="tool_call",
        resource_id=f"call_{n:08d}",
        outcome="deny" if denied else "allow",
        agent_id="billing-assistant",
        tool_name="stripe.refunds.create",
        details={
            "policy_id": "pol_refunds",
            "policy_version": 7,
            "rule": "refund-limit" if denied else None,
            "amount": 1250.5 + n,
            "currency": "EUR",
            "risk_score": 0.87,
            "matched": denied,
            "reasons": ["amount exceeds 1 000 € limit"] if denied else [],
            "labels": {"env": "prod", "région": "eu-west-3"},
        },
    )


def change_entry(n: int, tenant_id: uuid.UUID = TENANT) -> LedgerEntry:
    return LedgerEntry(
        tenant_id=tenant_id,
        event_id=uuid.uuid5(tenant_id, f"change-{n}"),
        kind=RecordKind.CHANGE,
        occurred_at=T0 + dt.timedelta(seconds=n),
        trace_id=f"{n:032x}",
        actor="user:alice@example.com",
        action="policy.update",
        resource_type="policy",
        resource_id="pol_refunds",
        outcome="success",
        details={
            "version": {"from": 6, "to": 7},
            "changed": ["rules[0].limit"],
            "comment": "Tighten refunds — ≤ 1 000 € 🔒",
        },
    )


def chain(entries: Sequence[LedgerEntry], *, head_seq: int, head_hash: bytes) -> list[LedgerRecord]:
    """Records as the worker makes them: every entry prepared, then linked after the head;
    each with its entry as the ledger stores it (details as ``jsonb`` gives them back)."""
    links = link([prepare(e) for e in entries], head_seq=head_seq, head_hash=head_hash)
    return [
        LedgerRecord(stored(e), x.seq, x.prev_hash, x.hash)
        for e, x in zip(entries, links, strict=True)
    ]


def stored(entry: LedgerEntry) -> LedgerEntry:
    details = canonical_details(entry.details)
    return entry if details == entry.details else replace(entry, details=details)


def entries(count: int, tenant_id: uuid.UUID = TENANT) -> list[LedgerEntry]:
    """Mostly decisions, with an administrative change every tenth event."""
    return [
        change_entry(n, tenant_id) if n % 10 == 0 else decision_entry(n, tenant_id)
        for n in range(1, count + 1)
    ]


def private_key_pem() -> bytes:
    """A fresh key in the form of the ``audit_signing_key`` secret (PKCS8 PEM)."""
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def signed_chain(
    signer: CheckpointSigner, count: int, *, every: int
) -> tuple[list[LedgerRecord], list[Checkpoint]]:
    """A chain of ``count`` records with a checkpoint at every ``every``-th seq."""
    records = chain(entries(count), head_seq=0, head_hash=GENESIS_HASH)
    checkpoints = [
        signer.sign(TENANT, record.seq, record.hash, SIGNED_AT)
        for record in records
        if record.seq % every == 0
    ]
    return records, checkpoints
