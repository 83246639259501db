"""Verification of a tenant's chain, or of a contiguous range of it, in one pass.

Records stream through one at a time (memory stays constant however long the chain), and
the first problem in seq order is reported. For each record, in this order: its tenant,
its seq (contiguous from ``start_seq``), its link (``prev_hash`` equals the previous
record's hash), its own hash, then the checkpoints pinned at its seq.

A record altered *and* re-hashed is consistent on its own; the break shows in the next
record's link and is reported as ``hash_mismatch`` at that next seq, since nothing in the
two records tells which of them was altered (a checkpoint at the altered seq does).

Anchors (``audit.anchors``: the checkpoints as copied outside the database) are checked like
checkpoints and, beyond that, against the database's checkpoint at their seq. An anchor
beyond the last record is ``truncated``: the newest records were deleted, checkpoints and
chain head with them. Only a genuine anchor proves anything; a forged one is
``bad_signature``. Anchors that could not be read make the result ``anchors_unavailable``,
never ``ok``.
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

Problem = Literal[
    "hash_mismatch",
    "gap",
    "checkpoint_mismatch",
    "bad_signature",
    "tenant_mismatch",
    "truncated",
    "anchor_mismatch",
    "anchors_unavailable",
]


@dataclass(frozen=True)
class AnchorLog:
    """What the anchor stream holds for one tenant, in publication order.

    ``unavailable`` says why the anchors could not be read; verification is then never
    ``ok``. ``malformed`` counts messages on the tenant's subject that are not anchors.
    """

    anchors: tuple[Checkpoint, ...] = ()
    malformed: int = 0
    unavailable: str | None = None


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
    anchors: AnchorLog | None = None,
) -> VerificationResult:
    """Verify ``records`` (ordered by seq) from ``start_seq`` against ``checkpoints``.

    The first record links to ``expected_prev_hash``, or to ``GENESIS_HASH`` when
    ``start_seq`` is 1; starting later without it, its ``prev_hash`` is taken on trust.
    With ``last_seq`` the range ends there: records after it are not read, missing ones
    up to it are a gap, and checkpoints after it are ignored. Without it the records run
    to the end of the chain, so a checkpoint beyond the last record means the newest
    records were deleted. ``anchors`` (None: none were consulted) are compared with the
    records and with ``checkpoints``; those outside the range are ignored.
    """
    if start_seq < 1 or (last_seq is not None and last_seq < start_seq - 1):
        raise ValueError("need 1 <= start_seq <= last_seq + 1")
    if start_seq == 1:
        if expected_prev_hash not in (None, GENESIS_HASH):
            raise ValueError("the chain starting at seq 1 links to GENESIS_HASH")
        expected_prev_hash = GENESIS_HASH

    pinned = _by_seq(checkpoints, start_seq, last_seq)
    anchored = _by_seq(anchors.anchors if anchors else (), start_seq, last_seq)

    checked = 0
    try:
        for record in records:
            if last_seq is not None and record.seq > last_seq:
                break
            _check_record(record, start_seq + checked, expected_prev_hash, tenant_id)
            stored = pinned.pop(record.seq, [])
            for cp in stored:
                _check_checkpoint(cp, record, verifier, tenant_id)
            for anchor in anchored.pop(record.seq, []):
                _check_anchor(anchor, record, stored, verifier, tenant_id)
            expected_prev_hash = record.hash
            checked += 1
        _check_end(start_seq + checked, last_seq, pinned, anchored, verifier, tenant_id)
    except _Failure as failure:
        return VerificationResult(False, checked, failure.seq, failure.problem, failure.detail)

    if checked == 0:
        result = VerificationResult(True, 0, None, None, "no records to verify")
    else:
        last = start_seq + checked - 1
        result = VerificationResult(
            True, checked, None, None, f"records {start_seq}-{last} are intact"
        )
    return _with_anchor_log(result, anchors)


def _by_seq(
    checkpoints: Iterable[Checkpoint], start_seq: int, last_seq: int | None
) -> defaultdict[int, list[Checkpoint]]:
    pinned: defaultdict[int, list[Checkpoint]] = defaultdict(list)
    for cp in checkpoints:
        if cp.seq >= start_seq and (last_seq is None or cp.seq <= last_seq):
            pinned[cp.seq].append(cp)
    return pinned


def _with_anchor_log(result: VerificationResult, anchors: AnchorLog | None) -> VerificationResult:
    """An intact chain is ``ok`` only if the anchors were read, and all of them were anchors."""
    if anchors is None:
        return result
    if anchors.malformed:
        return VerificationResult(
            False,
            result.checked,
            None,
            "bad_signature",
            f"{anchors.malformed} message(s) on the tenant's anchor subject are not anchors",
        )
    if anchors.unavailable is not None:
        return VerificationResult(
            False,
            result.checked,
            None,
            "anchors_unavailable",
            f"{result.detail}, but only against the database: {anchors.unavailable}",
        )
    return result


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


def _check_anchor(
    anchor: Checkpoint,
    record: LedgerRecord,
    stored: Sequence[Checkpoint],
    verifier: CheckpointVerifier,
    tenant_id: uuid.UUID,
) -> None:
    _check_genuine(anchor, verifier, tenant_id, what="anchor")
    if anchor.hash != record.hash:
        raise _Failure(
            "anchor_mismatch",
            anchor.seq,
            f"record {anchor.seq}: hash differs from the one its anchor pins",
        )
    if anchor not in stored:
        why = "differs from" if stored else "is missing, though pinned by"
        raise _Failure(
            "anchor_mismatch",
            anchor.seq,
            f"record {anchor.seq}: the database's checkpoint {why} its anchor",
        )


def _check_genuine(
    cp: Checkpoint, verifier: CheckpointVerifier, tenant_id: uuid.UUID, what: str = "checkpoint"
) -> None:
    if cp.tenant_id != tenant_id:
        raise _Failure(
            "tenant_mismatch",
            cp.seq,
            f"{what} at record {cp.seq}: belongs to tenant {cp.tenant_id}, not {tenant_id}",
        )
    if not verifier.verify(cp):
        raise _Failure(
            "bad_signature",
            cp.seq,
            f"{what} at record {cp.seq}: signature is invalid or by an unknown key",
        )


def _check_end(  # noqa: PLR0917
    next_seq: int,
    last_seq: int | None,
    pinned: dict[int, list[Checkpoint]],
    anchored: dict[int, list[Checkpoint]],
    verifier: CheckpointVerifier,
    tenant_id: uuid.UUID,
) -> None:
    """After the last record: nothing may be missing before the range's known end, and
    nothing signed may pin a record beyond it (what is left in ``pinned`` / ``anchored``)."""
    # Only a genuine checkpoint or anchor proves deletion; a forged one is reported as such.
    if last_seq is None and pinned:
        first = pinned[min(pinned)][0]
        _check_genuine(first, verifier, tenant_id)
        raise _Failure(
            "checkpoint_mismatch",
            next_seq,
            f"{_missing(next_seq, first.seq)}: a signed checkpoint pins record {first.seq}",
        )
    if anchored:
        first = anchored[min(anchored)][0]
        _check_genuine(first, verifier, tenant_id, what="anchor")
        newest = max(anchored)
        raise _Failure(
            "truncated",
            next_seq,
            f"{_missing(next_seq, newest)}: the ledger ends at record {next_seq - 1} but an "
            f"anchor outside the database pins record {newest}",
        )
    if last_seq is not None and next_seq <= last_seq:
        raise _Failure("gap", next_seq, _missing(next_seq, last_seq))


def _missing(first: int, last: int) -> str:
    return f"record {first} is missing" if first == last else f"records {first}-{last} are missing"
