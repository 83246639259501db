"""Compilation: re-validation, limits, the tool index (observed through explanations) and
the bundle hash."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

from fulcrum.engine.compiler import compile_bundle
from fulcrum.engine.model import Action, DecisionRequest, PolicySource
from fulcrum.kit.errors import InvalidArgument
from tests.unit.engine.policies import leaf, policy, rule

NOW = dt.datetime(2026, 1, 5, 14, 30, tzinfo=dt.UTC)


def source(policy_id: str, document: dict[str, Any], version: int = 1) -> PolicySource:
    return PolicySource(policy_id, version, document)


def evaluated_rules(bundle_sources: list[PolicySource], tool: str, **request: Any) -> list[str]:
    bundle = compile_bundle(bundle_sources, Action.ALLOW)
    evaluation = bundle.evaluate(DecisionRequest(tool_name=tool, now=NOW, **request), explain=True)
    assert evaluation.explanation is not None
    return [trace.rule_id for trace in evaluation.explanation]


INDEXED = [
    source(
        "p",
        policy(
            rule("exact-x", target={"tools": ["x"]}),
            rule("exact-y", target={"tools": ["y"]}),
            rule("glob-x", target={"tools": ["x*"]}),
            rule("both", target={"tools": ["x", "x*", "x?"]}),
            rule("untargeted", action="warn"),
            rule("agent-7-on-x", target={"tools": ["x"], "agents": ["agent-7"]}),
        ),
    )
]


def test_rules_targeting_other_tools_are_not_evaluated() -> None:
    assert evaluated_rules(INDEXED, "x") == ["exact-x", "glob-x", "both", "untargeted"]
    assert evaluated_rules(INDEXED, "y") == ["exact-y", "untargeted"]


def test_glob_rules_apply_to_tools_no_rule_names_exactly() -> None:
    assert evaluated_rules(INDEXED, "xz") == ["glob-x", "both", "untargeted"]
    assert evaluated_rules(INDEXED, "nothing") == ["untargeted"]


def test_a_rule_out_of_its_agent_target_is_not_evaluated() -> None:
    assert "agent-7-on-x" in evaluated_rules(INDEXED, "x", agent_id="agent-7")
    assert "agent-7-on-x" not in evaluated_rules(INDEXED, "x", agent_id="agent-8")


def test_explanations_trace_every_leaf_with_its_path() -> None:
    when = {
        "all": [
            leaf("tool.args.q", "regex", "drop"),
            {"any": [leaf("context.env", "eq", "prod"), {"not": leaf("trust.score", "gte", 0.8)}]},
        ]
    }
    bundle = compile_bundle([source("p", policy(rule("r", when=when)))], Action.ALLOW)
    request = DecisionRequest(tool_name="t", tool_args={"q": "x"}, context={"env": "prod"}, now=NOW)
    evaluation = bundle.evaluate(request, explain=True)
    assert evaluation.explanation is not None
    (trace,) = evaluation.explanation
    assert not trace.matched
    # Every leaf is traced, even after the first one already decided the "all".
    assert [(c.path, c.field, c.op, c.held) for c in trace.conditions] == [
        ("when.all[0]", "tool.args.q", "regex", False),
        ("when.all[1].any[0]", "context.env", "eq", True),
        ("when.all[1].any[1].not", "trust.score", "gte", False),
    ]
    assert evaluation.verdict.action is Action.ALLOW and not evaluation.matched


def test_compile_revalidates_and_names_the_policy() -> None:
    bad = {"name": "p", "rules": [{"id": "r", "reason": "x"}]}
    with pytest.raises(InvalidArgument) as caught:
        compile_bundle([source("ok", policy()), source("p-1", bad)], Action.ALLOW)
    assert caught.value.field == "policies[p-1].rules[0].action"


def test_duplicate_policy_ids_are_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        compile_bundle([source("p", policy()), source("p", policy())], Action.ALLOW)
    assert caught.value.field == "bundle"


def test_a_bundle_holds_at_most_5000_rules() -> None:
    full = policy(*[rule(f"r{i}") for i in range(200)])
    compile_bundle([source(f"p{i}", full) for i in range(25)], Action.ALLOW)
    with pytest.raises(InvalidArgument) as caught:
        compile_bundle(
            [source(f"p{i}", full) for i in range(25)] + [source("one-more", policy())],
            Action.ALLOW,
        )
    assert caught.value.field == "bundle"
    assert "at most 5000 rules" in caught.value.message


HASHED = [
    source("b", policy(rule("r", target={"tools": ["x"]}), priority=3)),
    source("a", policy(rule("s", when=leaf("agent.id", "eq", "z")))),
    source("c", policy(rule("t", action="warn"), mode="shadow")),
]


def test_the_hash_ignores_input_order_and_formatting() -> None:
    expected = compile_bundle(HASHED, Action.DENY).hash
    shuffled = HASHED[:]
    random.Random(7).shuffle(shuffled)
    assert compile_bundle(shuffled, Action.DENY).hash == expected
    # The same policy as YAML text with defaults spelled out: same canonical document.
    yaml_b = (
        "rules:\n- {id: r, target: {tools: [x]}, action: deny, reason: because}\n"
        "name: test\npriority: 3\nmode: enforce\ndescription: ''\n"
    )
    respelled = [PolicySource("b", 1, _as_mapping(yaml_b)), *HASHED[1:]]
    assert compile_bundle(respelled, Action.DENY).hash == expected
    assert len(expected) == 64 and int(expected, 16) >= 0


@pytest.mark.parametrize(
    "changed",
    [
        [source("b", HASHED[0].document, version=2), *HASHED[1:]],
        [source("b2", HASHED[0].document), *HASHED[1:]],
        [source("b", policy(rule("r", target={"tools": ["y"]}), priority=3)), *HASHED[1:]],
        HASHED[:2],
    ],
    ids=["version", "policy id", "document", "policy set"],
)
def test_the_hash_changes_with_content(changed: list[PolicySource]) -> None:
    assert compile_bundle(changed, Action.DENY).hash != compile_bundle(HASHED, Action.DENY).hash


def test_the_hash_covers_the_default_action() -> None:
    assert compile_bundle(HASHED, Action.DENY).hash != compile_bundle(HASHED, Action.ALLOW).hash


def test_rule_count() -> None:
    assert compile_bundle(HASHED, Action.ALLOW).rule_count == 3


def _as_mapping(text: str) -> dict[str, Any]:
    from fulcrum.engine.decoding import decode_document

    decoded = decode_document(text)
    assert isinstance(decoded, dict)
    return decoded
