"""Validation of a rule's ``when`` tree: node shapes, depth, fields, operators and values.

Each operator's value is checked against the operator and the field's kind, so a leaf that
could never hold (``regex`` on ``cost.estimate``, ``gt`` on ``tool.name``) is refused on write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fulcrum.engine import limits
from fulcrum.engine.document import AllOf, AnyOf, Condition, Leaf, LeafValue, Not, Operator, Scalar
from fulcrum.engine.fields import WEEKDAYS, FieldKind, UnknownField, resolve_field
from fulcrum.engine.operators import (
    CASE_FOLDING_OPERATORS,
    LIST_OPERATORS,
    ORDER_OPERATORS,
    STRING_OPERATORS,
)
from fulcrum.engine.patterns import PatternError, compile_glob, compile_regex
from fulcrum.engine.values import (
    boolean,
    choice,
    fail,
    field_path,
    items,
    mapping,
    number,
    required,
    show,
    string,
    type_name,
)

_NODE_KINDS = ("all", "any", "not", "field")
_LEAF_FIELDS = ("field", "op", "value", "case_insensitive")
_STRING_KINDS = frozenset({FieldKind.STRING, FieldKind.STRING_LIST, FieldKind.WEEKDAY})


def parse_condition(value: object, path: str, depth: int = 1) -> Condition:
    if depth > limits.MAX_CONDITION_DEPTH:
        fail(path, f"conditions may nest at most {limits.MAX_CONDITION_DEPTH} levels deep")
    node = mapping(value, path, _NODE_KINDS + _LEAF_FIELDS)
    kinds = [kind for kind in _NODE_KINDS if kind in node]
    if not kinds and ("op" in node or "value" in node):
        fail(field_path(path, "field"), "required")
    if len(kinds) != 1:
        found = f"; found {', '.join(kinds)}" if kinds else ""
        fail(path, f"expected exactly one of 'all', 'any', 'not', or a leaf with 'field'{found}")
    kind = kinds[0]
    if kind == "field":
        return _leaf(node, path)
    mapping(node, path, (kind,))
    child_path = field_path(path, kind)
    if kind == "not":
        return Not(parse_condition(node["not"], child_path, depth + 1))
    children = items(node[kind], child_path, max_items=limits.MAX_LIST_ITEMS)
    nodes = tuple(
        parse_condition(child, f"{child_path}[{index}]", depth + 1)
        for index, child in enumerate(children)
    )
    return AllOf(nodes) if kind == "all" else AnyOf(nodes)


def _leaf(node: Mapping[str, Any], path: str) -> Leaf:
    name_path = field_path(path, "field")
    name = string(node["field"], name_path, max_chars=limits.MAX_STRING_CHARS)
    try:
        kind = resolve_field(name).kind
    except UnknownField as exc:
        fail(name_path, str(exc))
    op = _operator(required(node, "op", path), field_path(path, "op"), name, kind)
    value = _value(node, path, op, kind)
    case_insensitive = False
    if "case_insensitive" in node:
        ci_path = field_path(path, "case_insensitive")
        case_insensitive = boolean(node["case_insensitive"], ci_path)
        if case_insensitive and op not in CASE_FOLDING_OPERATORS:
            fail(ci_path, f"case_insensitive does not apply to operator '{op}'")
    return Leaf(name, op, value, case_insensitive)


def _operator(value: object, path: str, field_name: str, kind: FieldKind) -> Operator:
    op = choice(Operator, value, path, noun="operator")
    if (op in STRING_OPERATORS and kind is FieldKind.NUMBER) or (
        op in ORDER_OPERATORS and kind in _STRING_KINDS
    ):
        fail(path, f"operator '{op}' does not apply to {field_name} (a {kind.value})")
    return op


def _value(node: Mapping[str, Any], path: str, op: Operator, kind: FieldKind) -> LeafValue:
    value_path = field_path(path, "value")
    if op is Operator.EXISTS:
        return boolean(node["value"], value_path) if "value" in node else True
    raw = required(node, "value", path)
    if op in LIST_OPERATORS:
        options = items(raw, value_path, max_items=limits.MAX_LIST_ITEMS)
        return tuple(
            _comparable(option, f"{value_path}[{index}]", kind)
            for index, option in enumerate(options)
        )
    if op is Operator.REGEX or op is Operator.GLOB:
        return _pattern(raw, value_path, op)
    if op in ORDER_OPERATORS:
        return (
            _time_of_day(raw, value_path)
            if kind is FieldKind.TIME_OF_DAY
            else number(raw, value_path)
        )
    if op in (Operator.STARTS_WITH, Operator.ENDS_WITH):
        return string(raw, value_path, min_chars=0, max_chars=limits.MAX_STRING_CHARS)
    return _comparable(raw, value_path, kind)  # eq, ne, contains


def _comparable(value: object, path: str, kind: FieldKind) -> Scalar:
    """A value that an equality test against a field of ``kind`` could ever match."""
    match kind:
        case FieldKind.NUMBER:
            return number(value, path)
        case FieldKind.WEEKDAY:
            if value not in WEEKDAYS:
                fail(path, f"expected a weekday, one of {', '.join(WEEKDAYS)}; got {show(value)}")
            return str(value)
        case FieldKind.TIME_OF_DAY:
            return _time_of_day(value, path)
        case FieldKind.ANY:
            if isinstance(value, str):
                return string(value, path, min_chars=0, max_chars=limits.MAX_STRING_CHARS)
            if isinstance(value, bool):
                return value
            return _scalar_number(value, path)
        case _:
            return string(value, path, min_chars=0, max_chars=limits.MAX_STRING_CHARS)


def _scalar_number(value: object, path: str) -> Scalar:
    if isinstance(value, int | float):
        return number(value, path)
    fail(path, f"expected a string, number or boolean, got {type_name(value)}")


def _pattern(value: object, path: str, op: Operator) -> str:
    pattern = string(value, path, min_chars=0, max_chars=limits.MAX_PATTERN_CHARS)
    try:
        if op is Operator.REGEX:
            compile_regex(pattern)
        else:
            compile_glob(pattern)
    except PatternError as exc:
        noun = "regular expression" if op is Operator.REGEX else "glob"
        fail(path, f"invalid {noun}: {exc}")
    return pattern


def _time_of_day(value: object, path: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 14:30 as the base-60 integer 870.
        fail(path, 'expected a time of day "HH:MM" (UTC); quote it in YAML')
    text = string(value, path, max_chars=5)
    hours, sep, minutes = text.partition(":")
    valid = (
        sep == ":"
        and len(hours) == 2
        and len(minutes) == 2
        and (hours + minutes).isascii()
        and (hours + minutes).isdigit()
        and int(hours) < 24
        and int(minutes) < 60
    )
    if not valid:
        fail(path, f'expected a time of day "HH:MM" (UTC, zero-padded), got {show(text)}')
    return text
