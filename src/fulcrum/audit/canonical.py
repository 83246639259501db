"""RFC 8785 canonical JSON, fast for the values the ledger actually holds.

``rfc8785.dumps`` is pure Python and would dominate the cost of chaining. For JSON made of
strings, booleans, null, integers and floats whose ECMAScript form equals Python's
``repr`` (integral floats below 2**53 are written as integers; other floats with magnitude
in [1e-4, 1e16) print identically), the standard library's C encoder with sorted keys and no
whitespace produces the same bytes. Anything else (non-ASCII keys, whose RFC 8785 order is
by UTF-16 code units, or floats outside that range) takes the reference implementation.
tests/unit/audit/test_canonical_fast.py checks the two agree on many generated documents.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

# Integers from 2**53 on are refused by RFC 8785; floats that large print as integers.
_SAFE = 2**53

ENCODER = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
)


class NotFast(Exception):
    """The value needs the reference encoder (or is not JSON RFC 8785 can represent)."""


def fast_form(value: Any) -> Any:
    """A copy of ``value`` that ``ENCODER`` writes exactly as RFC 8785 does, or ``NotFast``.

    Only exact JSON types qualify (no tuples, subclasses or non-string keys), keys must be
    ASCII, numbers of magnitude below 2**53, and strings free of NUL (which PostgreSQL
    cannot store: the reference path, and the ledger's careful checks, deal with those).
    Integral floats become ints, as ECMAScript prints them.
    """
    kind = type(value)
    if kind is str:
        if "\x00" in value:
            raise NotFast
        return value
    if kind is int:
        if -_SAFE < value < _SAFE:
            return value
        raise NotFast
    if kind is bool or value is None:
        return value
    if kind is float:
        magnitude = abs(value)
        if not magnitude < _SAFE:  # also NaN and the infinities
            raise NotFast
        if value.is_integer():
            return int(value)
        if magnitude >= 1e-4:
            return value
        raise NotFast
    if kind is dict:
        copy = {}
        for key, item in value.items():
            if type(key) is not str or not key.isascii() or "\x00" in key:
                raise NotFast
            copy[key] = fast_form(item)
        return copy
    if kind is list:
        return [fast_form(item) for item in value]
    raise NotFast


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 bytes of ``value``; ``ValueError`` for what RFC 8785 cannot represent."""
    try:
        return ENCODER.encode(fast_form(value)).encode("utf-8")
    except (NotFast, UnicodeEncodeError):
        return rfc8785.dumps(value)
