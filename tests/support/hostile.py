"""Values that break servers which trust their input, for the fuzzers to plant anywhere.

Schemathesis and plain Hypothesis text rarely produce them: NUL (PostgreSQL stores none),
lone surrogates (valid as JSON escapes, not encodable as UTF-8), integers past Python's
4,300-digit conversion limit, NaN and Infinity (Python's JSON reads them), nesting deeper
than any parser recurses, and very long text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

HUGE_DIGITS = "1" + "0" * 5000
_HUGE_INT = "\x01huge-int\x01"  # stand-ins json.dumps cannot write; ``dumps`` puts them in
_DEEP = "\x01deep\x01"
_NESTING = 100_000

# Text that a URL (query or path) can carry: no surrogates, which a URL cannot encode.
# Most dangerous first: Hypothesis draws the first entries of a list most often.
URL_TEXT = [
    "a\x00b",
    HUGE_DIGITS,
    "x" * 5000,
    "\x00",
    "9" * 25,
    "-1",
    "",
    " ",
    "%00",
    "\u202e",
    "\U0001f4a5",
    "\u00b2",  # "²".isdigit(), yet int("²") raises
    # A page token as the server writes them, base64 of ["<time>", "a\u0000b"].
    "WyIyMDIwLTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgImFcdTAwMDBiIl0",
    "1e999",
    "NaN",
    "../../etc/passwd",
    "00000000-0000-0000-0000-000000000000",
]
JSON_TEXT = ["a\udfffb", *URL_TEXT, "\ud800", "\udc00\ud800"]
JSON_VALUES: list[Any] = [
    "a\udfffb",
    _HUGE_INT,
    "a\x00b",
    math.nan,
    _DEEP,
    math.inf,
    2**63,
    *JSON_TEXT[1:],
    -math.inf,
    -(2**63) - 1,
    10**30,
    1e308,
    -0.0,
    None,
    True,
    [],
    {},
]


def dumps(value: Any) -> bytes:
    """JSON text of ``value``, with the stand-ins written as what they stand for."""
    text = json.dumps(value)  # ensure_ascii: a lone surrogate becomes its \\ud800 escape
    text = text.replace(json.dumps(_HUGE_INT), HUGE_DIGITS)
    text = text.replace(json.dumps(_DEEP), "[" * _NESTING + "]" * _NESTING)
    return text.encode()


url_text = st.sampled_from(URL_TEXT)
json_values = st.sampled_from(JSON_VALUES)
json_text = st.sampled_from(JSON_TEXT)

# Valid policy documents: random JSON objects stop at "name: required"; these pass
# validation, so one planted hostile value reaches whatever is done with it after.
_words = st.text(st.characters(categories=("L", "N")), min_size=1, max_size=12)
_numbers = st.one_of(st.integers(-1000, 1000), st.floats(-1e6, 1e6))
_leaves = st.one_of(
    st.fixed_dictionaries({"field": st.just("tool.name"), "op": st.just("eq"), "value": _words}),
    st.fixed_dictionaries(
        {"field": st.just("tool.args.sql"), "op": st.just("regex"), "value": st.just("(?i)drop")}
    ),
    st.fixed_dictionaries(
        {"field": st.just("cost.estimate"), "op": st.just("gt"), "value": _numbers}
    ),
    st.fixed_dictionaries(
        {"field": st.just("agent.roles"), "op": st.just("contains"), "value": _words}
    ),
    st.fixed_dictionaries(
        {"field": st.just("time.of_day"), "op": st.just("gte"), "value": st.just("09:00")}
    ),
    st.fixed_dictionaries(
        {
            "field": st.just("context.a.b"),
            "op": st.just("in"),
            "value": st.lists(st.one_of(_words, _numbers), min_size=1, max_size=3),
        }
    ),
)
_conditions = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.fixed_dictionaries({"all": st.lists(inner, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"any": st.lists(inner, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"not": inner}),
    ),
    max_leaves=5,
)
_globs = st.lists(st.sampled_from(["db.*", "mcp.fs", "agent-1"]), min_size=1, max_size=3)
_rules = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["r1", "r2", "r3"]),
        "action": st.sampled_from(["deny", "allow", "warn", "escalate", "require_approval"]),
        "reason": _words,
    },
    optional={
        "description": _words,
        "target": st.fixed_dictionaries({}, optional={"tools": _globs, "agents": _globs}),
        "when": _conditions,
    },
)
policy_documents = st.fixed_dictionaries(
    {
        "name": _words,
        "rules": st.lists(_rules, min_size=1, max_size=3, unique_by=lambda rule: rule["id"]),
    },
    optional={
        "priority": st.integers(-1000, 1000),
        "mode": st.sampled_from(["enforce", "shadow"]),
        "description": _words,
    },
)


# Where to plant: which slot (modulo how many there are), the value for a JSON slot, the
# text for a URL slot. None plants nothing, so generated inputs are also sent as they are.
Plant = tuple[int, Any, str] | None
plants: st.SearchStrategy[Plant] = st.none() | st.tuples(
    st.integers(0, 10_000), json_values, url_text
)


def plant(plan: Plant, url_parts: list[dict[str, Any]], body: Any) -> None:
    """Plant what ``plan`` picks, in place: a URL part's value, a JSON leaf, or a new key."""
    if plan is None:
        return
    index, value, text = plan
    slots = _slots(url_parts, body, value, text)
    if slots:
        slots[index % len(slots)]()


def slot_count(url_parts: list[dict[str, Any]], body: Any) -> int:
    """How many places ``plant`` chooses from (plan index ``i`` plants at ``i % count``)."""
    return len(_slots(url_parts, body, None, ""))


def _slots(
    url_parts: list[dict[str, Any]], body: Any, value: Any, text: str
) -> list[Callable[[], None]]:
    slots: list[Callable[[], None]] = []
    for part in url_parts:
        slots += [lambda p=part, k=key: p.__setitem__(k, text) for key in part]
    for container in _containers(body):
        keys = container if isinstance(container, dict) else range(len(container))
        slots += [lambda c=container, k=key: c.__setitem__(k, value) for key in keys]
        if isinstance(container, dict):
            key = value if isinstance(value, str) else text
            slots.append(lambda c=container, k=key: c.__setitem__(k, 1))
    return slots


def _containers(value: Any) -> list[dict[str, Any] | list[Any]]:
    if isinstance(value, dict):
        return [value, *(c for v in value.values() for c in _containers(v))]
    if isinstance(value, list):
        return [value, *(c for v in value for c in _containers(v))]
    return []
