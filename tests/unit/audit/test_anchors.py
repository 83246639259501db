"""The anchor codec and verify_chain's comparison of the chain with its anchors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest
import rfc8785

from fulcrum.audit.anchors import (
    MalformedAnchor,
    anchor_stream_config,
    decode_anchor,
    encode_anchor,
)
from fulcrum.audit.chain import record_hash
from fulcrum.audit.checkpoints import Checkpoint, CheckpointSigner, CheckpointVerifier
from fulcrum.audit.records import LedgerRecord
from fulcrum.audit.verify_chain import AnchorLog, VerificationResult, verify_chain
from tests.unit.audit.ledger import OTHER_TENANT, TENANT, private_key_pem, signed_chain

Ledger = tuple[list[LedgerRecord], list[Checkpoint]]
COUNT = 60  # checkpoints (and their anchors) at 20, 40 and 60


@pytest.fixture(scope="module")
def signer() -> CheckpointSigner:
    return CheckpointSigner(private_key_pem())


@pytest.fixture(scope="module")
def verifier(signer: CheckpointSigner) -> CheckpointVerifier:
    return CheckpointVerifier([signer.public_key_pem()])


@pytest.fixture(scope="module")
def ledger(signer: CheckpointSigner) -> tuple[list[LedgerRecord], list[Checkpoint]]:
    return signed_chain(signer, COUNT, every=20)


# The codec


def test_an_anchor_round_trips_as_canonical_json(ledger: Ledger) -> None:
    cp = ledger[1][0]
    data = encode_anchor(cp)
    assert data == rfc8785.dumps(json.loads(data))
    assert decode_anchor(data) == cp
    assert json.loads(data)["seq"] == cp.seq


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 0},
        {"seq": "20"},
        {"seq": True},
        {"hash": "00"},
        {"hash": "zz" * 32},
        {"created_at": "2026-11-28T12:00:00"},  # no time zone
        {"tenant_id": "not-a-uuid"},
        {"format": 2},
        {"extra": 1},
    ],
)
def test_a_malformed_anchor_is_refused(ledger: Ledger, change: dict[str, object]) -> None:
    fields = json.loads(encode_anchor(ledger[1][0])) | change
    with pytest.raises(MalformedAnchor):
        decode_anchor(json.dumps(fields).encode())


@pytest.mark.parametrize("data", [b"", b"{", b"[]", b"\xff", b'"x"'])
def test_bytes_that_are_not_an_anchor_are_refused(data: bytes) -> None:
    with pytest.raises(MalformedAnchor):
        decode_anchor(data)


def test_the_stream_refuses_deletes_and_purges_and_is_bounded_per_tenant() -> None:
    config = anchor_stream_config(per_tenant=7)
    assert (config.deny_delete, config.deny_purge, config.allow_direct) == (True, True, True)
    assert config.max_msgs_per_subject == 7
    assert config.subjects == ["fulcrum.anchors.*"]


# The comparison


def check(
    records: list[LedgerRecord],
    checkpoints: list[Checkpoint],
    anchors: AnchorLog,
    verifier: CheckpointVerifier,
    **kwargs: Any,
) -> VerificationResult:
    return verify_chain(records, checkpoints, verifier, tenant_id=TENANT, anchors=anchors, **kwargs)


def test_anchors_that_match_the_chain_verify(ledger: Ledger, verifier: CheckpointVerifier) -> None:
    records, cps = ledger
    result = check(records, cps, AnchorLog(tuple(cps)), verifier)
    assert (result.ok, result.checked) == (True, COUNT)


def test_records_and_checkpoints_deleted_past_an_anchor_are_truncation(
    ledger: Ledger, verifier: CheckpointVerifier
) -> None:
    records, cps = ledger
    # The attack: records 2..60 and their checkpoints gone; the anchors remain.
    result = check(records[:1], [], AnchorLog(tuple(cps)), verifier)
    assert (result.ok, result.problem, result.first_bad_seq, result.checked) == (
        False,
        "truncated",
        2,
        1,
    )
    assert "records 2-60 are missing" in result.detail and "pins record 60" in result.detail
    # Without anchors the shortened chain looks intact: what anchors are for.
    assert check(records[:1], [], AnchorLog(), verifier).ok


def test_a_forged_anchor_is_a_bad_signature_not_truncation(
    ledger: Ledger, verifier: CheckpointVerifier
) -> None:
    records, cps = ledger
    forged = CheckpointSigner(private_key_pem()).sign(
        TENANT, 500, records[-1].hash, cps[0].created_at
    )
    result = check(records, cps, AnchorLog((*cps, forged)), verifier)
    assert (result.problem, result.first_bad_seq) == ("bad_signature", 500)
    assert "anchor at record 500" in result.detail
    # ... and at a seq the chain holds, too.
    inside = dataclasses.replace(cps[1], signature=bytes(64))
    result = check(records, cps, AnchorLog((inside,)), verifier)
    assert (result.problem, result.first_bad_seq) == ("bad_signature", 40)


def test_another_tenants_anchor_is_a_tenant_mismatch(
    ledger: Ledger, signer: CheckpointSigner, verifier: CheckpointVerifier
) -> None:
    records, cps = ledger
    theirs = signer.sign(OTHER_TENANT, 20, records[19].hash, cps[0].created_at)
    result = check(records, cps, AnchorLog((theirs,)), verifier)
    assert (result.problem, result.first_bad_seq) == ("tenant_mismatch", 20)


def test_a_record_rehashed_under_an_anchor_is_an_anchor_mismatch(
    ledger: Ledger, verifier: CheckpointVerifier
) -> None:
    records, cps = ledger
    # The newest kept record rewritten with a hash that matches, its checkpoint deleted:
    # only the anchor still knows the original.
    old = records[39]
    entry = dataclasses.replace(old.entry, outcome="allow")
    forged = dataclasses.replace(old, entry=entry, hash=record_hash(old.prev_hash, entry, 40))
    result = check([*records[:39], forged], [cps[0]], AnchorLog(tuple(cps[:2])), verifier)
    assert (result.problem, result.first_bad_seq) == ("anchor_mismatch", 40)
    assert "hash differs from the one its anchor pins" in result.detail


def test_a_deleted_or_different_checkpoint_under_an_anchor_is_an_anchor_mismatch(
    ledger,
    signer,
    verifier,
) -> None:
    records, cps = ledger
    missing = check(records, [cps[0], cps[2]], AnchorLog(tuple(cps)), verifier)
    assert (missing.problem, missing.first_bad_seq) == ("anchor_mismatch", 40)
    assert "is missing" in missing.detail
    later = cps[1].created_at + dt.timedelta(seconds=1)
    resigned = signer.sign(TENANT, 40, records[39].hash, later)
    differs = check(records, [cps[0], resigned, cps[2]], AnchorLog(tuple(cps)), verifier)
    assert (differs.problem, differs.first_bad_seq) == ("anchor_mismatch", 40)
    assert "differs from its anchor" in differs.detail


def test_anchors_beyond_a_range_are_ignored_and_inside_it_name_truncation(
    ledger: Ledger, verifier: CheckpointVerifier
) -> None:
    records, cps = ledger
    log = AnchorLog(tuple(cps))
    assert check(records[:30], cps, log, verifier, last_seq=30).ok
    inside = check(records[:30], cps, log, verifier, last_seq=45)
    assert (inside.problem, inside.first_bad_seq) == ("truncated", 31)
    assert check(
        records[20:], cps, log, verifier, start_seq=21, expected_prev_hash=records[19].hash
    ).ok


def test_unreadable_anchors_are_never_ok_but_a_broken_chain_comes_first(
    ledger: Ledger, verifier: CheckpointVerifier
) -> None:
    records, cps = ledger
    down = AnchorLog(unavailable="NATS is not connected")
    result = check(records, cps, down, verifier)
    assert (result.ok, result.problem, result.first_bad_seq, result.checked) == (
        False,
        "anchors_unavailable",
        None,
        COUNT,
    )
    assert "NATS is not connected" in result.detail
    broken = check(records[:50], cps, down, verifier)
    assert broken.problem == "checkpoint_mismatch"


def test_messages_that_are_not_anchors_are_reported(
    ledger: Ledger, verifier: CheckpointVerifier
) -> None:
    records, cps = ledger
    result = check(records, cps, AnchorLog(tuple(cps), malformed=2), verifier)
    assert (result.ok, result.problem) == (False, "bad_signature")
    assert "2 message(s)" in result.detail
