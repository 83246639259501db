"""`fulcrum policy test`: local policy tests with a readable diff and an honest exit code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

POLICY = {
    "name": "payments",
    "rules": [
        {
            "id": "big-payments",
            "target": {"tools": ["pay.*"]},
            "when": {"field": "cost.estimate", "op": "gt", "value": 100},
            "action": "require_approval",
            "reason": "large payments need a human",
        }
    ],
}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fulcrum.cli", "policy", "test", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write_suite(tmp_path: Path, expect_action: str) -> Path:
    (tmp_path / "payments.yaml").write_text(yaml.safe_dump(POLICY))
    suite = {
        "default_action": "allow",
        "policies": [{"file": "payments.yaml"}],
        "cases": [
            {
                "name": "a large payment",
                "request": {"tool": {"name": "pay.send"}, "cost": {"estimate": 500}},
                "expect": {"action": expect_action, "rule": "big-payments", "policy": "payments"},
            },
            {
                "name": "a small payment",
                "request": {"tool": {"name": "pay.send"}, "cost": {"estimate": 5}},
                "expect": {"action": "allow", "rule": None, "policy": None},
            },
        ],
    }
    path = tmp_path / "payments_test.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def test_passing_cases_exit_zero(tmp_path: Path) -> None:
    result = run(str(write_suite(tmp_path, "require_approval")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   payments_test :: a large payment" in result.stdout
    assert result.stdout.strip().endswith("2 passed, 0 failed")


def test_a_mismatch_prints_a_diff_and_exits_one(tmp_path: Path) -> None:
    result = run(str(write_suite(tmp_path, "deny")))
    assert result.returncode == 1
    assert "FAIL payments_test :: a large payment" in result.stdout
    assert "deny" in result.stdout and "require_approval" in result.stdout
    assert result.stdout.strip().endswith("1 passed, 1 failed")


def test_an_invalid_policy_names_the_field(tmp_path: Path) -> None:
    path = write_suite(tmp_path, "deny")
    broken = {**POLICY, "rules": [{**POLICY["rules"][0], "action": "maybe"}]}
    (tmp_path / "payments.yaml").write_text(yaml.safe_dump(broken))
    result = run(str(path))
    assert result.returncode == 2
    assert "error: rules[0].action:" in result.stderr


def test_the_golden_cases_pass() -> None:
    golden = Path(__file__).resolve().parents[2] / "golden"
    result = run(str(golden))
    assert result.returncode == 0, result.stdout[-2000:]
    assert " 0 failed" in result.stdout
