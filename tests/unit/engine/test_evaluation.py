"""Evaluation: fails closed on any exception, builds no traces unless asked, keeps shadow
verdicts out of enforcement."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from fulcrum.engine import conditions
from fulcrum.engine.compiler import compile_bundle
from fulcrum.engine.model import EVALUATION_ERROR, Action, DecisionRequest, PolicySource
from tests.unit.engine.policies import leaf, policy, rule

NOW = dt.datetime(2026, 1, 5, 14, 30, tzinfo=dt.UTC)


class ExplodingArgs(Mapping[str, Any]):
    """Tool arguments whose every read raises, as a hostile or broken mapping might."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("boom")

    def get(self, key: str, default: Any = None) -> Any:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


ALLOWING = [
    PolicySource(
        "p",
        1,
        policy(
            rule("allow-if-x", action="allow", when=leaf("tool.args.x", "eq", "y")),
            rule("warn-others", action="warn", target={"tools": ["other"]}),
        ),
    )
]


@pytest.mark.parametrize("explain", [False, True])
def test_an_exception_in_evaluation_fails_closed_to_deny(explain: bool) -> None:
    bundle = compile_bundle(ALLOWING, Action.ALLOW)
    request = DecisionRequest(tool_name="t", tool_args=ExplodingArgs(), now=NOW)
    evaluation = bundle.evaluate(request, explain=explain)
    assert evaluation.verdict.action is Action.DENY
    assert evaluation.verdict.reason == EVALUATION_ERROR
    assert evaluation.error == "RuntimeError"
    assert evaluation.bundle_hash == bundle.hash
    assert not evaluation.matched


def test_a_broken_clock_fails_closed() -> None:
    bundle = compile_bundle(
        [
            PolicySource(
                "p", 1, policy(rule("night", action="allow", when=leaf("time.hour", "lt", 6)))
            )
        ],
        Action.ALLOW,
    )
    evaluation = bundle.evaluate(DecisionRequest(tool_name="t", now="midnight"))  # type: ignore[arg-type]
    assert (evaluation.verdict.action, evaluation.verdict.reason) == (Action.DENY, EVALUATION_ERROR)


def test_the_hot_path_builds_no_traces(monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = compile_bundle(ALLOWING, Action.DENY)
    request = DecisionRequest(tool_name="t", tool_args={"x": "y"}, now=NOW)

    def no_traces(*args: object) -> None:
        raise AssertionError("a trace was built")

    monkeypatch.setattr(conditions, "ConditionTrace", no_traces)
    plain = bundle.evaluate(request)
    assert (plain.verdict.rule_id, plain.explanation, plain.error) == ("allow-if-x", None, "")
    # The same request with explain=True does build traces, proving the patch is in effect.
    assert bundle.evaluate(request, explain=True).error == "AssertionError"


def test_only_rules_whose_target_matched_are_explained() -> None:
    bundle = compile_bundle(ALLOWING, Action.DENY)
    evaluation = bundle.evaluate(DecisionRequest(tool_name="t", now=NOW), explain=True)
    assert evaluation.explanation is not None
    assert [trace.rule_id for trace in evaluation.explanation] == ["allow-if-x"]
    assert evaluation.verdict.action is Action.DENY and not evaluation.matched


def test_shadow_policies_never_change_the_enforced_verdict() -> None:
    enforced = PolicySource("e", 1, policy(rule("warn", action="warn")))
    shadow = PolicySource("s", 1, policy(rule("deny", action="deny"), mode="shadow", priority=1000))
    with_shadow = compile_bundle([enforced, shadow], Action.ALLOW)
    without = compile_bundle([enforced], Action.ALLOW)
    request = DecisionRequest(tool_name="t", now=NOW)
    assert with_shadow.evaluate(request).verdict == without.evaluate(request).verdict
    assert [v.rule_id for v in with_shadow.evaluate(request).shadow] == ["deny"]
    only_shadow = compile_bundle([shadow], Action.ALLOW).evaluate(request)
    assert (only_shadow.verdict.action, only_shadow.matched) == (Action.ALLOW, False)


def test_verdicts_carry_the_policy_version() -> None:
    bundle = compile_bundle([PolicySource("p", 7, policy(rule("r")))], Action.ALLOW)
    verdict = bundle.evaluate(DecisionRequest(tool_name="t", now=NOW)).verdict
    assert (verdict.policy_id, verdict.policy_version, verdict.rule_id) == ("p", 7, "r")


def test_a_pathological_regex_over_a_huge_input_evaluates_quickly() -> None:
    bundle = compile_bundle(
        [PolicySource("p", 1, policy(rule("redos", when=leaf("input.text", "regex", "(a+)+$"))))],
        Action.ALLOW,
    )
    import time

    started = time.perf_counter()
    evaluation = bundle.evaluate(
        DecisionRequest(tool_name="t", input_text="a" * 100_000 + "b", now=NOW)
    )
    assert time.perf_counter() - started < 1.0
    assert evaluation.verdict.action is Action.ALLOW and evaluation.error == ""
