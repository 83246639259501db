"""verify_chain: an intact chain passes; every kind of tampering is reported at its seq."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from fulcrum.audit.chain import record_hash
from fulcrum.audit.checkpoints import Checkpoint, CheckpointSigner, CheckpointVerifier
from fulcrum.audit.records import GENESIS_HASH, LedgerRecord
from fulcrum.audit.verify_chain import VerificationResult, verify_chain
from tests.unit.audit.ledger import (
    OTHER_TENANT,
    SIGNED_AT,
    TENANT,
    chain,
    decision_entry,
    entries,
    private_key_pem,
    signed_chain,
)

COUNT = 60  # checkpoints at 20, 40 and 60


@pytest.fixture(scope="module")
def signer() -> CheckpointSigner:
    return CheckpointSigner(private_key_pem())


@pytest.fixture(scope="module")
def verifier(signer: CheckpointSigner) -> CheckpointVerifier:
    return CheckpointVerifier([signer.public_key_pem()])


@pytest.fixture(scope="module")
def ledger(signer: CheckpointSigner) -> tuple[list[LedgerRecord], list[Checkpoint]]:
    return signed_chain(signer, COUNT, every=20)


@pytest.fixture
def records(ledger: tuple[list[LedgerRecord], list[Checkpoint]]) -> list[LedgerRecord]:
    return list(ledger[0])  # a copy each test may tamper with


@pytest.fixture
def checkpoints(ledger: tuple[list[LedgerRecord], list[Checkpoint]]) -> list[Checkpoint]:
    return list(ledger[1])


def at(records: list[LedgerRecord], seq: int) -> LedgerRecord:
    return records[seq - 1]


def edited(record: LedgerRecord, **entry_changes: Any) -> LedgerRecord:
    """The record with its entry changed, hashes left as stored."""
    return dataclasses.replace(record, entry=dataclasses.replace(record.entry, **entry_changes))


def rehashed(record: LedgerRecord) -> LedgerRecord:
    """The record with a hash recomputed to match its (altered) contents."""
    return dataclasses.replace(record, hash=record_hash(record.prev_hash, record.entry, record.seq))


def assert_bad(result: VerificationResult, problem: str, seq: int, detail: str = "") -> None:
    assert (result.ok, result.problem, result.first_bad_seq) == (False, problem, seq), result
    assert result.checked == seq - 1  # everything before the first problem was intact
    assert detail in result.detail


# Intact chains


def test_an_intact_chain_verifies(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    result = verify_chain(records, checkpoints, verifier, tenant_id=TENANT)
    assert result == VerificationResult(True, COUNT, None, None, "records 1-60 are intact")


def test_an_empty_chain_verifies(verifier: CheckpointVerifier) -> None:
    result = verify_chain([], [], verifier, tenant_id=TENANT)
    assert result == VerificationResult(True, 0, None, None, "no records to verify")


def test_records_are_consumed_one_at_a_time(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    """A one-shot iterator suffices: the verifier never needs to go back."""
    assert verify_chain(iter(records), checkpoints, verifier, tenant_id=TENANT).ok


def test_checkpoints_may_come_in_any_order_and_several_per_seq(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], signer: CheckpointSigner
) -> None:
    rotated = CheckpointSigner(private_key_pem())
    again = rotated.sign(TENANT, 40, at(records, 40).hash, SIGNED_AT + dt.timedelta(days=1))
    both = CheckpointVerifier([signer.public_key_pem(), rotated.public_key_pem()])
    assert verify_chain(records, [again, *reversed(checkpoints)], both, tenant_id=TENANT).ok


# Altered records


@pytest.mark.parametrize(
    "change",
    [
        {"outcome": "allow"},
        {"action": "decision.allow"},
        {"actor": "agent:someone-else"},
        {"occurred_at": dt.datetime(2026, 11, 28, 9, 30, 31, tzinfo=dt.UTC)},
        {"details": {**decision_entry(30).details, "amount": 1.0}},
        {"details": {}},
        {"agent_id": "billing-assistant"},
    ],
    ids=["outcome", "action", "actor", "occurred_at", "details-value", "details-dropped", "agent"],
)
def test_a_changed_field_is_a_hash_mismatch_at_its_seq(
    records: list[LedgerRecord],
    checkpoints: list[Checkpoint],
    verifier: CheckpointVerifier,
    change: dict[str, Any],
) -> None:
    records[29] = edited(at(records, 30), **change)
    result = verify_chain(records, checkpoints, verifier, tenant_id=TENANT)
    assert_bad(result, "hash_mismatch", 30, "record 30: stored hash does not match its contents")


def test_a_changed_stored_hash_is_a_hash_mismatch_at_its_seq(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    records[29] = dataclasses.replace(at(records, 30), hash=bytes(32))
    result = verify_chain(records, checkpoints, verifier, tenant_id=TENANT)
    assert_bad(result, "hash_mismatch", 30, "stored hash")


def test_a_record_altered_and_rehashed_breaks_the_next_link(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    """Record 30 is self-consistent; the break shows at 31, which names both records."""
    records[29] = rehashed(edited(at(records, 30), outcome="allow"))
    result = verify_chain(records, checkpoints, verifier, tenant_id=TENANT)
    assert_bad(
        result,
        "hash_mismatch",
        31,
        "record 31: prev_hash does not match the hash of record 30 (one of the two was altered)",
    )


def test_a_rehashed_record_under_a_checkpoint_is_pinpointed(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    records[39] = rehashed(edited(at(records, 40), outcome="allow"))
    result = verify_chain(records, checkpoints, verifier, tenant_id=TENANT)
    assert_bad(result, "checkpoint_mismatch", 40, "record 40: hash differs")


def test_a_changed_first_link_is_reported_at_seq_1(
    records: list[LedgerRecord], verifier: CheckpointVerifier
) -> None:
    records[0] = rehashed(dataclasses.replace(at(records, 1), prev_hash=bytes([1]) * 32))
    result = verify_chain(records, [], verifier, tenant_id=TENANT)
    assert_bad(result, "hash_mismatch", 1, "record 1: prev_hash is not the genesis hash")


def test_contents_that_cannot_be_canonicalised_are_a_hash_mismatch(
    records: list[LedgerRecord], verifier: CheckpointVerifier
) -> None:
    """A row edited in the database to hold what RFC 8785 refuses is reported, not raised."""
    records[4] = edited(at(records, 5), details={"amount": 2**60})
    result = verify_chain(records, [], verifier, tenant_id=TENANT)
    assert_bad(result, "hash_mismatch", 5, "record 5: contents cannot be canonicalised")


def test_a_rewritten_tail_is_caught_by_the_next_checkpoint(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    """Re-chaining from an altered record keeps every link valid; only a checkpoint can tell."""
    altered = [r.entry for r in records[:45]]
    altered[41] = dataclasses.replace(altered[41], outcome="allow")
    forged = chain(altered, head_seq=0, head_hash=GENESIS_HASH)
    result = verify_chain(forged, checkpoints[:2], verifier, tenant_id=TENANT)
    assert result.ok  # links and hashes are all consistent up to 45 ...
    result = verify_chain(forged, checkpoints, verifier, tenant_id=TENANT)
    assert_bad(result, "checkpoint_mismatch", 46, "records 46-60 are missing")  # ... but not 60


# Deleted, swapped and foreign records


def test_a_deleted_middle_record_is_a_gap(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    del records[33]
    result = verify_chain(records, checkpoints, verifier, tenant_id=TENANT)
    assert_bad(result, "gap", 34, "record 34 is missing")


def test_several_deleted_records_are_one_gap(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    del records[9:12]
    result = verify_chain(records, checkpoints, verifier, tenant_id=TENANT)
    assert_bad(result, "gap", 10, "records 10-12 are missing")


def test_a_deleted_first_record_is_a_gap(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    result = verify_chain(records[1:], checkpoints, verifier, tenant_id=TENANT)
    assert_bad(result, "gap", 1, "record 1 is missing")


def test_deleting_and_renumbering_breaks_the_link(
    records: list[LedgerRecord], verifier: CheckpointVerifier
) -> None:
    """Closing the gap by renumbering changes the seq inside the hash, and the link."""
    renumbered = records[:33] + [dataclasses.replace(r, seq=r.seq - 1) for r in records[34:]]
    result = verify_chain(renumbered, [], verifier, tenant_id=TENANT)
    assert_bad(result, "hash_mismatch", 34, "record 34: prev_hash does not match")


def test_deleting_the_newest_records_after_a_checkpoint_is_detected(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    result = verify_chain(records[:55], checkpoints, verifier, tenant_id=TENANT)
    assert_bad(
        result,
        "checkpoint_mismatch",
        56,
        "records 56-60 are missing: a signed checkpoint pins record 60",
    )


def test_deleting_every_record_is_detected(
    checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    result = verify_chain([], checkpoints, verifier, tenant_id=TENANT)
    assert_bad(result, "checkpoint_mismatch", 1, "records 1-20 are missing")


def test_deleting_newer_records_than_the_last_checkpoint_needs_the_known_head(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    """Records after the newest checkpoint are unprotected, unless the head seq is known."""
    older = checkpoints[:2]  # at 20 and 40
    assert verify_chain(records[:58], older, verifier, tenant_id=TENANT).ok
    result = verify_chain(records[:58], older, verifier, tenant_id=TENANT, last_seq=COUNT)
    assert_bad(result, "gap", 59, "records 59-60 are missing")


def test_a_forged_checkpoint_beyond_the_end_is_a_bad_signature(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    forged = dataclasses.replace(checkpoints[-1], seq=99)
    result = verify_chain(records, [*checkpoints, forged], verifier, tenant_id=TENANT)
    assert (result.problem, result.first_bad_seq, result.checked) == ("bad_signature", 99, COUNT)


def test_swapped_contents_are_a_hash_mismatch_at_the_first(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    a, b = at(records, 12), at(records, 13)
    records[11] = dataclasses.replace(a, entry=b.entry)
    records[12] = dataclasses.replace(b, entry=a.entry)
    result = verify_chain(records, checkpoints, verifier, tenant_id=TENANT)
    assert_bad(result, "hash_mismatch", 12, "record 12: stored hash does not match")


def test_swapped_rows_with_swapped_seqs_break_the_link(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    a, b = at(records, 12), at(records, 13)
    records[11], records[12] = dataclasses.replace(b, seq=12), dataclasses.replace(a, seq=13)
    result = verify_chain(records, checkpoints, verifier, tenant_id=TENANT)
    assert_bad(result, "hash_mismatch", 12, "record 12: prev_hash does not match")


def test_records_out_of_order_are_a_gap(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    records[11], records[12] = records[12], records[11]
    result = verify_chain(records, checkpoints, verifier, tenant_id=TENANT)
    assert_bad(result, "gap", 12, "record 12 is missing")


def test_a_repeated_record_is_a_gap(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    records.insert(12, records[11])
    result = verify_chain(records, checkpoints, verifier, tenant_id=TENANT)
    assert_bad(result, "gap", 13, "record 13 expected, record 12 found out of order")


def test_a_record_of_another_tenant_is_a_tenant_mismatch(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    foreign = chain(entries(COUNT, OTHER_TENANT), head_seq=0, head_hash=GENESIS_HASH)
    records[24] = foreign[24]
    result = verify_chain(records, checkpoints, verifier, tenant_id=TENANT)
    assert_bad(result, "tenant_mismatch", 25, f"record 25: belongs to tenant {OTHER_TENANT}")


def test_a_chain_verified_as_another_tenants_fails_at_once(
    records: list[LedgerRecord], verifier: CheckpointVerifier
) -> None:
    result = verify_chain(records, [], verifier, tenant_id=OTHER_TENANT)
    assert_bad(result, "tenant_mismatch", 1)


# Checkpoints


def test_a_forged_checkpoint_signature_is_a_bad_signature(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    signature = checkpoints[1].signature
    checkpoints[1] = dataclasses.replace(
        checkpoints[1], signature=bytes([signature[0] ^ 0x80]) + signature[1:]
    )
    result = verify_chain(records, checkpoints, verifier, tenant_id=TENANT)
    assert_bad(result, "bad_signature", 40, "checkpoint at record 40: signature is invalid")


def test_a_checkpoint_moved_to_another_hash_is_a_bad_signature(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    """Editing a checkpoint to match an altered record needs the signing key."""
    records[19] = rehashed(edited(at(records, 20), outcome="allow"))
    checkpoints[0] = dataclasses.replace(checkpoints[0], hash=at(records, 20).hash)
    result = verify_chain(records, checkpoints, verifier, tenant_id=TENANT)
    assert_bad(result, "bad_signature", 20)


def test_a_checkpoint_by_an_unknown_key_is_a_bad_signature(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    stranger = CheckpointSigner(private_key_pem())
    checkpoints.append(stranger.sign(TENANT, 30, at(records, 30).hash, SIGNED_AT))
    result = verify_chain(records, checkpoints, verifier, tenant_id=TENANT)
    assert_bad(result, "bad_signature", 30, "invalid or by an unknown key")


def test_a_chain_rewritten_and_resigned_with_another_key_is_a_bad_signature(
    records: list[LedgerRecord], verifier: CheckpointVerifier, signer: CheckpointSigner
) -> None:
    """An attacker can re-chain everything, but not with the trusted key."""
    attacker = CheckpointSigner(private_key_pem())
    forged_entries = [r.entry for r in records]
    forged_entries[4] = dataclasses.replace(forged_entries[4], outcome="allow")
    forged = chain(forged_entries, head_seq=0, head_hash=GENESIS_HASH)
    forged_checkpoints = [
        attacker.sign(TENANT, r.seq, r.hash, SIGNED_AT) for r in forged if r.seq % 20 == 0
    ]
    result = verify_chain(forged, forged_checkpoints, verifier, tenant_id=TENANT)
    assert_bad(result, "bad_signature", 20)

    posing = [dataclasses.replace(cp, key_id=signer.key_id) for cp in forged_checkpoints]
    result = verify_chain(forged, posing, verifier, tenant_id=TENANT)
    assert_bad(result, "bad_signature", 20)


def test_a_checkpoint_of_another_tenant_is_a_tenant_mismatch(
    records: list[LedgerRecord],
    checkpoints: list[Checkpoint],
    verifier: CheckpointVerifier,
    signer: CheckpointSigner,
) -> None:
    checkpoints.append(signer.sign(OTHER_TENANT, 10, at(records, 10).hash, SIGNED_AT))
    result = verify_chain(records, checkpoints, verifier, tenant_id=TENANT)
    assert_bad(result, "tenant_mismatch", 10, "checkpoint at record 10: belongs to tenant")


def test_checkpoints_of_a_retired_key_verify_after_rotation(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], signer: CheckpointSigner
) -> None:
    new = CheckpointSigner(private_key_pem())
    later = chain(entries(80)[COUNT:], head_seq=COUNT, head_hash=records[-1].hash)
    newer = [new.sign(TENANT, r.seq, r.hash, SIGNED_AT) for r in later if r.seq % 20 == 0]
    both = CheckpointVerifier([new.public_key_pem(), signer.public_key_pem()])

    result = verify_chain(records + later, checkpoints + newer, both, tenant_id=TENANT)
    assert result.ok and result.checked == 80

    only_new = CheckpointVerifier([new.public_key_pem()])
    result = verify_chain(records + later, checkpoints + newer, only_new, tenant_id=TENANT)
    assert_bad(result, "bad_signature", 20)


def test_the_first_problem_in_seq_order_is_reported(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    records[49] = edited(at(records, 50), outcome="allow")
    del records[30]
    checkpoints[1] = dataclasses.replace(checkpoints[1], signature=bytes(64))
    records[9] = edited(at(records, 10), actor="user:mallory")
    result = verify_chain(records, checkpoints, verifier, tenant_id=TENANT)
    assert_bad(result, "hash_mismatch", 10)


# Ranges


def test_a_range_links_to_the_expected_previous_hash(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    result = verify_chain(
        records[30:],
        checkpoints,
        verifier,
        tenant_id=TENANT,
        start_seq=31,
        expected_prev_hash=at(records, 30).hash,
    )
    assert result == VerificationResult(True, 30, None, None, "records 31-60 are intact")


def test_a_range_with_a_wrong_expected_previous_hash_fails_at_its_start(
    records: list[LedgerRecord], verifier: CheckpointVerifier
) -> None:
    result = verify_chain(
        records[30:],
        [],
        verifier,
        tenant_id=TENANT,
        start_seq=31,
        expected_prev_hash=at(records, 29).hash,
    )
    assert (result.problem, result.first_bad_seq, result.checked) == ("hash_mismatch", 31, 0)
    assert "record 31: prev_hash does not match the hash of record 30" in result.detail


def test_a_range_without_expected_previous_hash_trusts_its_first_link(
    records: list[LedgerRecord], verifier: CheckpointVerifier
) -> None:
    first = rehashed(dataclasses.replace(at(records, 31), prev_hash=bytes(32)))
    later = rehashed(dataclasses.replace(at(records, 32), prev_hash=first.hash))
    result = verify_chain([first, later], [], verifier, tenant_id=TENANT, start_seq=31)
    assert result.ok and result.checked == 2


def test_a_bounded_range_ignores_what_lies_beyond(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    records[55] = edited(at(records, 56), outcome="allow")
    result = verify_chain(
        records[20:],
        [*checkpoints[:2], dataclasses.replace(checkpoints[2], signature=bytes(64))],
        verifier,
        tenant_id=TENANT,
        start_seq=21,
        expected_prev_hash=at(records, 20).hash,
        last_seq=50,
    )
    assert result == VerificationResult(True, 30, None, None, "records 21-50 are intact")


def test_a_bounded_range_checks_the_checkpoints_inside_it(
    records: list[LedgerRecord], checkpoints: list[Checkpoint], verifier: CheckpointVerifier
) -> None:
    checkpoints[1] = dataclasses.replace(checkpoints[1], signature=bytes(64))
    result = verify_chain(
        records[20:50], checkpoints, verifier, tenant_id=TENANT, start_seq=21, last_seq=50
    )
    assert (result.problem, result.first_bad_seq, result.checked) == ("bad_signature", 40, 19)


def test_a_bounded_range_missing_its_end_is_a_gap(
    records: list[LedgerRecord], verifier: CheckpointVerifier
) -> None:
    result = verify_chain(records[:45], [], verifier, tenant_id=TENANT, last_seq=46)
    assert_bad(result, "gap", 46, "record 46 is missing")


def test_an_empty_range_verifies(records: list[LedgerRecord], verifier: CheckpointVerifier) -> None:
    result = verify_chain(records[10:], [], verifier, tenant_id=TENANT, start_seq=11, last_seq=10)
    assert result == VerificationResult(True, 0, None, None, "no records to verify")


@pytest.mark.parametrize(
    "arguments",
    [
        {"start_seq": 0},
        {"start_seq": 5, "last_seq": 3},
        {"start_seq": 1, "expected_prev_hash": bytes([1]) * 32},
    ],
    ids=["start-at-0", "end-before-start", "seq-1-not-genesis"],
)
def test_impossible_ranges_are_refused(
    verifier: CheckpointVerifier, arguments: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match=r"start_seq|GENESIS_HASH"):
        verify_chain([], [], verifier, tenant_id=TENANT, **arguments)


# Scale


def test_a_chain_of_100000_records_streams_through(
    signer: CheckpointSigner, verifier: CheckpointVerifier
) -> None:
    """Linear time: completes (about 3 s here, in pure-Python RFC 8785); no timing asserted."""
    count, every = 100_000, 10_000
    template = entries(10)
    records = chain([template[n % 10] for n in range(count)], head_seq=0, head_hash=GENESIS_HASH)
    checkpoints = [
        signer.sign(TENANT, r.seq, r.hash, SIGNED_AT) for r in records[every - 1 :: every]
    ]

    result = verify_chain(iter(records), checkpoints, verifier, tenant_id=TENANT)

    assert result == VerificationResult(True, count, None, None, "records 1-100000 are intact")
