"""Chaining: seqs and links are assigned deterministically, unfit entries are refused."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
import random
import uuid
from typing import Any

import pytest
import rfc8785

from fulcrum.audit.chain import canonical_details, link, prepare, record_hash
from fulcrum.audit.records import GENESIS_HASH, LedgerEntry, RecordKind, chained_fields
from tests.unit.audit.generated import document, number, text
from tests.unit.audit.ledger import OTHER_TENANT, chain, change_entry, decision_entry, entries


def test_record_hash_is_sha256_of_prev_hash_and_canonical_chained_fields() -> None:
    entry = decision_entry(3)
    prev = hashlib.sha256(b"previous").digest()
    expected = hashlib.sha256(prev + rfc8785.dumps(chained_fields(entry, 41))).digest()
    assert record_hash(prev, entry, 41) == expected


def test_record_hash_matches_a_pinned_vector() -> None:
    """Guards the contract: any change to the hashed form breaks every stored chain."""
    entry = LedgerEntry(
        tenant_id=uuid.UUID("00000000-0000-4000-8000-000000000001"),
        event_id=uuid.UUID("00000000-0000-4000-8000-000000000002"),
        kind=RecordKind.CHANGE,
        occurred_at=dt.datetime(2026, 1, 2, 4, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        actor="user:alice@example.com",
        action="policy.update",
        resource_type="policy",
        resource_id="pol_1",
        outcome="success",
        details={"b": [1.0, 2.5, None, True], "a": "é€😀"},
    )
    canonical = (
        '{"action":"policy.update","actor":"user:alice@example.com","agent_id":"",'
        '"details":{"a":"é€😀","b":[1,2.5,null,true]},'
        '"event_id":"00000000-0000-4000-8000-000000000002","kind":"change",'
        '"occurred_at":"2026-01-02T03:04:05.000006Z","outcome":"success",'
        '"resource_id":"pol_1","resource_type":"policy","seq":1,'
        '"tenant_id":"00000000-0000-4000-8000-000000000001","tool_name":"",'
        '"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}'
    ).encode()
    assert rfc8785.dumps(chained_fields(entry, 1)) == canonical
    assert record_hash(GENESIS_HASH, entry, 1) == bytes.fromhex(
        "f1cb5709439d8740d6768d324bbafe8efb0ac91cc9d2573477b4d71a3da9dd81"
    )


def test_a_new_chain_starts_at_seq_1_from_the_genesis_hash() -> None:
    records = chain(entries(5), head_seq=0, head_hash=GENESIS_HASH)

    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == GENESIS_HASH
    for previous, record in itertools.pairwise(records):
        assert record.prev_hash == previous.hash
    for record in records:
        assert record.hash == record_hash(record.prev_hash, record.entry, record.seq)
    assert [r.entry for r in records] == entries(5)


def test_chaining_in_batches_equals_chaining_at_once() -> None:
    batch = entries(7)
    first = chain(batch[:3], head_seq=0, head_hash=GENESIS_HASH)
    rest = chain(batch[3:], head_seq=3, head_hash=first[-1].hash)
    assert first + rest == chain(batch, head_seq=0, head_hash=GENESIS_HASH)


def test_the_hash_covers_the_seq() -> None:
    entry = change_entry(1)
    assert record_hash(GENESIS_HASH, entry, 1) != record_hash(GENESIS_HASH, entry, 2)


def test_chaining_nothing_gives_nothing() -> None:
    assert chain([], head_seq=12, head_hash=bytes(range(32))) == []


def test_entries_of_two_tenants_are_refused() -> None:
    mixed = [decision_entry(1), decision_entry(2, OTHER_TENANT)]
    with pytest.raises(ValueError, match="2 tenants"):
        chain(mixed, head_seq=0, head_hash=GENESIS_HASH)


@pytest.mark.parametrize(
    ("head_seq", "head_hash"),
    [(0, bytes(range(32))), (-1, GENESIS_HASH), (4, b"short")],
    ids=["empty-chain-with-a-head-hash", "negative-seq", "hash-not-sha256"],
)
def test_an_impossible_head_is_refused(head_seq: int, head_hash: bytes) -> None:
    with pytest.raises(ValueError, match="head"):
        chain(entries(1), head_seq=head_seq, head_hash=head_hash)


def test_a_naive_time_is_refused() -> None:
    naive = dataclasses.replace(decision_entry(1), occurred_at=dt.datetime(2026, 11, 28, 9, 30))
    with pytest.raises(ValueError, match="timezone-aware"):
        chain([naive], head_seq=0, head_hash=GENESIS_HASH)


def test_the_time_is_hashed_as_the_same_instant_in_any_zone() -> None:
    utc = decision_entry(1)
    paris = dataclasses.replace(
        utc, occurred_at=utc.occurred_at.astimezone(dt.timezone(dt.timedelta(hours=1)))
    )
    assert record_hash(GENESIS_HASH, utc, 1) == record_hash(GENESIS_HASH, paris, 1)


@pytest.mark.parametrize(
    "details",
    [
        {"ratio": float("nan")},
        {"limit": float("inf")},
        {"bytes_sent": 2**53},
        {"large": 1e16},
        {"blob": b"\x00\x01"},
        {"at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)},
        {"id": uuid.UUID(int=1)},
        {"note": "nul\x00byte"},
        {"note": "lone \ud800 surrogate"},
        {"bad\x00key": 1},
    ],
    ids=[
        "nan",
        "infinity",
        "int-beyond-2**53",
        "float-jsonb-prints-as-int",
        "bytes",
        "datetime",
        "uuid",
        "nul",
        "lone-surrogate",
        "nul-in-key",
    ],
)
def test_details_that_would_not_hash_the_same_after_storage_are_refused(
    details: dict[str, Any],
) -> None:
    """The worker sets such an event aside: prepare() names it."""
    bad = dataclasses.replace(decision_entry(2), details=details)
    with pytest.raises(ValueError, match=f"event {bad.event_id}: details"):
        prepare(bad)


@pytest.mark.parametrize(
    ("details", "stored"),
    [
        ({"versions": (6, 7)}, {"versions": [6, 7]}),
        ({"by_status": {404: 3}}, {"by_status": {"404": 3}}),
    ],
    ids=["tuple", "int-key"],
)
def test_details_are_chained_in_the_form_jsonb_gives_back(
    details: dict[str, Any], stored: dict[str, Any]
) -> None:
    entry = dataclasses.replace(decision_entry(2), details=details)
    [linked] = link([prepare(entry)], head_seq=0, head_hash=GENESIS_HASH)
    as_stored = dataclasses.replace(entry, details=stored)
    assert linked.canonical == rfc8785.dumps(chained_fields(as_stored, 1))
    assert linked.hash == record_hash(GENESIS_HASH, as_stored, 1)


@pytest.mark.parametrize("field", ["actor", "resource_id", "trace_id", "tool_name"])
def test_text_fields_that_cannot_be_stored_are_refused(field: str) -> None:
    changes: dict[str, Any] = {field: "evil\x00"}
    bad = dataclasses.replace(decision_entry(1), **changes)
    with pytest.raises(ValueError, match=f"{field}: NUL"):
        chain([bad], head_seq=0, head_hash=GENESIS_HASH)


def test_any_unicode_in_text_and_details_is_chained() -> None:
    text = 'naïve café — ∑ 日本語 עברית 😀 e\u0301 \u200b \t\n"\\ </script>'
    entry = dataclasses.replace(
        change_entry(1), actor=f"user:{text}", details={text: [text, {"k": text}]}
    )
    [record] = chain([entry], head_seq=0, head_hash=GENESIS_HASH)
    assert record.hash == record_hash(GENESIS_HASH, entry, 1)


def reference_hash(prev_hash: bytes, entry: LedgerEntry, seq: int) -> bytes:
    return hashlib.sha256(prev_hash + rfc8785.dumps(chained_fields(entry, seq))).digest()


@pytest.mark.parametrize("seed", range(20))
def test_linked_bytes_and_hashes_match_the_reference_encoder(seed: int) -> None:
    """prepare() encodes every field once, split around seq; link() fills in seq and hashes.
    Both must agree with RFC 8785 over chained_fields for any entry, fast path or not."""
    rng = random.Random(seed)
    batch = [
        dataclasses.replace(
            (decision_entry if n % 2 else change_entry)(n),
            actor=text(rng),
            action=text(rng),
            resource_type=text(rng),
            resource_id=text(rng),
            outcome=text(rng),
            agent_id=text(rng),
            tool_name=text(rng),
            trace_id=text(rng),
            details={"doc": document(rng), text(rng) or "k": number(rng)},
        )
        for n in range(50)
    ]
    prepared, accepted = [], []
    for entry in batch:
        try:
            prepared.append(prepare(entry))
        except ValueError:  # refused only for what can never be stored (not for speed)
            with pytest.raises(ValueError):
                canonical_details(entry.details)
        else:
            accepted.append(dataclasses.replace(entry, details=canonical_details(entry.details)))
    assert len(prepared) >= 10
    prev = hashlib.sha256(b"head").digest()
    for entry, linked in zip(accepted, link(prepared, head_seq=1000, head_hash=prev), strict=True):
        assert linked.canonical == rfc8785.dumps(chained_fields(entry, linked.seq))
        assert linked.prev_hash == prev
        assert linked.hash == reference_hash(prev, entry, linked.seq)
        prev = linked.hash
