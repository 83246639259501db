"""Primitive checks for the validator. Each returns the value narrowed to its type or raises
``InvalidArgument`` naming the offending path; messages quote at most a short prefix of input."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, NoReturn, TypeVar

from fulcrum.engine.decoding import TooManyDigits
from fulcrum.engine.limits import MAX_ECHO_CHARS
from fulcrum.engine.operators import is_finite_number, is_number
from fulcrum.kit.errors import InvalidArgument
from fulcrum.kit.validation import text_problem

_E = TypeVar("_E", bound=StrEnum)


def fail(path: str, message: str) -> NoReturn:
    raise InvalidArgument(message, field=path or None)


def field_path(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


def show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= MAX_ECHO_CHARS else text[: MAX_ECHO_CHARS - 3] + "..."


def mapping(value: object, path: str, allowed: Sequence[str] | None) -> Mapping[str, Any]:
    """A mapping whose keys are all in ``allowed`` (any keys when ``allowed`` is None)."""
    if not isinstance(value, Mapping):
        fail(path, f"expected a mapping, got {type_name(value)}")
    if allowed is None:
        return value
    for key in value:
        if key not in allowed:
            fail(
                field_path(path, _printable(str(key)[:MAX_ECHO_CHARS])),
                f"unknown field {show(key)}; expected one of {', '.join(allowed)}",
            )
    return value


def _printable(text: str) -> str:
    """A key for an error's field path: a lone surrogate would make the answer itself
    unencodable, so it is written as its escape (``\\ud800``)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def required(document: Mapping[str, Any], key: str, path: str) -> object:
    if key not in document:
        fail(field_path(path, key), "required")
    return document[key]


def string(value: object, path: str, *, max_chars: int, min_chars: int = 1) -> str:
    if not isinstance(value, str):
        fail(path, f"expected a string, got {type_name(value)}")
    if len(value) < min_chars:
        fail(path, "must not be empty")
    if len(value) > max_chars:
        fail(path, f"must be at most {max_chars} characters (got {len(value)})")
    problem = text_problem(value)  # what PostgreSQL cannot store in text or jsonb
    if problem is not None:
        fail(path, problem)
    return value


def integer(value: object, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        fail(path, f"expected an integer, got {type_name(value)}")
    return value


def number(value: object, path: str) -> int | float:
    if not is_finite_number(value):
        fail(path, f"expected a number, got {type_name(value)}")
    return value


def choice(kind: type[_E], value: object, path: str, *, noun: str = "value") -> _E:
    allowed = [member.value for member in kind]
    if not isinstance(value, str) or value not in allowed:
        fail(path, f"unknown {noun} {show(value)}; expected one of {', '.join(allowed)}")
    return kind(value)


def boolean(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        fail(path, f"expected true or false, got {type_name(value)}")
    return value


def items(value: object, path: str, *, max_items: int, min_items: int = 1) -> Sequence[object]:
    """A list of ``min_items`` (by default one: an empty list is a mistake) to ``max_items``."""
    if not isinstance(value, list | tuple):
        fail(path, f"expected a list, got {type_name(value)}")
    if len(value) < min_items:
        fail(path, "must not be empty")
    if len(value) > max_items:
        fail(path, f"must hold at most {max_items} items (got {len(value)})")
    return value


def type_name(value: object) -> str:
    """JSON's name for the type, which is what policy authors write."""
    if value is None:
        return "null"
    if isinstance(value, TooManyDigits):
        return "a number with too many digits"
    if isinstance(value, bool):
        return "a boolean"
    if is_number(value):
        return "a number" if is_finite_number(value) else "a non-finite number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return f"a {type(value).__name__}"
