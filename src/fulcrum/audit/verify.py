"""Verification of a tenant's chain, or of a contiguous range of it, in one pass.

Records stream through one at a time (memory stays constant however long the chain), and
the first problem in seq order is reported. For each record, in this order: its tenant,
its seq (contiguous from ``start_seq``), its link (``prev_hash`` equals the previous
record's hash), its own hash, then the checkpoints pinned at its seq.

A record altered *and* re-hashed is consistent on its own; the break shows in the next
record's link and is reported as ``hash_mismatch`` at that next seq, since nothing in the
two records tells which of them was altered (a checkpoint at the altered seq does).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import rfc8785

from fulcrum.audit.chain import record_hash
from fulcrum.audit.checkpoints import Checkpoint, CheckpointVerifier
from fulcrum.audit.records import GENESIS_HASH, LedgerRecord

Problem = Literal["hash_mismatch", "gap", "checkpoint_mismatch", "bad_signature", "tenant_mismatch"]


@dataclass(frozen=True)
class VerificationResult:
    ok: bool
    checked: int  # records found intact before the first problem (all of them when ok)
    first_bad_seq: int | None
    problem: Problem | None
    detail: str  # a sentence for people, e.g. "record 57: stored hash does not match ..."


class _Failure(Exception):
    def __init__(self, problem: Problem, seq: int, detail: str) -> None:
        super().__init__(detail)
        self.problem = problem
        self.seq = seq
        self.detail = detail


def verify_chain(
    records: Iterable[LedgerRecord],
    checkpoints: Sequence[Checkpoint],
    verifier: CheckpointVerifier,
    *,
    tenant_id: uuid.UUID,
    start_seq: int = 1,
    expected_prev_hash: bytes | None = None,
    last_seq: int | None = None,
) -> VerificationResult:
    """Verify ``records`` (ordered by seq) from ``start_seq`` against ``checkpoints``.

    The first record links to ``expected_prev_hash``, or to ``GENESIS_HASH`` when
    ``start_seq`` is 1; starting later without it, its ``prev_hash`` is taken on trust.
    With ``last_seq`` the range ends there: records after it are not read, missing ones
    up to it are a gap, and checkpoints after it are ignored. Without it the records run
    to the end of the chain, so a checkpoint beyond the last record means the newest
    records were deleted.
    """
    if start_seq < 1 or (last_seq is not None and last_seq < start_seq - 1):
        raise ValueError("need 1 <= start_seq <= last_seq + 1")
    if start_seq == 1:
        if expected_prev_hash not in (None, GENESIS_HASH):
            raise ValueError("the chain starting at seq 1 links to GENESIS_HASH")
        expected_prev_hash = GENESIS_HASH

    pinned: defaultdict[int, list[Checkpoint]] = defaultdict(list)
    for cp in checkpoints:
        if cp.seq >= start_seq and (last_seq is None or cp.seq <= last_seq):
            pinned[cp.seq].append(cp)

    checked = 0
    try:
        for record in records:
            if last_seq is not None and record.seq > last_seq:
                break
            _check_record(record, start_seq + checked, expected_prev_hash, tenant_id)
            for cp in pinned.pop(record.seq, []):
                _check_checkpoint(cp, record, verifier, tenant_id)
            expected_prev_hash = record.hash
            checked += 1
        _check_end(start_seq + checked, last_seq, pinned, verifier, tenant_id)
    except _Failure as failure:
        return VerificationResult(False, checked, failure.seq, failure.problem, failure.detail)

    if checked == 0:
        return VerificationResult(True, 0, None, None, "no records to verify")
    last = start_seq + checked - 1
    return VerificationResult(True, checked, None, None, f"records {start_seq}-{last} are intact")


def _check_record(
    record: LedgerRecord, seq: int, expected_prev_hash: bytes | None, tenant_id: uuid.UUID
) -> None:
    """Check ``record`` as the one expected at ``seq``."""
    if record.entry.tenant_id != tenant_id:
        raise _Failure(
            "tenant_mismatch",
            record.seq,
            f"record {record.seq}: belongs to tenant {record.entry.tenant_id}, not {tenant_id}",
        )
    if record.seq > seq:
        raise _Failure("gap", seq, _missing(seq, record.seq - 1))
    if record.seq < seq:
        raise _Failure("gap", seq, f"record {seq} expected, record {record.seq} found out of order")
    if expected_prev_hash is not None and record.prev_hash != expected_prev_hash:
        if seq == 1:
            detail = "record 1: prev_hash is not the genesis hash"
        else:
            detail = (
                f"record {seq}: prev_hash does not match the hash of record {seq - 1}"
                " (one of the two was altered)"
            )
        raise _Failure("hash_mismatch", seq, detail)
    try:
        intact = record.hash == record_hash(record.prev_hash, record.entry, seq)
    except rfc8785.CanonicalizationError as exc:
        raise _Failure(
            "hash_mismatch", seq, f"record {seq}: contents cannot be canonicalised ({exc})"
        ) from exc
    if not intact:
        raise _Failure(
            "hash_mismatch", seq, f"record {seq}: stored hash does not match its contents"
        )


def _check_checkpoint(
    cp: Checkpoint, record: LedgerRecord, verifier: CheckpointVerifier, tenant_id: uuid.UUID
) -> None:
    _check_genuine(cp, verifier, tenant_id)
    if cp.hash != record.hash:
        raise _Failure(
            "checkpoint_mismatch",
            cp.seq,
            f"record {cp.seq}: hash differs from the one its signed checkpoint pins",
        )


def _check_genuine(cp: Checkpoint, verifier: CheckpointVerifier, tenant_id: uuid.UUID) -> None:
    if cp.tenant_id != tenant_id:
        raise _Failure(
            "tenant_mismatch",
            cp.seq,
            f"checkpoint at record {cp.seq}: belongs to tenant {cp.tenant_id}, not {tenant_id}",
        )
    if not verifier.verify(cp):
        raise _Failure(
            "bad_signature",
            cp.seq,
            f"checkpoint at record {cp.seq}: signature is invalid or by an unknown key",
        )


def _check_end(
    next_seq: int,
    last_seq: int | None,
    pinned: dict[int, list[Checkpoint]],
    verifier: CheckpointVerifier,
    tenant_id: uuid.UUID,
) -> None:
    """After the last record: nothing may be missing before the range's known end."""
    if last_seq is not None:
        if next_seq <= last_seq:
            raise _Failure("gap", next_seq, _missing(next_seq, last_seq))
        return
    if not pinned:
        return
    # Only a genuine checkpoint proves deletion; a forged one is reported as such.
    first = pinned[min(pinned)][0]
    _check_genuine(first, verifier, tenant_id)
    raise _Failure(
        "checkpoint_mismatch",
        next_seq,
        f"{_missing(next_seq, first.seq)}: a signed checkpoint pins record {first.seq}",
    )


def _missing(first: int, last: int) -> str:
    return f"record {first} is missing" if first == last else f"records {first}-{last} are missing"
