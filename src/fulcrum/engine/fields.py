"""The request fields a condition can name, their kinds, and how each is read from a request.

A reader returns ``MISSING`` when the request lacks the field. The request's scalar fields
default to empty values (``""``, ``()``, ``None``), and an empty value counts as missing, so
``exists`` means "the caller supplied something". Time fields read the request's ``now`` in
UTC (a naive ``now`` is taken to be UTC already).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from fulcrum.engine.model import DecisionRequest


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()

Reader = Callable[[DecisionRequest], object]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class FieldKind(Enum):
    """What a field holds; validation uses it to refuse operators that could never hold."""

    STRING = "string"
    STRING_LIST = "list of strings"
    NUMBER = "number"
    WEEKDAY = "weekday"
    TIME_OF_DAY = "time of day"
    ANY = "JSON value"  # tool.args.* and context.*: whatever the caller sent


@dataclass(frozen=True)
class Field:
    name: str
    kind: FieldKind
    read: Reader


class UnknownField(ValueError):
    pass


def _utc(request: DecisionRequest) -> dt.datetime:
    now = request.now
    return now.replace(tzinfo=dt.UTC) if now.tzinfo is None else now.astimezone(dt.UTC)


def _or_missing(value: object) -> object:
    return value if value else MISSING


def _number_or_missing(value: float | None) -> object:
    return MISSING if value is None else value


_FIXED: dict[str, tuple[FieldKind, Reader]] = {
    "tool.name": (FieldKind.STRING, lambda r: _or_missing(r.tool_name)),
    "agent.id": (FieldKind.STRING, lambda r: _or_missing(r.agent_id)),
    "agent.roles": (FieldKind.STRING_LIST, lambda r: _or_missing(r.agent_roles)),
    "transport": (FieldKind.STRING, lambda r: _or_missing(r.transport)),
    "input.text": (FieldKind.STRING, lambda r: _or_missing(r.input_text)),
    "model.id": (FieldKind.STRING, lambda r: _or_missing(r.model_id)),
    "cost.estimate": (FieldKind.NUMBER, lambda r: _number_or_missing(r.cost_estimate)),
    "trust.score": (FieldKind.NUMBER, lambda r: _number_or_missing(r.trust_score)),
    "time.hour": (FieldKind.NUMBER, lambda r: _utc(r).hour),
    "time.weekday": (FieldKind.WEEKDAY, lambda r: WEEKDAYS[_utc(r).weekday()]),
    "time.of_day": (FieldKind.TIME_OF_DAY, lambda r: _utc(r).strftime("%H:%M")),
}

_NESTED: dict[str, Callable[[DecisionRequest], Mapping[str, Any]]] = {
    "tool.args.": lambda r: r.tool_args,
    "context.": lambda r: r.context,
}

# dict first: an exact type check that spares most reads the slower Mapping ABC check.
_MAPPINGS = (dict, Mapping)
_LISTS = (list, tuple)

FIELD_NAMES = (*_FIXED, *(f"{prefix}<path>" for prefix in _NESTED))


def resolve_field(name: str) -> Field:
    """The field called ``name``, or ``UnknownField`` saying what would have been accepted."""
    if name in _FIXED:
        kind, read = _FIXED[name]
        return Field(name, kind, read)
    for prefix, root in _NESTED.items():
        if name.startswith(prefix) or name == prefix[:-1]:
            return Field(name, FieldKind.ANY, _path_reader(root, _segments(name, prefix)))
    raise UnknownField(f"unknown field {name[:64]!r}; expected one of {', '.join(FIELD_NAMES)}")


def _segments(name: str, prefix: str) -> tuple[str, ...]:
    segments = tuple(name[len(prefix) :].split(".")) if name.startswith(prefix) else ("",)
    if "" in segments:
        raise UnknownField(
            f"{prefix[:-1]} needs a dot-separated key path with no empty keys, "
            f"e.g. {prefix}query or {prefix}items.0.name"
        )
    return segments


def _path_reader(
    root: Callable[[DecisionRequest], Mapping[str, Any]], path: tuple[str, ...]
) -> Reader:
    # A numeric segment indexes a list; on a mapping every segment is a key (so "0" can be one).
    steps = tuple(
        (segment, int(segment) if segment.isascii() and segment.isdigit() else None)
        for segment in path
    )

    def read(request: DecisionRequest) -> object:
        value: object = root(request)
        for key, index in steps:
            if isinstance(value, _MAPPINGS):
                value = value.get(key, MISSING)
                if value is MISSING:
                    return MISSING
            elif index is not None and isinstance(value, _LISTS) and index < len(value):
                value = value[index]
            else:
                return MISSING
        return value

    return read
