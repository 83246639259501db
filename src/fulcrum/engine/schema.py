"""Validation on write: ``parse_policy`` turns raw JSON/YAML text or a decoded mapping into a
``PolicyDocument``, or raises ``InvalidArgument`` for the FIRST problem found, naming it by
path (``rules[3].when.all[1].op``). Nothing outside the schema is accepted: unknown fields,
``null`` for an optional field (omit it instead) and values of the wrong type are refused.

Fields are checked in the order the schema lists them, so the first error is deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fulcrum.engine import limits
from fulcrum.engine.condition_schema import parse_condition
from fulcrum.engine.decoding import RawDocument, decode_document
from fulcrum.engine.document import PolicyDocument, Rule, Target
from fulcrum.engine.model import Action, Mode
from fulcrum.engine.patterns import PatternError, compile_glob, is_glob
from fulcrum.engine.values import (
    choice,
    fail,
    field_path,
    integer,
    items,
    mapping,
    required,
    show,
    string,
)

_POLICY_FIELDS = ("name", "description", "priority", "mode", "rules")
_RULE_FIELDS = ("id", "description", "target", "when", "action", "reason")
_TARGET_FIELDS = ("tools", "agents", "roles", "transports")
_RULE_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


def parse_policy(raw: RawDocument) -> PolicyDocument:
    """Validate a policy document given as JSON or YAML text (str or bytes) or a mapping."""
    document = mapping(decode_document(raw), "", _POLICY_FIELDS)
    name = _name(required(document, "name", ""), "name")
    description = _description(document, "")
    priority = _priority(document)
    mode = choice(Mode, document["mode"], "mode") if "mode" in document else Mode.ENFORCE
    rules = _rules(required(document, "rules", ""))
    return PolicyDocument(name, rules, description, priority, mode)


def _name(value: object, path: str) -> str:
    name = string(value, path, max_chars=limits.MAX_NAME_CHARS)
    if not name.strip():
        fail(path, "must not be blank")
    return name


def _description(document: Mapping[str, Any], path: str) -> str:
    if "description" not in document:
        return ""
    return string(
        document["description"],
        field_path(path, "description"),
        min_chars=0,
        max_chars=limits.MAX_DESCRIPTION_CHARS,
    )


def _priority(document: Mapping[str, Any]) -> int:
    if "priority" not in document:
        return 0
    priority = integer(document["priority"], "priority")
    if abs(priority) > limits.MAX_PRIORITY:
        fail("priority", f"must be between {-limits.MAX_PRIORITY} and {limits.MAX_PRIORITY}")
    return priority


def _rules(value: object) -> tuple[Rule, ...]:
    entries = items(value, "rules", max_items=limits.MAX_RULES_PER_POLICY)
    rules: list[Rule] = []
    first_seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        path = f"rules[{index}]"
        rule = _rule(entry, path)
        if rule.id in first_seen:
            fail(
                f"{path}.id",
                f"duplicate rule id {show(rule.id)} (first used by rules[{first_seen[rule.id]}])",
            )
        first_seen[rule.id] = index
        rules.append(rule)
    return tuple(rules)


def _rule(value: object, path: str) -> Rule:
    rule = mapping(value, path, _RULE_FIELDS)
    rule_id = _rule_id(required(rule, "id", path), field_path(path, "id"))
    description = _description(rule, path)
    target = _target(rule["target"], field_path(path, "target")) if "target" in rule else Target()
    when = parse_condition(rule["when"], field_path(path, "when")) if "when" in rule else None
    action = choice(Action, required(rule, "action", path), field_path(path, "action"))
    reason = string(
        required(rule, "reason", path),
        field_path(path, "reason"),
        max_chars=limits.MAX_REASON_CHARS,
    )
    return Rule(rule_id, action, reason, description, target, when)


def _rule_id(value: object, path: str) -> str:
    rule_id = string(value, path, max_chars=limits.MAX_RULE_ID_CHARS)
    if not _RULE_ID_CHARS.issuperset(rule_id):
        fail(path, "may contain only letters, digits, '_', '.' and '-'")
    return rule_id


def _target(value: object, path: str) -> Target:
    target = mapping(value, path, _TARGET_FIELDS)
    return Target(
        tools=_target_entries(target, "tools", path, globs=True),
        agents=_target_entries(target, "agents", path, globs=True),
        roles=_target_entries(target, "roles", path, globs=False),
        transports=_target_entries(target, "transports", path, globs=False),
    )


def _target_entries(
    target: Mapping[str, Any], name: str, path: str, *, globs: bool
) -> tuple[str, ...] | None:
    """``None`` when absent (any value matches). Present lists may not be empty: an empty
    list could never match, which is always a mistake."""
    if name not in target:
        return None
    list_path = field_path(path, name)
    entries: Sequence[object] = items(target[name], list_path, max_items=limits.MAX_LIST_ITEMS)
    max_chars = limits.MAX_PATTERN_CHARS if globs else limits.MAX_STRING_CHARS
    checked: list[str] = []
    for index, entry in enumerate(entries):
        entry_path = f"{list_path}[{index}]"
        text = string(entry, entry_path, max_chars=max_chars)
        if globs and is_glob(text):
            _check_glob(text, entry_path)
        checked.append(text)
    return tuple(checked)


def _check_glob(glob: str, path: str) -> None:
    try:
        compile_glob(glob)
    except PatternError as exc:
        fail(path, f"invalid glob: {exc}")
