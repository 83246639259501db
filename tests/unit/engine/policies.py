"""Small builders for policy documents in tests."""

from __future__ import annotations

from typing import Any


def rule(rule_id: str = "r", **fields: Any) -> dict[str, Any]:
    return {"id": rule_id, "action": "deny", "reason": "because", **fields}


def policy(*rules: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"name": "test", "rules": list(rules) or [rule()], **fields}


def leaf(field: str, op: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"field": field, "op": op, **extra}
    if value is not None:
        node["value"] = value
    return node
