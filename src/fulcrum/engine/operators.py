"""What each operator means: ``predicate`` turns (operator, rule value) into a test of the
field's value, compiled once per leaf.

Semantics (the policy language's contract):

* No type coercion: ``5`` is not ``"5"`` and ``true`` is not ``1``; ``1`` equals ``1.0``.
* A list-valued field (``agent.roles``, a list in ``tool.args``) satisfies ``eq``, ``in``,
  ``contains``, ``starts_with``, ``ends_with``, ``glob`` and ``regex`` when ANY element does.
  ``contains`` on a string is a substring test; on a list it is membership.
* ``ne`` and ``not_in`` are exactly ``not eq`` and ``not in``: true for a missing field, for a
  value of another type, and for a list with no matching element. A "deny unless env is
  staging" rule therefore cannot be dodged by omitting the field or sending a number.
* Every other operator is false for a missing field or a value of the wrong type.
* ``gt``/``gte``/``lt``/``lte`` compare one number with a number (a list is the wrong type);
  for ``time.of_day`` they compare "HH:MM" strings.
* ``regex`` searches (unanchored, like ``re.search``); ``glob`` must match the whole string.
* ``case_insensitive`` casefolds both sides of string comparisons; ``glob`` and ``regex`` use
  RE2's case-insensitive mode instead.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any, TypeGuard

from fulcrum.engine.document import LeafValue, Operator, Scalar
from fulcrum.engine.fields import MISSING
from fulcrum.engine.patterns import Pattern, compile_glob, compile_regex

Predicate = Callable[[object], bool]
_Key = tuple[str, object]
# Tuples of types: isinstance() checks them faster than the equivalent `X | Y` unions.
_LISTS = (list, tuple)
_NUMBERS = (int, float)

STRING_OPERATORS = frozenset(
    {Operator.CONTAINS, Operator.STARTS_WITH, Operator.ENDS_WITH, Operator.GLOB, Operator.REGEX}
)
ORDER_OPERATORS = frozenset({Operator.GT, Operator.GTE, Operator.LT, Operator.LTE})
LIST_OPERATORS = frozenset({Operator.IN, Operator.NOT_IN})
# case_insensitive means something only where strings are compared for equality or shape.
CASE_FOLDING_OPERATORS = STRING_OPERATORS | LIST_OPERATORS | {Operator.EQ, Operator.NE}


def predicate(op: Operator, value: LeafValue, *, case_insensitive: bool = False) -> Predicate:
    fold = case_insensitive
    match op:
        case Operator.EQ:
            return _equals(_scalar(value), fold)
        case Operator.NE:
            return _negate(_equals(_scalar(value), fold))
        case Operator.IN:
            return _member_of(_scalars(value), fold)
        case Operator.NOT_IN:
            return _negate(_member_of(_scalars(value), fold))
        case Operator.CONTAINS:
            return _contains(_scalar(value), fold)
        case Operator.STARTS_WITH:
            prefix = _folded(_string(value), fold)
            return _any_string(lambda text: _folded(text, fold).startswith(prefix))
        case Operator.ENDS_WITH:
            suffix = _folded(_string(value), fold)
            return _any_string(lambda text: _folded(text, fold).endswith(suffix))
        case Operator.GLOB:
            glob: Pattern = compile_glob(_string(value), case_insensitive=fold)
            return _any_string(lambda text: glob.fullmatch(text) is not None)
        case Operator.REGEX:
            regex: Pattern = compile_regex(_string(value), case_insensitive=fold)
            return _any_string(lambda text: regex.search(text) is not None)
        case Operator.EXISTS:
            wanted = value is True
            return lambda field_value: (field_value is not MISSING) is wanted
        case _:
            return _order(op, _scalar(value))


def is_number(value: object) -> TypeGuard[int | float]:
    """int or float but not bool (``True > 0`` must not make a boolean count as a number)."""
    return isinstance(value, _NUMBERS) and not isinstance(value, bool)


def is_finite_number(value: object) -> TypeGuard[int | float]:
    return is_number(value) and math.isfinite(value)


def _key(value: object, fold: bool) -> _Key | None:
    """A type-tagged comparison key, so equality never crosses types; None for non-scalars."""
    if isinstance(value, str):  # the common case first
        return ("string", value.casefold() if fold else value)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, _NUMBERS):
        return ("number", value)
    return None


def _is_list(value: object) -> TypeGuard[list[object] | tuple[object, ...]]:
    return isinstance(value, _LISTS)


def _equals(expected: Scalar, fold: bool) -> Predicate:
    target = _key(expected, fold)

    def holds(value: object) -> bool:
        if _is_list(value):
            return any(_key(item, fold) == target for item in value)
        return _key(value, fold) == target

    return holds


def _member_of(options: tuple[Scalar, ...], fold: bool) -> Predicate:
    keys = frozenset(_key(option, fold) for option in options)

    def holds(value: object) -> bool:
        if _is_list(value):
            return any(_key(item, fold) in keys for item in value)
        return _key(value, fold) in keys

    return holds


def _contains(expected: Scalar, fold: bool) -> Predicate:
    target = _key(expected, fold)
    needle = _folded(expected, fold) if isinstance(expected, str) else None

    def holds(value: object) -> bool:
        if isinstance(value, str):
            return needle is not None and needle in _folded(value, fold)
        if _is_list(value):
            return any(_key(item, fold) == target for item in value)
        return False

    return holds


def _any_string(test: Callable[[str], bool]) -> Predicate:
    def holds(value: object) -> bool:
        if isinstance(value, str):
            return test(value)
        if _is_list(value):
            return any(isinstance(item, str) and test(item) for item in value)
        return False

    return holds


def _order(op: Operator, bound: Scalar) -> Predicate:
    compare = _COMPARISONS[op]
    if isinstance(bound, str):  # time.of_day: zero-padded "HH:MM" sorts like the time it names
        return lambda value: isinstance(value, str) and compare(value, bound)
    return lambda value: is_number(value) and compare(value, bound)


_COMPARISONS: dict[Operator, Callable[[Any, Any], bool]] = {
    Operator.GT: operator.gt,
    Operator.GTE: operator.ge,
    Operator.LT: operator.lt,
    Operator.LTE: operator.le,
}


def _negate(test: Predicate) -> Predicate:
    return lambda value: not test(value)


def _folded(text: str, fold: bool) -> str:
    return text.casefold() if fold else text


def _scalar(value: LeafValue) -> Scalar:
    if isinstance(value, tuple):
        raise TypeError("this operator takes a single value, not a list")
    return value


def _scalars(value: LeafValue) -> tuple[Scalar, ...]:
    if not isinstance(value, tuple):
        raise TypeError("this operator takes a list of values")
    return value


def _string(value: LeafValue) -> str:
    if not isinstance(value, str):
        raise TypeError("this operator takes a string")
    return value
