"""Raw policy text (JSON or YAML) or an already-decoded mapping, to plain data.

Everything here guards the validator from hostile input before any schema is looked at:
the size limit is checked before parsing, YAML aliases are refused (a few hundred bytes of
nested aliases expand into billions of nodes to walk), and duplicate keys are refused
(``action: allow`` followed by ``action: deny`` must not silently keep one of them).
An integer too long for Python to convert (``sys.get_int_max_str_digits``, 4,300 digits)
decodes to ``TooManyDigits``, which the validator refuses naming its path.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping
from typing import Any, NoReturn

import yaml

from fulcrum.engine.limits import MAX_DOCUMENT_BYTES, MAX_ECHO_CHARS
from fulcrum.kit.errors import InvalidArgument

RawDocument = str | bytes | Mapping[str, Any]


class TooManyDigits:
    """Stands in for an integer literal that int() refuses to convert (a ValueError that
    would otherwise escape from deep inside the JSON or YAML parser, with no path)."""

    def __repr__(self) -> str:
        return "<a number with too many digits>"


def _integer(text: str) -> int | TooManyDigits:
    try:
        return int(text)
    except ValueError:
        return TooManyDigits()


def decode_document(raw: RawDocument) -> object:
    if isinstance(raw, Mapping):
        _check_size(_encoded_size(raw))
        return raw
    if isinstance(raw, str):
        if len(raw) > MAX_DOCUMENT_BYTES:  # each character is at least one byte
            _too_large()
        raw = _utf8(raw)
    _check_size(len(raw))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        _fail("the policy document must be UTF-8 text")
    return _parse(text)


def _parse(text: str) -> object:
    # JSON first: PyYAML implements YAML 1.1, which reads JSON numbers such as 1e-3 as strings.
    try:
        return json.loads(text, object_pairs_hook=_object_without_duplicates, parse_int=_integer)
    except json.JSONDecodeError:
        pass
    except RecursionError:
        _fail("the policy document is nested too deeply")
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        where = f" at line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        _fail(f"invalid YAML{where}: {_clip(exc.problem or 'cannot parse')}")
    except yaml.YAMLError:
        _fail("invalid YAML")
    except RecursionError:
        _fail("the policy document is nested too deeply")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            _fail(f"duplicate key {_clip(repr(key))}")
        result[key] = value
    return result


class _StrictLoader(yaml.SafeLoader):
    """``yaml.safe_load`` without aliases and without duplicate keys."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            _fail("YAML aliases (*name) are not allowed in policy documents")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable) and key in seen:
                _fail(f"duplicate key {_clip(repr(key))} at line {key_node.start_mark.line + 1}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_integer(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | TooManyDigits:
    try:
        return loader.construct_yaml_int(node)
    except ValueError:
        return TooManyDigits()


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _yaml_integer)


def _encoded_size(data: Mapping[str, Any]) -> int:
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=repr)
    except (RecursionError, ValueError):  # ValueError: a reference cycle
        _fail("the policy document is nested too deeply")
    # Only a size: a lone surrogate is refused where it stands, naming its path.
    return len(text.encode("utf-8", "surrogatepass"))


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        _fail("the policy document must be UTF-8 text")


def _check_size(size: int) -> None:
    if size > MAX_DOCUMENT_BYTES:
        _too_large()


def _too_large() -> NoReturn:
    _fail(f"the policy document is larger than {MAX_DOCUMENT_BYTES} bytes")


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ECHO_CHARS else text[: MAX_ECHO_CHARS - 3] + "..."


def _fail(message: str) -> NoReturn:
    raise InvalidArgument(message)
