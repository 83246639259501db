"""canonical_details: the hash computed before insert equals the one recomputed from jsonb.

PostgreSQL stores ``details`` as ``jsonb`` and psycopg reads it back with ``json.loads``;
the tests model that round trip as ``json.loads(json.dumps(...))``, plus jsonb's way of
printing numbers (plain decimal, never an exponent) where that matters.
"""

from __future__ import annotations

import dataclasses
import decimal
import json
from typing import Any

import pytest

from fulcrum.audit.chain import canonical_details, record_hash
from fulcrum.audit.records import GENESIS_HASH, LedgerEntry
from tests.unit.audit.ledger import chain, change_entry, decision_entry


def read_back(details: dict[str, Any]) -> dict[str, Any]:
    """What a ``jsonb`` column returns through psycopg's default loader."""
    loaded: dict[str, Any] = json.loads(json.dumps(details))
    return loaded


def with_details(details: dict[str, Any]) -> LedgerEntry:
    return dataclasses.replace(decision_entry(1), details=details)


SAMPLES: list[dict[Any, Any]] = [  # non-string keys too: json.dumps accepts them
    decision_entry(3).details,
    change_entry(10).details,
    {"whole_float": 1.0, "int": 1, "negative_zero": -0.0, "tiny": 1.5e-7, "pi": 3.141592653589793},
    {"edge": 2**53 - 1, "edge_float": float(2**53 - 1), "below": -(2**53 - 1), "big": 1e15},
    {"tuple": (1, (2, 3)), "nested": {"list": [{"a": None}, [], {}]}, "flags": [True, False]},
    {7: "int key", 2.5: "float key", True: "bool key", None: "null key"},
    {"text": 'naïve 日本語 😀 e\u0301 \u2028 \u200b "quoted" \\ \x7f \x1f'},
]


@pytest.mark.parametrize("details", SAMPLES)
def test_the_hash_survives_the_round_trip_through_jsonb(details: dict[Any, Any]) -> None:
    stored = canonical_details(details)
    [record] = chain([with_details(stored)], head_seq=0, head_hash=GENESIS_HASH)

    reread = with_details(read_back(stored))
    assert record_hash(GENESIS_HASH, reread, 1) == record.hash
    assert read_back(stored) == stored


def test_the_copy_is_what_jsonb_gives_back() -> None:
    details = {"ratio": 1.0, "pair": (1, 2), "codes": {404: "missing"}, "ok": True, "none": None}
    stored = canonical_details(details)

    assert stored == {
        "ratio": 1.0,
        "pair": [1, 2],
        "codes": {"404": "missing"},
        "ok": True,
        "none": None,
    }
    assert isinstance(stored["ratio"], float)  # 1.0 stays a float, and hashes as 1 either way
    assert record_hash(GENESIS_HASH, with_details({"n": 1.0}), 1) == record_hash(
        GENESIS_HASH, with_details({"n": 1}), 1
    )


def test_the_copy_is_independent_of_the_original() -> None:
    details: dict[str, Any] = {"reasons": ["a"]}
    stored = canonical_details(details)
    details["reasons"].append("b")
    assert stored == {"reasons": ["a"]}


@pytest.mark.parametrize("value", [1.0, 1.5e-7, 123456789.125, 9e15, -2.5e-300, float(2**53 - 1)])
def test_floats_keep_their_value_when_jsonb_prints_them_in_plain_decimal(value: float) -> None:
    plain = format(decimal.Decimal(repr(value)), "f")  # how jsonb's numeric prints it
    assert json.loads(plain) == value
    assert record_hash(GENESIS_HASH, with_details({"v": json.loads(plain)}), 1) == record_hash(
        GENESIS_HASH, with_details({"v": value}), 1
    )


def test_a_float_of_1e16_would_come_back_as_an_integer_so_it_is_refused() -> None:
    plain = format(decimal.Decimal(repr(1e16)), "f")
    assert isinstance(json.loads(plain), int)  # beyond 2**53: RFC 8785 cannot hash it
    with pytest.raises(ValueError, match=r"details.v: 1e\+16 is outside"):
        canonical_details({"v": 1e16})


@pytest.mark.parametrize(
    ("details", "message"),
    [
        ({"ratio": float("nan")}, "not JSON"),
        ({"limit": float("-inf")}, "not JSON"),
        ({"blob": b"x"}, "not JSON"),
        ({"ids": {1, 2}}, "not JSON"),
        ({"usage": {"bytes": [1, -(2**53)]}}, r"details.usage.bytes\[1\]: -9007199254740992"),
        ({"usage": 2.0**60}, "details.usage"),
        ({"note": "a\x00b"}, "details.note: NUL"),
        ({"a\x00": 1}, "details key 'a\\\\x00': NUL"),
        ({"list": ["\udfff"]}, r"details.list\[0\]: lone surrogates"),
    ],
)
def test_values_that_cannot_round_trip_are_refused_with_their_path(
    details: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        canonical_details(details)


def test_an_entry_whose_details_are_canonical_is_chained_unchanged() -> None:
    entry = with_details(canonical_details({"pair": (1, 2)}))
    [record] = chain([entry], head_seq=0, head_hash=GENESIS_HASH)
    assert record.entry is entry
