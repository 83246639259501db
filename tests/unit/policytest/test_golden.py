"""Every golden case through the engine, with and without explanations."""

from __future__ import annotations

from pathlib import Path

import pytest

from fulcrum.engine.bundle import Bundle
from fulcrum.engine.compiler import compile_bundle
from fulcrum.policytest.cases import GoldenCase, GoldenSuite, load_cases, request_from_dict

GOLDEN = Path(__file__).parents[2] / "golden"
SUITES = load_cases(GOLDEN)
_BUNDLES: dict[str, Bundle] = {}


def bundle_for(suite: GoldenSuite) -> Bundle:
    if suite.name not in _BUNDLES:
        _BUNDLES[suite.name] = compile_bundle(suite.policies, suite.default_action)
    return _BUNDLES[suite.name]


CASES = [
    pytest.param(suite, case, id=f"{suite.name}: {case.name}")
    for suite in SUITES
    for case in suite.cases
]


def test_there_are_enough_golden_cases() -> None:
    assert len(SUITES) >= 4
    assert len(CASES) >= 40


@pytest.mark.parametrize(("suite", "case"), CASES)
def test_golden_case(suite: GoldenSuite, case: GoldenCase) -> None:
    bundle = bundle_for(suite)
    request = request_from_dict(case.request)
    evaluation = bundle.evaluate(request)
    assert evaluation.error == ""
    assert case.expect.mismatches(evaluation.verdict, evaluation.shadow) == []
    assert evaluation.matched is (case.expect.rule is not None)
    explained = bundle.evaluate(request, explain=True)
    assert (explained.verdict, explained.shadow) == (evaluation.verdict, evaluation.shadow)
    assert explained.explanation is not None
    if case.expect.rule is not None:
        winning = [t for t in explained.explanation if t.rule_id == case.expect.rule and t.matched]
        assert winning, "the winning rule must appear, matched, in the explanation"
