"""The baseline: a straightforward interpreter over raw policy documents.

Every decision walks every rule of every policy, matches tool and agent globs with fnmatch,
compiles each regex or glob condition at the point of use (through re2's and fnmatch's
ordinary calls, which keep only small LRU caches), and re-reads the document dicts. It has
no index and no precompiled closures. It shares no code with the engine beyond the model
types, so agreement on the golden cases cross-checks both.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

import re2

from fulcrum.engine.model import NO_MATCH_REASON, Action, DecisionRequest, PolicySource, Verdict

_ABSENT = object()
_WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def naive_evaluate(
    policies: Sequence[PolicySource], default_action: Action, request: DecisionRequest
) -> tuple[Verdict, tuple[Verdict, ...]]:
    """(enforced verdict, shadow verdicts), decided the way the policy model describes."""
    enforced: list[tuple[tuple[Any, ...], Verdict]] = []
    shadow: list[tuple[tuple[Any, ...], Verdict]] = []
    for source in policies:
        document = source.document
        priority = document.get("priority", 0)
        best: tuple[tuple[Any, ...], Verdict] | None = None
        for index, rule in enumerate(document["rules"]):
            if not _rule_matches(rule, request):
                continue
            action = Action(rule["action"])
            key = (-action.severity, -priority, source.policy_id, index)
            verdict = Verdict(action, rule["reason"], source.policy_id, source.version, rule["id"])
            if document.get("mode", "enforce") == "shadow":
                if best is None or key < best[0]:
                    best = (key, verdict)
            else:
                enforced.append((key, verdict))
        if best is not None:
            shadow.append(((-priority, source.policy_id), best[1]))
    shadow_verdicts = tuple(verdict for _, verdict in sorted(shadow, key=lambda pair: pair[0]))
    if not enforced:
        return Verdict(default_action, NO_MATCH_REASON), shadow_verdicts
    return min(enforced, key=lambda pair: pair[0])[1], shadow_verdicts


def _rule_matches(rule: Mapping[str, Any], request: DecisionRequest) -> bool:
    target = rule.get("target", {})
    if "tools" in target and not any(
        fnmatch.fnmatchcase(request.tool_name, tool) for tool in target["tools"]
    ):
        return False
    if "agents" in target and not any(
        fnmatch.fnmatchcase(request.agent_id, agent) for agent in target["agents"]
    ):
        return False
    if "roles" in target and not set(target["roles"]) & set(request.agent_roles):
        return False
    if "transports" in target and request.transport not in target["transports"]:
        return False
    return "when" not in rule or _holds(rule["when"], request)


def _holds(node: Mapping[str, Any], request: DecisionRequest) -> bool:
    if "all" in node:
        return all(_holds(child, request) for child in node["all"])
    if "any" in node:
        return any(_holds(child, request) for child in node["any"])
    if "not" in node:
        return not _holds(node["not"], request)
    value = _lookup(node["field"], request)
    return _compare(node["op"], value, node.get("value", True), node.get("case_insensitive", False))


def _lookup(field: str, request: DecisionRequest) -> Any:
    if field.startswith("tool.args."):
        return _walk(request.tool_args, field[len("tool.args.") :])
    if field.startswith("context."):
        return _walk(request.context, field[len("context.") :])
    if field.startswith("time."):
        now = request.now.astimezone(dt.UTC)
        if field == "time.hour":
            return now.hour
        if field == "time.weekday":
            return _WEEKDAYS[now.weekday()]
        return f"{now.hour:02d}:{now.minute:02d}"
    if field in ("cost.estimate", "trust.score"):
        number = request.cost_estimate if field == "cost.estimate" else request.trust_score
        return _ABSENT if number is None else number
    value = {
        "tool.name": request.tool_name,
        "agent.id": request.agent_id,
        "agent.roles": list(request.agent_roles),
        "transport": request.transport,
        "input.text": request.input_text,
        "model.id": request.model_id,
    }[field]
    return value or _ABSENT


def _walk(root: Mapping[str, Any], path: str) -> Any:
    current: Any = root
    for key in path.split("."):
        if isinstance(current, Mapping) and key in current:
            current = current[key]
        elif isinstance(current, list) and key.isdigit() and int(key) < len(current):
            current = current[int(key)]
        else:
            return _ABSENT
    return current


def _compare(op: str, value: Any, expected: Any, fold: bool) -> bool:
    if op == "exists":
        return (value is not _ABSENT) == expected
    if op == "ne":
        return not _compare("eq", value, expected, fold)
    if op == "not_in":
        return not _compare("in", value, expected, fold)
    if op in ("gt", "gte", "lt", "lte"):
        return _ordered(op, value, expected)
    if isinstance(value, list):
        if op == "contains":
            return any(_same(item, expected, fold) for item in value)
        # Any element may satisfy the operator; lists inside lists are not searched.
        return any(
            not isinstance(item, list) and _compare(op, item, expected, fold) for item in value
        )
    if op == "eq":
        return _same(value, expected, fold)
    if op == "in":
        return any(_same(value, option, fold) for option in expected)
    if not isinstance(value, str):
        return False
    text, wanted = (value.casefold(), str(expected).casefold()) if fold else (value, expected)
    if op == "contains":
        return isinstance(expected, str) and wanted in text
    if op == "starts_with":
        return text.startswith(wanted)
    if op == "ends_with":
        return text.endswith(wanted)
    if op == "glob":
        return fnmatch.fnmatchcase(text, wanted)
    options = re2.Options()
    options.case_sensitive = not fold
    return re2.search(expected, value, options) is not None


def _same(value: Any, expected: Any, fold: bool) -> bool:
    kinds = (type(value) is bool, type(expected) is bool)
    if kinds[0] != kinds[1]:
        return False
    if isinstance(value, str) and isinstance(expected, str):
        return value.casefold() == expected.casefold() if fold else value == expected
    numeric = (int, float)
    if isinstance(value, numeric) and isinstance(expected, numeric):
        return value == expected
    return False


def _ordered(op: str, value: Any, bound: Any) -> bool:
    if isinstance(bound, str):
        if not isinstance(value, str):
            return False
    elif isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return {
        "gt": value > bound,
        "gte": value >= bound,
        "lt": value < bound,
        "lte": value <= bound,
    }[op]
