"""Fulcrum policies translated to one Cerbos resource policy, and Fulcrum requests to Cerbos
checks, so that Cerbos reaches the same action for every request of the workload.

The translation: one resource kind, ``tool_call``; the agent is the principal (id, roles);
the tool name, args, transport, model, cost and context are resource attributes (empty
fixed fields are left out, as Fulcrum reads them as missing). Every Fulcrum rule of an
enforce-mode policy becomes one Cerbos rule for the Cerbos action named after the Fulcrum
action (``allow``, ``warn``, ``escalate``, ``require_approval``, ``deny``), effect
``EFFECT_ALLOW``, any role, with a CEL condition that holds exactly when the Fulcrum rule
matches (its target and its ``when``). A check asks for all five actions; Fulcrum's action is
the most severe one Cerbos allows, else the tenant default (deny): Fulcrum's own rule,
"the most severe matching enforced rule wins". Shadow-mode policies never change the action
and are left out.

The CEL follows Fulcrum's operator semantics for the values the workload sends (scalars in
args and context; ``agent.roles`` is the one list): a missing field or a value of another type
fails every operator but ``ne``/``not_in`` (their negations) and ``exists``; ``regex``
searches (RE2 on both sides), ``glob`` matches the whole string, ``case_insensitive`` folds
ASCII case. Numbers are doubles in Cerbos, as JSON has them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

SEVERITY = ["allow", "warn", "escalate", "require_approval", "deny"]
ACTIONS = list(reversed(SEVERITY))  # what every check asks for, most severe first
KIND = "tool_call"
DEFAULT_ACTION = "deny"

# Fulcrum's fixed fields as CEL; agent.roles (P.roles) is handled as the one list.
_FIXED = {
    "tool.name": "R.attr.tool",
    "agent.id": "P.id",
    "transport": "R.attr.transport",
    "model.id": "R.attr.model",
    "cost.estimate": "R.attr.cost",
    "agent.roles": "P.roles",
}
_ALWAYS_PRESENT = {"tool.name", "agent.id", "agent.roles"}
_NESTED = {"tool.args.": "R.attr.args", "context.": "R.attr.context"}


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value))
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are CEL's
    raise TypeError(f"no CEL literal for {value!r}")


def _cel_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "double"
    return "string"


def _field(name: str) -> tuple[str, str | None]:
    """The CEL expression reading ``name``, and the presence test (None: always present)."""
    if name in _FIXED:
        expr = _FIXED[name]
        return expr, None if name in _ALWAYS_PRESENT else f"has({expr})"
    for prefix, root in _NESTED.items():
        if name.startswith(prefix):
            path = name[len(prefix) :].split(".")
            if not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) for key in path):
                raise ValueError(f"field {name!r}: only identifier keys are translated")
            tests, expr = [], root
            for key in path:
                expr = f"{expr}.{key}"
                tests.append(f"has({expr})")
            return expr, " && ".join(tests)
    raise ValueError(f"field {name!r} is not translated")


def glob_regex(glob: str) -> str:
    """A shell glob (``*``, ``?``; no classes) as an anchored RE2 regex over the whole string."""
    if "[" in glob:
        raise ValueError(f"glob {glob!r}: character classes are not translated")
    body = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in glob
    )
    return f"^(?s:{body})$"


def _string_test(op: str, value: Any, fold: bool) -> str:
    """A CEL test of a string ``x`` (the placeholder) for a string operator."""
    if op == "regex":
        return f"x.matches({_literal(('(?i)' if fold else '') + value)})"
    if op == "glob":
        pattern = glob_regex(value)
        return f"x.matches({_literal(('(?i)' if fold else '') + pattern)})"
    subject, needle = ("x.lowerAscii()", value.lower()) if fold else ("x", value)
    method = {"contains": "contains", "starts_with": "startsWith", "ends_with": "endsWith"}[op]
    return f"{subject}.{method}({_literal(needle)})"


def _scalar_test(op: str, value: Any, fold: bool) -> str:
    """A CEL test of a scalar ``x`` (already of the right type) for one Fulcrum operator."""
    if op in ("eq", "in"):
        options = value if op == "in" else [value]
        if fold:
            return f"x.lowerAscii() in [{', '.join(_literal(o.lower()) for o in options)}]"
        return f"x in [{', '.join(_literal(o) for o in options)}]"
    if op in ("gt", "gte", "lt", "lte"):
        symbol = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
        return f"x {symbol} {_literal(value)}"
    return _string_test(op, value, fold)


def _operand_type(op: str, value: Any) -> str:
    if op in ("in", "not_in"):
        kinds = {_cel_type(option) for option in value}
        if len(kinds) != 1:
            raise ValueError("mixed-type lists are not translated")
        return kinds.pop()
    if op in ("contains", "starts_with", "ends_with", "glob", "regex"):
        return "string"
    return _cel_type(value)


def leaf(node: Mapping[str, Any]) -> str:
    name, op, value = node["field"], node["op"], node.get("value")
    fold = bool(node.get("case_insensitive", False))
    expr, present = _field(name)
    if op == "exists":
        held = present or "true"
        return held if value is True else f"!({held})"
    if op in ("ne", "not_in"):
        positive = leaf({**node, "op": {"ne": "eq", "not_in": "in"}[op]})
        return f"!({positive})"
    test = _scalar_test(op, value, fold)
    if name == "agent.roles":  # the one list: any element may satisfy it
        return f"{expr}.exists(x, {test})"
    kind = _operand_type(op, value)
    guards = [g for g in (present, f"type({expr}) == {kind}") if g]
    return "(" + " && ".join([*guards, _bind(test, expr)]) + ")"


def _bind(test: str, expr: str) -> str:
    """``test`` with its placeholder ``x`` (the first token) replaced by ``expr``."""
    if not test.startswith("x"):
        raise AssertionError(test)
    return expr + test[1:]


def condition(node: Mapping[str, Any]) -> str:
    if "all" in node:
        return "(" + " && ".join(condition(child) for child in node["all"]) + ")"
    if "any" in node:
        return "(" + " || ".join(condition(child) for child in node["any"]) + ")"
    if "not" in node:
        return f"!{condition(node['not'])}"
    return leaf(node)


def _entries(expr: str, entries: Sequence[str]) -> str:
    """``expr`` equals one of ``entries`` (each exact or a glob)."""
    exact = [entry for entry in entries if not set(entry) & set("*?[")]
    tests = [f"{expr} in [{', '.join(_literal(e) for e in exact)}]"] if exact else []
    tests += [
        f"{expr}.matches({_literal(glob_regex(entry))})"
        for entry in entries
        if set(entry) & set("*?[")
    ]
    return "(" + " || ".join(tests) + ")"


def rule_condition(rule: Mapping[str, Any]) -> str | None:
    """The CEL that holds exactly when the Fulcrum rule matches; None: always."""
    target = rule.get("target", {})
    parts = []
    if "tools" in target:
        parts.append(_entries("R.attr.tool", target["tools"]))
    if "agents" in target:
        parts.append(_entries("P.id", target["agents"]))
    if "roles" in target:
        roles = ", ".join(_literal(role) for role in target["roles"])
        parts.append(f"P.roles.exists(r, r in [{roles}])")
    if "transports" in target:
        transports = ", ".join(_literal(t) for t in target["transports"])
        parts.append(f"(has(R.attr.transport) && R.attr.transport in [{transports}])")
    if "when" in rule:
        parts.append(condition(rule["when"]))
    return " && ".join(parts) if parts else None


def resource_policy(policies: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One Cerbos resource policy holding a rule per Fulcrum rule of an enforced policy."""
    rules = []
    for index, policy in enumerate(policies):
        if policy.get("mode", "enforce") == "shadow":
            continue
        for rule in policy["rules"]:
            entry: dict[str, Any] = {
                "name": f"p{index:02d}-{rule['id']}",
                "actions": [rule["action"]],
                "effect": "EFFECT_ALLOW",
                "roles": ["*"],
            }
            cel = rule_condition(rule)
            if cel is not None:
                entry["condition"] = {"match": {"expr": cel}}
            rules.append(entry)
    return {
        "apiVersion": "api.cerbos.dev/v1",
        "resourcePolicy": {"version": "default", "resource": KIND, "rules": rules},
    }


def check_body(
    *,
    tool: str,
    args: Mapping[str, Any],
    agent: str,
    roles: Sequence[str],
    transport: str,
    model: str,
    cost: float | None,
    context: Mapping[str, Any],
) -> dict[str, Any]:
    """The JSON body of ``POST /api/check/resources`` for one Fulcrum request."""
    attr: dict[str, Any] = {"tool": tool, "args": dict(args), "context": dict(context)}
    if transport:
        attr["transport"] = transport
    if model:
        attr["model"] = model
    if cost is not None:
        attr["cost"] = cost
    return {
        "principal": {"id": agent, "roles": list(roles)},
        "resources": [{"actions": ACTIONS, "resource": {"kind": KIND, "id": "call", "attr": attr}}],
    }


def decided(effects: Mapping[str, Any]) -> str:
    """Fulcrum's action from a result's action -> effect map (names or enum numbers)."""
    for action in ACTIONS:
        if effects.get(action) in ("EFFECT_ALLOW", 1):
            return action
    return DEFAULT_ACTION
