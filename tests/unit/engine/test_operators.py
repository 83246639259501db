"""Operator semantics, one field value at a time (MISSING stands for an absent field)."""

from __future__ import annotations

import pytest

from fulcrum.engine.document import LeafValue, Operator
from fulcrum.engine.fields import MISSING
from fulcrum.engine.operators import predicate

# (operator, rule value, case_insensitive, field value, expected)
SEMANTICS: list[tuple[Operator, LeafValue, bool, object, bool]] = [
    (Operator.EQ, "prod", False, "prod", True),
    (Operator.EQ, "prod", False, "Prod", False),
    (Operator.EQ, "prod", True, "PROD", True),
    (Operator.EQ, "straße", True, "STRASSE", True),  # casefold, not lower
    (Operator.EQ, 5, False, 5.0, True),
    (Operator.EQ, 5, False, "5", False),
    (Operator.EQ, 1, False, True, False),
    (Operator.EQ, True, False, 1, False),
    (Operator.EQ, "a", False, ["b", "a"], True),
    (Operator.EQ, "a", False, {"a": 1}, False),
    (Operator.EQ, "a", False, MISSING, False),
    (Operator.NE, "prod", False, "dev", True),
    (Operator.NE, "prod", False, "prod", False),
    (Operator.NE, "prod", True, "PROD", False),
    (Operator.NE, "prod", False, MISSING, True),
    (Operator.NE, "prod", False, 5, True),
    (Operator.NE, "prod", False, {"env": "prod"}, True),
    (Operator.NE, "admin", False, ["reader", "admin"], False),
    (Operator.NE, "admin", False, ["reader"], True),
    (Operator.IN, ("a", 1), False, "a", True),
    (Operator.IN, ("a", 1), False, 1.0, True),
    (Operator.IN, ("a", 1), False, True, False),
    (Operator.IN, ("a", 1), False, "A", False),
    (Operator.IN, ("a", 1), True, "A", True),
    (Operator.IN, ("a",), False, ["x", "a"], True),
    (Operator.IN, ("a",), False, [["a"]], False),
    (Operator.IN, ("a",), False, MISSING, False),
    (Operator.NOT_IN, ("a", "b"), False, "c", True),
    (Operator.NOT_IN, ("a", "b"), False, "a", False),
    (Operator.NOT_IN, ("a", "b"), False, MISSING, True),
    (Operator.NOT_IN, ("a", "b"), False, ["c", "b"], False),
    (Operator.CONTAINS, "pass", False, "my password", True),
    (Operator.CONTAINS, "PASS", True, "my password", True),
    (Operator.CONTAINS, "pass", False, ["password"], False),
    (Operator.CONTAINS, "pii", False, ["x", "pii"], True),
    (Operator.CONTAINS, 3, False, [1, 2, 3], True),
    (Operator.CONTAINS, 3, False, "123", False),
    (Operator.CONTAINS, "a", False, 5, False),
    (Operator.CONTAINS, "a", False, MISSING, False),
    (Operator.STARTS_WITH, "/etc", False, "/etc/passwd", True),
    (Operator.STARTS_WITH, "/ETC", True, "/etc/passwd", True),
    (Operator.STARTS_WITH, "/etc", False, ["/home", "/etc/x"], True),
    (Operator.STARTS_WITH, "1", False, 12, False),
    (Operator.ENDS_WITH, ".pem", False, "key.pem", True),
    (Operator.ENDS_WITH, ".pem", False, "key.pem.txt", False),
    (Operator.GLOB, "*.internal", False, "db.internal", True),
    (Operator.GLOB, "*.internal", False, "db.internal.evil", False),
    (Operator.GLOB, "*.INTERNAL", True, "db.internal", True),
    (Operator.GLOB, "a*", False, "a\nb", True),  # * crosses newlines, as in fnmatch
    (Operator.GLOB, "a*", False, [1, "ab"], True),
    (Operator.REGEX, "drop\\s+table", False, "x; drop  table y", True),
    (Operator.REGEX, "^drop", False, "x; drop", False),
    (Operator.REGEX, "DROP", True, "drop", True),
    (Operator.REGEX, "1", False, 1, False),
    (Operator.REGEX, "a", False, MISSING, False),
    (Operator.GT, 10, False, 11, True),
    (Operator.GT, 10, False, 10, False),
    (Operator.GTE, 10, False, 10.0, True),
    (Operator.LT, 0.5, False, 0.49, True),
    (Operator.LTE, 0.5, False, 0.5, True),
    (Operator.GT, 10, False, "11", False),
    (Operator.GT, 0, False, True, False),
    (Operator.GT, 1, False, [5], False),
    (Operator.GT, 1, False, MISSING, False),
    (Operator.LT, 1, False, MISSING, False),
    (Operator.GTE, "09:00", False, "09:00", True),
    (Operator.LT, "09:00", False, "08:59", True),
    (Operator.LT, "09:00", False, 8, False),
    (Operator.EXISTS, True, False, "", True),  # present, even if empty (inside args/context)
    (Operator.EXISTS, True, False, None, True),  # JSON null is a present value
    (Operator.EXISTS, True, False, MISSING, False),
    (Operator.EXISTS, False, False, MISSING, True),
    (Operator.EXISTS, False, False, 0, False),
]


@pytest.mark.parametrize(
    ("op", "value", "case_insensitive", "field_value", "expected"),
    [pytest.param(*row, id=f"{row[0]}-{row[1]!r}-{row[3]!r}"[:80]) for row in SEMANTICS],
)
def test_operator_semantics(
    op: Operator, value: LeafValue, case_insensitive: bool, field_value: object, expected: bool
) -> None:
    assert predicate(op, value, case_insensitive=case_insensitive)(field_value) is expected
