"""``fulcrum policy test FILE...``: run YAML decision cases against policy files, locally.

Each file is a suite (see :mod:`fulcrum.policytest.cases`): policies inline or by file, and
cases of request -> expected action, rule, policy, reason, shadow verdicts. Prints one line
per case, a diff for each mismatch, and a summary; the caller exits non-zero on a mismatch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fulcrum.engine.compiler import compile_bundle
from fulcrum.policytest.cases import GoldenSuite, load_cases, request_from_dict

Say = Callable[[str], None]


@dataclass(frozen=True)
class Outcome:
    passed: int
    failed: int


def run_suite(suite: GoldenSuite, say: Say) -> Outcome:
    bundle = compile_bundle(list(suite.policies), suite.default_action)
    passed = failed = 0
    for case in suite.cases:
        now = None if "time" in case.request else dt.datetime.now(dt.UTC)
        evaluation = bundle.evaluate(request_from_dict(case.request, now=now))
        problems = case.expect.mismatches(evaluation.verdict, evaluation.shadow)
        if evaluation.error:
            problems.insert(0, f"evaluation failed: {evaluation.error}")
        if problems:
            failed += 1
            say(f"FAIL {suite.name} :: {case.name}")
            for problem in problems:
                say(f"     {problem}")
        else:
            passed += 1
            say(f"ok   {suite.name} :: {case.name}")
    return Outcome(passed, failed)


def run(paths: Sequence[Path], say: Say) -> Outcome:
    passed = failed = 0
    for path in paths:
        for suite in load_cases(path):
            outcome = run_suite(suite, say)
            passed, failed = passed + outcome.passed, failed + outcome.failed
    say(f"{passed} passed, {failed} failed")
    return Outcome(passed, failed)
