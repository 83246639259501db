"""Validation on write: every refusal names the first bad field by its path and says why."""

from __future__ import annotations

from typing import Any

import pytest

from fulcrum.engine.document import AllOf, Leaf, Not, Operator
from fulcrum.engine.model import Action, Mode
from fulcrum.engine.schema import parse_policy
from fulcrum.kit.errors import InvalidArgument
from tests.unit.engine.policies import leaf, policy, rule


def refusal(document: Any) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        parse_policy(document)
    return caught.value


def nested_nots(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = leaf("agent.id", "eq", "a")
    for _ in range(levels - 1):
        node = {"not": node}
    return node


FOUR_RULES_THE_LAST_BAD = policy(
    rule("a"),
    rule("b"),
    rule("c"),
    rule("d", when={"all": [leaf("agent.id", "eq", "x"), leaf("agent.id", "foo", "x")]}),
)

REFUSALS: list[tuple[str, dict[str, Any], str, str]] = [
    # (test id, document, field, message fragment)
    (
        "unknown op deep in a tree",
        FOUR_RULES_THE_LAST_BAD,
        "rules[3].when.all[1].op",
        "unknown operator 'foo'; expected one of eq, ne, in, not_in",
    ),
    (
        "unknown top-level field",
        {**policy(), "owner": "x"},
        "owner",
        "unknown field 'owner'; expected one of name, description, priority, mode, rules",
    ),
    ("unknown rule field", policy(rule(colour="red")), "rules[0].colour", "unknown field 'colour'"),
    (
        "unknown target field",
        policy(rule(target={"tool": ["x"]})),
        "rules[0].target.tool",
        "unknown field 'tool'; expected one of tools, agents, roles, transports",
    ),
    (
        "unknown field beside all",
        policy(rule(when={"all": [leaf("agent.id", "exists")], "op": "eq"})),
        "rules[0].when.op",
        "unknown field 'op'; expected one of all",
    ),
    (
        "unknown field in a leaf",
        policy(rule(when={"any": [leaf("agent.id", "eq", "a", values=[1])]})),
        "rules[0].when.any[0].values",
        "unknown field 'values'",
    ),
    (
        "unknown field under not",
        policy(rule(when={"not": {**leaf("agent.id", "exists"), "x": 1}})),
        "rules[0].when.not.x",
        "unknown field 'x'",
    ),
    (
        "unknown condition field",
        policy(rule(when=leaf("tool.nme", "eq", "x"))),
        "rules[0].when.field",
        "unknown field 'tool.nme'; expected one of tool.name, agent.id, agent.roles",
    ),
    (
        "empty key in a path",
        policy(rule(when=leaf("tool.args..x", "exists"))),
        "rules[0].when.field",
        "tool.args needs a dot-separated key path",
    ),
    (
        "bare context",
        policy(rule(when=leaf("context", "exists"))),
        "rules[0].when.field",
        "context needs a dot-separated key path",
    ),
    (
        "bad regex",
        policy(rule(when=leaf("input.text", "regex", "(a"))),
        "rules[0].when.value",
        "invalid regular expression: missing )",
    ),
    (
        "regex feature RE2 lacks",
        policy(rule(when=leaf("input.text", "regex", "(?<=a)b"))),
        "rules[0].when.value",
        "invalid regular expression",
    ),
    (
        "bad glob",
        policy(rule(when=leaf("input.text", "glob", "[z-a]"))),
        "rules[0].when.value",
        "invalid glob",
    ),
    (
        "bad glob in a target",
        policy(rule(target={"agents": ["ok", "[z-a]*"]})),
        "rules[0].target.agents[1]",
        "invalid glob",
    ),
    (
        "gt needs a number",
        policy(rule(when=leaf("cost.estimate", "gt", "10"))),
        "rules[0].when.value",
        "expected a number, got a string",
    ),
    (
        "non-finite number",
        policy(rule(when=leaf("cost.estimate", "gt", float("inf")))),
        "rules[0].when.value",
        "expected a number, got a non-finite number",
    ),
    (
        "in needs a list",
        policy(rule(when=leaf("agent.id", "in", "a"))),
        "rules[0].when.value",
        "expected a list",
    ),
    (
        "in items are checked",
        policy(rule(when=leaf("tool.args.n", "in", [1, {"a": 1}]))),
        "rules[0].when.value[1]",
        "expected a string, number or boolean, got a mapping",
    ),
    (
        "exists needs a boolean",
        policy(rule(when=leaf("agent.id", "exists", "yes"))),
        "rules[0].when.value",
        "expected true or false",
    ),
    (
        "eq on a number field needs a number",
        policy(rule(when=leaf("trust.score", "eq", "high"))),
        "rules[0].when.value",
        "expected a number",
    ),
    (
        "eq on a string field needs a string",
        policy(rule(when=leaf("agent.id", "eq", 7))),
        "rules[0].when.value",
        "expected a string, got a number",
    ),
    (
        "weekday names",
        policy(rule(when=leaf("time.weekday", "eq", "monday"))),
        "rules[0].when.value",
        "expected a weekday, one of mon, tue",
    ),
    (
        "time of day as a YAML base-60 int",
        policy(rule(when=leaf("time.of_day", "gt", 870))),
        "rules[0].when.value",
        "quote it in YAML",
    ),
    (
        "time of day out of range",
        policy(rule(when=leaf("time.of_day", "lt", "24:00"))),
        "rules[0].when.value",
        'expected a time of day "HH:MM"',
    ),
    (
        "eq value may not be a list",
        policy(rule(when=leaf("tool.args.x", "eq", [1]))),
        "rules[0].when.value",
        "expected a string, number or boolean, got a list",
    ),
    (
        "null value",
        policy(rule(when={"field": "tool.args.x", "op": "eq", "value": None})),
        "rules[0].when.value",
        "got null",
    ),
    (
        "string operator on a number field",
        policy(rule(when=leaf("cost.estimate", "regex", "1"))),
        "rules[0].when.op",
        "operator 'regex' does not apply to cost.estimate (a number)",
    ),
    (
        "ordering operator on a string field",
        policy(rule(when=leaf("tool.name", "gt", 1))),
        "rules[0].when.op",
        "operator 'gt' does not apply to tool.name (a string)",
    ),
    (
        "case_insensitive on gt",
        policy(rule(when=leaf("cost.estimate", "gt", 1, case_insensitive=True))),
        "rules[0].when.case_insensitive",
        "does not apply to operator 'gt'",
    ),
    (
        "case_insensitive must be boolean",
        policy(rule(when=leaf("agent.id", "eq", "a", case_insensitive="y"))),
        "rules[0].when.case_insensitive",
        "expected true or false",
    ),
    ("missing id", policy({"action": "deny", "reason": "x"}), "rules[0].id", "required"),
    ("missing action", policy({"id": "r", "reason": "x"}), "rules[0].action", "required"),
    ("missing reason", policy({"id": "r", "action": "deny"}), "rules[0].reason", "required"),
    ("missing name", {"rules": [rule()]}, "name", "required"),
    ("missing rules", {"name": "p"}, "rules", "required"),
    (
        "missing op",
        policy(rule(when={"field": "agent.id", "value": "a"})),
        "rules[0].when.op",
        "required",
    ),
    (
        "missing value",
        policy(rule(when={"field": "agent.id", "op": "eq"})),
        "rules[0].when.value",
        "required",
    ),
    (
        "a leaf without its field",
        policy(rule(when={"op": "eq", "value": "a"})),
        "rules[0].when.field",
        "required",
    ),
    (
        "unknown action",
        policy(rule(action="block")),
        "rules[0].action",
        "unknown value 'block'; expected one of allow, warn, escalate, require_approval, deny",
    ),
    ("unknown mode", policy(mode="audit"), "mode", "expected one of enforce, shadow"),
    (
        "duplicate rule id",
        policy(rule("a"), rule("b"), rule("a")),
        "rules[2].id",
        "duplicate rule id 'a' (first used by rules[0])",
    ),
    ("rule id characters", policy(rule("has space")), "rules[0].id", "may contain only letters"),
    ("rule id length", policy(rule("r" * 65)), "rules[0].id", "at most 64 characters"),
    (
        "too deep",
        policy(rule(when=nested_nots(9))),
        "rules[0].when" + ".not" * 8,
        "at most 8 levels deep",
    ),
    (
        "too many rules",
        policy(*[rule(f"r{i}") for i in range(201)]),
        "rules",
        "at most 200 items (got 201)",
    ),
    ("no rules", policy(rules=[]), "rules", "must not be empty"),
    (
        "long regex",
        policy(rule(when=leaf("input.text", "regex", "a" * 1025))),
        "rules[0].when.value",
        "at most 1024 characters",
    ),
    (
        "long glob target",
        policy(rule(target={"tools": ["t", "x" * 1024 + "*"]})),
        "rules[0].target.tools[1]",
        "at most 1024 characters",
    ),
    (
        "long value list",
        policy(rule(when=leaf("agent.id", "in", ["a"] * 1001))),
        "rules[0].when.value",
        "at most 1000 items",
    ),
    (
        "long target list",
        policy(rule(target={"roles": ["a"] * 1001})),
        "rules[0].target.roles",
        "at most 1000 items",
    ),
    (
        "long string",
        policy(rule(when=leaf("input.text", "contains", "a" * 4097))),
        "rules[0].when.value",
        "at most 4096 characters",
    ),
    ("long name", policy(name="n" * 101), "name", "at most 100 characters"),
    ("blank name", policy(name="  "), "name", "must not be blank"),
    ("long description", policy(description="d" * 2001), "description", "at most 2000 characters"),
    ("long reason", policy(rule(reason="r" * 501)), "rules[0].reason", "at most 500 characters"),
    ("empty reason", policy(rule(reason="")), "rules[0].reason", "must not be empty"),
    ("priority range", policy(priority=1001), "priority", "between -1000 and 1000"),
    ("priority type", policy(priority="high"), "priority", "expected an integer, got a string"),
    ("priority float", policy(priority=1.5), "priority", "expected an integer, got a number"),
    ("priority bool", policy(priority=True), "priority", "expected an integer, got a boolean"),
    ("null optional field", policy(description=None), "description", "expected a string, got null"),
    ("null target", policy(rule(target=None)), "rules[0].target", "expected a mapping, got null"),
    (
        "empty target list",
        policy(rule(target={"tools": []})),
        "rules[0].target.tools",
        "must not be empty",
    ),
    ("empty all", policy(rule(when={"all": []})), "rules[0].when.all", "must not be empty"),
    (
        "two node kinds",
        policy(rule(when={"all": [], "any": []})),
        "rules[0].when",
        "expected exactly one of 'all', 'any', 'not', or a leaf with 'field'; found all, any",
    ),
    (
        "a condition that is not a mapping",
        policy(rule(when="agent.id == a")),
        "rules[0].when",
        "expected a mapping, got a string",
    ),
    ("a rule that is not a mapping", policy(rules=["deny all"]), "rules[0]", "expected a mapping"),
]


@pytest.mark.parametrize(
    ("document", "field", "message"),
    [pytest.param(doc, field, message, id=name) for name, doc, field, message in REFUSALS],
)
def test_refusals_name_the_first_bad_field(
    document: dict[str, Any], field: str, message: str
) -> None:
    error = refusal(document)
    assert (error.field, error.code) == (field, "invalid_argument")
    assert message in error.message


def test_eight_levels_are_allowed() -> None:
    parsed = parse_policy(policy(rule(when=nested_nots(8))))
    node = parsed.rules[0].when
    for _ in range(7):
        assert isinstance(node, Not)
        node = node.node
    assert isinstance(node, Leaf)


def test_only_the_first_error_is_reported() -> None:
    document = policy(rule("a", action="block"), rule("b", reason=""), name="")
    assert refusal(document).field == "name"


def test_messages_never_echo_huge_input() -> None:
    key = "k" * 10_000
    error = refusal({**policy(), key: 1})
    assert len(error.message) < 300
    assert error.field is not None and len(error.field) <= 64
    error = refusal(policy(rule(when=leaf("agent.id", "frobnicate" * 1000, "a"))))
    assert len(error.message) < 400


def test_a_full_document_parses_to_typed_values() -> None:
    parsed = parse_policy(
        """
name: production-safety
description: keeps production safe
priority: 10
mode: shadow
rules:
  - id: block-drop-table
    description: no drops
    target:
      tools: ["db.query", "shell.*"]
      agents: ["agent-7", "ci-*"]
      roles: ["prod-writer"]
      transports: ["mcp", "http"]
    when:
      all:
        - field: tool.args.query
          op: regex
          value: "(?i)drop\\\\s+table"
        - not: {field: trust.score, op: gte, value: 0.8}
    action: deny
    reason: "Dropping tables in production is not allowed"
"""
    )
    assert (parsed.name, parsed.priority, parsed.mode) == ("production-safety", 10, Mode.SHADOW)
    (only,) = parsed.rules
    assert only.action is Action.DENY
    assert only.target.tools == ("db.query", "shell.*")
    assert only.target.transports == ("mcp", "http")
    assert only.when == AllOf(
        (
            Leaf("tool.args.query", Operator.REGEX, "(?i)drop\\s+table"),
            Not(Leaf("trust.score", Operator.GTE, 0.8)),
        )
    )


def test_defaults_are_filled_and_the_canonical_form_round_trips() -> None:
    parsed = parse_policy(policy(rule(when=leaf("agent.id", "exists"))))
    canonical = parsed.to_dict()
    assert canonical["priority"] == 0
    assert canonical["mode"] == "enforce"
    assert canonical["rules"][0]["when"] == {"field": "agent.id", "op": "exists", "value": True}
    assert parse_policy(canonical) == parsed


def test_json_text_and_bytes_are_accepted() -> None:
    text = (
        '{"name": "p", "rules": [{"id": "r", "action": "warn", "reason": "x", "when": '
        '{"field": "cost.estimate", "op": "gt", "value": 1e-3}}]}'
    )
    from_text = parse_policy(text)
    assert from_text == parse_policy(text.encode())
    when = from_text.rules[0].when
    assert isinstance(when, Leaf) and when.value == 0.001  # YAML 1.1 would read "1e-3" as a string


HUGE = "1" + "0" * 5000
TEXT_REFUSALS = [
    # (raw text, field): what json.loads or YAML turns into something unstorable or unconvertible
    ('{"name":"s\\ud800","rules":[{"id":"r","action":"deny","reason":"x"}]}', "name"),
    ('{"name":"p","rules":[{"id":"r","action":"deny","reason":"x"}],"k\\udc00":1}', "k\\udc00"),
    (f'{{"name":"p","priority":{HUGE},"rules":[]}}', "priority"),
    (f"name: p\npriority: {HUGE}\nrules: []\n", "priority"),
    (
        '{"name":"p","rules":[{"id":"r","action":"deny","reason":"x",'
        f'"when":{{"field":"tool.args.n","op":"eq","value":{HUGE}}}}}]}}',
        "rules[0].when.value",
    ),
]


@pytest.mark.parametrize(("raw", "field"), TEXT_REFUSALS)
def test_text_that_cannot_be_stored_or_converted_names_its_field(raw: str, field: str) -> None:
    err = refusal(raw)
    assert err.field == field
    assert HUGE not in err.message
    err.message.encode("utf-8")  # the answer itself must be encodable
