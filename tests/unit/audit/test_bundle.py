"""Offline bundles: what export writes verifies with no database; edits and cuts do not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fulcrum.audit.anchors import anchor_fields
from fulcrum.audit.bundle import UnusableBundle, header_fields, verify_bundle
from fulcrum.audit.checkpoints import CheckpointSigner, CheckpointVerifier
from fulcrum.audit.wire import record_line
from tests.unit.audit.ledger import TENANT, private_key_pem, signed_chain

COUNT = 45  # checkpoints and anchors at 15, 30 and 45


@pytest.fixture(scope="module")
def signer() -> CheckpointSigner:
    return CheckpointSigner(private_key_pem())


@pytest.fixture(scope="module")
def lines(signer: CheckpointSigner) -> list[dict[str, Any]]:
    records, cps = signed_chain(signer, COUNT, every=15)
    verifier = CheckpointVerifier([signer.public_key_pem()])
    return [
        header_fields(TENANT, 1, None, None, verifier),
        *({"type": "checkpoint", **anchor_fields(cp)} for cp in cps),
        *({"type": "anchor", **anchor_fields(cp)} for cp in cps),
        *(record_line(r) for r in records),
    ]


def write(tmp_path: Path, lines: list[dict[str, Any]], name: str = "bundle.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_an_exported_bundle_verifies_with_trusted_keys(
    tmp_path: Path, lines: list[dict[str, Any]], signer: CheckpointSigner
) -> None:
    verdict = verify_bundle(write(tmp_path, lines), signer.public_key_pem())
    assert (verdict.result.ok, verdict.result.checked) == (True, COUNT)
    assert (verdict.keys_from_bundle, verdict.newest_pin) == (False, COUNT)


def test_progress_is_reported_as_records_stream_through(
    tmp_path: Path, lines: list[dict[str, Any]]
) -> None:
    seen: list[int] = []
    verify_bundle(write(tmp_path, lines), progress=seen.append, progress_every=10)
    assert seen == [10, 20, 30, 40]


def test_without_trusted_keys_the_bundle_vouches_for_itself(
    tmp_path: Path, lines: list[dict[str, Any]]
) -> None:
    verdict = verify_bundle(write(tmp_path, lines))
    assert verdict.result.ok and verdict.keys_from_bundle


def test_keys_that_did_not_sign_it_fail_it(tmp_path: Path, lines: list[dict[str, Any]]) -> None:
    stranger = CheckpointSigner(private_key_pem()).public_key_pem()
    verdict = verify_bundle(write(tmp_path, lines), stranger)
    assert (verdict.result.problem, verdict.result.first_bad_seq) == ("bad_signature", 15)


def test_a_changed_record_fails(tmp_path: Path, lines: list[dict[str, Any]]) -> None:
    edited = [
        {**line, "outcome": "tampered"}
        if line.get("type") == "record" and line["seq"] == 7
        else line
        for line in lines
    ]
    verdict = verify_bundle(write(tmp_path, edited))
    assert (verdict.result.problem, verdict.result.first_bad_seq) == ("hash_mismatch", 7)


def test_the_tail_cut_with_its_checkpoints_is_truncation(
    tmp_path: Path, lines: list[dict[str, Any]]
) -> None:
    cut = [x for x in lines if x["type"] in ("header", "anchor") or x["seq"] <= 20]
    verdict = verify_bundle(write(tmp_path, cut))
    assert (verdict.result.problem, verdict.result.first_bad_seq) == ("truncated", 21)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda lines: [],
        lambda lines: [{"format": "something-else"}, *lines[1:]],
        lambda lines: [{**lines[0], "version": 99}, *lines[1:]],
        lambda lines: [lines[0], {"type": "checkpoint", "seq": 1}, *lines[1:]],
        lambda lines: [*lines, lines[1]],  # a checkpoint after the records
        lambda lines: [*lines, {"type": "record", "seq": 46}],
        lambda lines: [{**lines[0], "public_keys": ["not a key"]}, *lines[1:]],
    ],
    ids=["empty", "format", "version", "bad-checkpoint", "order", "bad-record", "bad-key"],
)
def test_unusable_input_is_refused_not_judged(
    tmp_path: Path, lines: list[dict[str, Any]], mangle: Any
) -> None:
    with pytest.raises(UnusableBundle):
        verify_bundle(write(tmp_path, mangle(lines)))


def test_a_file_that_is_not_json_lines_is_unusable(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"\xff\xfe garbage")
    with pytest.raises(UnusableBundle):
        verify_bundle(path)
    with pytest.raises(UnusableBundle):
        verify_bundle(tmp_path / "missing")
