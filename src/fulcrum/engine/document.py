"""A validated policy document as typed, immutable values (``schema.parse_policy`` builds it).

``to_dict`` gives the canonical JSON form, with defaults filled in, that is stored and hashed;
parsing it again yields an equal document.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fulcrum.engine.model import Action, Mode

Scalar = str | int | float | bool
LeafValue = Scalar | tuple[Scalar, ...]


class Operator(StrEnum):
    EQ = "eq"
    NE = "ne"
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"
    GLOB = "glob"
    REGEX = "regex"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    EXISTS = "exists"


@dataclass(frozen=True)
class Leaf:
    field: str
    op: Operator
    value: LeafValue
    case_insensitive: bool = False


@dataclass(frozen=True)
class AllOf:
    nodes: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    nodes: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    node: Condition


Condition = Leaf | AllOf | AnyOf | Not


@dataclass(frozen=True)
class Target:
    """Each present tuple must match (AND); ``None`` matches anything."""

    tools: tuple[str, ...] | None = None
    agents: tuple[str, ...] | None = None
    roles: tuple[str, ...] | None = None
    transports: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    action: Action
    reason: str
    description: str = ""
    target: Target = Target()
    when: Condition | None = None


@dataclass(frozen=True)
class PolicyDocument:
    name: str
    rules: tuple[Rule, ...]
    description: str = ""
    priority: int = 0
    mode: Mode = Mode.ENFORCE

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "priority": self.priority,
            "mode": self.mode.value,
            "rules": [_rule_dict(rule) for rule in self.rules],
        }


def _rule_dict(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"id": rule.id}
    if rule.description:
        out["description"] = rule.description
    target = {
        name: list(entries)
        for name, entries in (
            ("tools", rule.target.tools),
            ("agents", rule.target.agents),
            ("roles", rule.target.roles),
            ("transports", rule.target.transports),
        )
        if entries is not None
    }
    if target:
        out["target"] = target
    if rule.when is not None:
        out["when"] = condition_dict(rule.when)
    out["action"] = rule.action.value
    out["reason"] = rule.reason
    return out


def condition_dict(node: Condition) -> dict[str, Any]:
    match node:
        case AllOf(nodes):
            return {"all": [condition_dict(child) for child in nodes]}
        case AnyOf(nodes):
            return {"any": [condition_dict(child) for child in nodes]}
        case Not(child):
            return {"not": condition_dict(child)}
        case Leaf(field, op, value, case_insensitive):
            leaf: dict[str, Any] = {
                "field": field,
                "op": op.value,
                "value": list(value) if isinstance(value, tuple) else value,
            }
            if case_insensitive:
                leaf["case_insensitive"] = True
            return leaf
