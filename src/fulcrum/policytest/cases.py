"""Golden decision cases: YAML files of policies, requests and expected verdicts, shared by the
engine's tests, the benchmark, and the transport tests (which send the same request dicts).

A file holds::

    policies:            # policy documents, each with `id` (the policy id) and optional `version`,
                         # or {file: path/to/policy.yaml} (id defaults to the file's stem)
    default_action: allow   # optional, default allow
    cases:
      - name: ...
        request: {tool: {name, args}, agent: {id, roles}, transport, input: {text},
                  model: {id}, cost: {estimate}, trust: {score}, context: {...},
                  time: "2026-01-05T14:30:00Z"}
        expect: {action, rule, policy, reason?, shadow?: [{policy, action, rule}]}

``request_from_dict`` reads the request shape (also the REST body of POST /v1/decisions).
This is the engine's only module that reads files; nothing on the decision path imports it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fulcrum.engine.model import Action, DecisionRequest, PolicySource, Verdict
from fulcrum.engine.schema import parse_policy
from fulcrum.engine.values import (
    choice,
    fail,
    field_path,
    integer,
    items,
    mapping,
    number,
    required,
    string,
)

_MAX_TEXT = 1 << 20  # golden requests and simulations; live transports apply their own limits
_SUITE_FIELDS = ("policies", "default_action", "cases")
_EXPECT_FIELDS = ("action", "rule", "policy", "reason", "shadow")
_REQUEST_FIELDS = (
    "tool",
    "agent",
    "transport",
    "input",
    "model",
    "cost",
    "trust",
    "context",
    "time",
)


@dataclass(frozen=True)
class ShadowExpectation:
    policy: str
    action: Action
    rule: str | None


@dataclass(frozen=True)
class Expectation:
    action: Action
    rule: str | None  # None: no rule matched (the default applied)
    policy: str | None
    reason: str | None = None  # None: not checked
    shadow: tuple[ShadowExpectation, ...] | None = None  # None: not checked

    def mismatches(self, verdict: Verdict, shadow: Sequence[Verdict]) -> list[str]:
        """How an outcome differs from this expectation; empty when it meets it."""
        problems = []
        actual = (verdict.action, verdict.rule_id or None, verdict.policy_id or None)
        if actual != (self.action, self.rule, self.policy):
            problems.append(
                f"expected {self.action} by {self.policy}/{self.rule}, "
                f"got {actual[0]} by {actual[2]}/{actual[1]}"
            )
        if self.reason is not None and verdict.reason != self.reason:
            problems.append(f"expected reason {self.reason!r}, got {verdict.reason!r}")
        if self.shadow is not None:
            got = [ShadowExpectation(v.policy_id, v.action, v.rule_id or None) for v in shadow]
            if got != list(self.shadow):
                problems.append(f"expected shadow {list(self.shadow)}, got {got}")
        return problems


@dataclass(frozen=True)
class GoldenCase:
    name: str
    request: Mapping[str, Any]  # the raw request dict, for transports to send as-is
    expect: Expectation


@dataclass(frozen=True)
class GoldenSuite:
    name: str  # the file's stem
    policies: tuple[PolicySource, ...]
    default_action: Action
    cases: tuple[GoldenCase, ...]


def load_cases(path: str | Path) -> list[GoldenSuite]:
    """The suite in a YAML file, or one suite per ``*.yaml`` file of a directory (by name)."""
    path = Path(path)
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    return [_suite(file) for file in files]


def request_from_dict(
    data: Mapping[str, Any], *, now: dt.datetime | None = None
) -> DecisionRequest:
    """Build a request from the dict shape above, refusing unknown or ill-typed fields.

    ``time`` is honoured only when ``now`` is not given: a live decision passes the server's
    clock as ``now``, and then a caller-supplied ``time`` (which would let the caller pick what
    time-of-day rules see) is refused.
    """
    request = mapping(data, "", _REQUEST_FIELDS)
    tool = mapping(required(request, "tool", ""), "tool", ("name", "args"))
    agent = _section(request, "agent", ("id", "roles"))
    return DecisionRequest(
        tool_name=string(required(tool, "name", "tool"), "tool.name", max_chars=_MAX_TEXT),
        tool_args=_object(tool, "args", "tool"),
        agent_id=_text(agent, "id", "agent"),
        agent_roles=_roles(agent),
        transport=_text(request, "transport", ""),
        input_text=_text(_section(request, "input", ("text",)), "text", "input"),
        model_id=_text(_section(request, "model", ("id",)), "id", "model"),
        cost_estimate=_number(_section(request, "cost", ("estimate",)), "estimate", "cost"),
        trust_score=_number(_section(request, "trust", ("score",)), "score", "trust"),
        context=_object(request, "context", ""),
        now=_now(request, now),
    )


def _section(data: Mapping[str, Any], name: str, fields: tuple[str, ...]) -> Mapping[str, Any]:
    return mapping(data[name], name, fields) if name in data else {}


def _text(section: Mapping[str, Any], name: str, path: str) -> str:
    if name not in section:
        return ""
    return string(section[name], field_path(path, name), min_chars=0, max_chars=_MAX_TEXT)


def _number(section: Mapping[str, Any], name: str, path: str) -> float | None:
    return number(section[name], field_path(path, name)) if name in section else None


def _object(section: Mapping[str, Any], name: str, path: str) -> Mapping[str, Any]:
    if name not in section:
        return {}
    return mapping(section[name], field_path(path, name), None)


def _roles(agent: Mapping[str, Any]) -> tuple[str, ...]:
    if "roles" not in agent:
        return ()
    entries = items(agent["roles"], "agent.roles", max_items=1000, min_items=0)
    return tuple(
        string(role, f"agent.roles[{index}]", max_chars=_MAX_TEXT)
        for index, role in enumerate(entries)
    )


def _now(request: Mapping[str, Any], now: dt.datetime | None) -> dt.datetime:
    if now is not None:
        if "time" in request:
            fail("time", "set by the server; a decision request may not choose it")
        return now
    value = required(request, "time", "")
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            fail("time", "expected an ISO 8601 timestamp such as 2026-01-05T14:30:00Z")
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        fail(
            "time", "expected an ISO 8601 timestamp with a time zone, such as 2026-01-05T14:30:00Z"
        )
    return value


def _suite(file: Path) -> GoldenSuite:
    where = file.name
    data = mapping(yaml.safe_load(file.read_text("utf-8")), where, _SUITE_FIELDS)
    policies = items(required(data, "policies", where), f"{where}: policies", max_items=1000)
    cases = items(required(data, "cases", where), f"{where}: cases", max_items=10_000)
    default = choice(Action, data.get("default_action", "allow"), f"{where}: default_action")
    return GoldenSuite(
        file.stem,
        tuple(
            _policy_source(p, f"{where}: policies[{i}]", file.parent)
            for i, p in enumerate(policies)
        ),
        default,
        tuple(_case(c, f"{where}: cases[{i}]") for i, c in enumerate(cases)),
    )


def _policy_source(entry: object, path: str, base: Path) -> PolicySource:
    """An inline policy (``id`` plus the document), or ``{file: path}`` naming a policy file
    (YAML or JSON, relative to the suite) whose id defaults to the file's stem."""
    policy = mapping(entry, path, None)
    if "file" in policy:
        reference = mapping(policy, path, ("file", "id", "version"))
        name = string(reference["file"], f"{path}.file", max_chars=1024)
        source = base / name
        if not source.is_file():
            fail(f"{path}.file", f"no such policy file: {name}")
        policy_id = string(reference.get("id", source.stem), f"{path}.id", max_chars=256)
        version = integer(reference.get("version", 1), f"{path}.version")
        return PolicySource(policy_id, version, parse_policy(source.read_bytes()).to_dict())
    policy_id = string(required(policy, "id", path), f"{path}.id", max_chars=256)
    version = integer(policy.get("version", 1), f"{path}.version")
    document = {key: value for key, value in policy.items() if key not in ("id", "version")}
    return PolicySource(policy_id, version, document)


def _case(entry: object, path: str) -> GoldenCase:
    case = mapping(entry, path, ("name", "request", "expect"))
    name = string(required(case, "name", path), f"{path}.name", max_chars=200)
    request = mapping(required(case, "request", path), f"{path}.request", _REQUEST_FIELDS)
    expect_path = f"{path}.expect"
    expect = mapping(required(case, "expect", path), expect_path, _EXPECT_FIELDS)
    shadow = None
    if "shadow" in expect:
        entries = items(expect["shadow"], f"{expect_path}.shadow", max_items=1000, min_items=0)
        shadow = tuple(
            _shadow(entry, f"{expect_path}.shadow[{index}]") for index, entry in enumerate(entries)
        )
    return GoldenCase(
        name,
        request,
        Expectation(
            action=choice(Action, required(expect, "action", expect_path), f"{expect_path}.action"),
            rule=_optional_id(expect, "rule", expect_path),
            policy=_optional_id(expect, "policy", expect_path),
            reason=_optional_id(expect, "reason", expect_path),
            shadow=shadow,
        ),
    )


def _shadow(entry: object, path: str) -> ShadowExpectation:
    shadow = mapping(entry, path, ("policy", "action", "rule"))
    return ShadowExpectation(
        policy=string(required(shadow, "policy", path), f"{path}.policy", max_chars=256),
        action=choice(Action, required(shadow, "action", path), f"{path}.action"),
        rule=_optional_id(shadow, "rule", path),
    )


def _optional_id(section: Mapping[str, Any], name: str, path: str) -> str | None:
    """A string, or None when absent or null (null: "no rule/policy" in an expectation)."""
    value = section.get(name)
    return None if value is None else string(value, field_path(path, name), max_chars=_MAX_TEXT)
