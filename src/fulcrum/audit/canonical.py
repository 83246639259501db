"""RFC 8785 canonical JSON, fast for the values the ledger actually holds.

``rfc8785.dumps`` is pure Python and dominates the cost of chaining. For JSON made of
strings, booleans, null, integers and floats whose ECMAScript form equals Python's
``repr`` (integral floats below 2**53 are written as integers; other floats with magnitude
in [1e-4, 1e16) print identically), the standard library's C encoder with sorted keys and no
whitespace produces the same bytes. Anything else (non-ASCII keys, whose RFC 8785 order is
by UTF-16 code units, or floats outside that range) takes the reference implementation.
tests/unit/audit/test_canonical_fast.py checks the two agree on many generated documents.
"""

from __future__ import annotations

import json
import math
from typing import Any

import rfc8785

_ENCODER = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
)


def _fast_form(value: Any) -> tuple[bool, Any]:
    """(True, value with integral floats as ints) when the fast encoder is exact."""
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return True, value
    if isinstance(value, int):
        return abs(value) < 2**53, value  # beyond it RFC 8785 refuses: let the reference say so
    if isinstance(value, float):
        if not math.isfinite(value):
            return False, value
        if value.is_integer():
            # Exact as an integer only while every integer is a float (below 2**53); above,
            # ECMAScript prints the shortest float digits padded with zeros.
            return abs(value) < 2**53, int(value) if abs(value) < 2**53 else value
        return 1e-4 <= abs(value) < 1e16, value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                return False, value
            ok, out[key] = _fast_form(item)
            if not ok:
                return False, value
        return True, out
    if isinstance(value, list):
        items = []
        for item in value:
            ok, converted = _fast_form(item)
            if not ok:
                return False, value
            items.append(converted)
        return True, items
    return False, value


def canonical_json(value: Any) -> bytes:
    ok, converted = _fast_form(value)
    if ok:
        return _ENCODER.encode(converted).encode("utf-8")
    return rfc8785.dumps(value)
