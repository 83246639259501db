"""Decision throughput and latency: the compiled engine against a naive interpreter.

    .venv/bin/python benchmarks/engine_bench.py

For synthetic tenant bundles of 10, 100 and 1,000 rules it prints decisions per second and
p50 / p99 latency per decision for both, measured in the same run, and the compiled/naive
ratio. Before measuring, both must agree with every golden case and with each other on every
synthetic request. A benchmark, not a test: it asserts correctness, and only reports speed.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from naive import naive_evaluate  # a sibling module: this file runs as a script

from fulcrum.engine.compiler import compile_bundle
from fulcrum.engine.model import Action, DecisionRequest, PolicySource, Verdict
from fulcrum.policytest.cases import load_cases, request_from_dict

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "golden"
SIZES = (10, 100, 1000)
# Fixed decision counts per (engine, size), chosen for roughly 1-3 s per configuration.
DECISIONS = {
    ("compiled", 10): 400_000,
    ("compiled", 100): 400_000,
    ("compiled", 1000): 300_000,
    ("naive", 10): 50_000,
    ("naive", 100): 20_000,
    ("naive", 1000): 2_000,
}
WARMUP = 500
RULES_PER_POLICY = 50
NOW = dt.datetime(2026, 1, 5, 14, 30, tzinfo=dt.UTC)

Decide = Callable[[DecisionRequest], Verdict]


@dataclass(frozen=True)
class Stats:
    rate: float  # decisions per second
    p50_us: float
    p99_us: float


@dataclass(frozen=True)
class Workload:
    policies: list[PolicySource]
    requests: list[DecisionRequest]


# --- synthetic tenants ---------------------------------------------------------------------

_ACTIONS = ["allow", "warn", "escalate", "require_approval", "deny"]
_ROLES = ["reader", "writer", "prod-writer", "dba", "admin", "analyst"]
_QUERIES = ["select * from orders", "DROP TABLE users", "truncate audit", "update x set y = 1"]


def _condition(rng: random.Random) -> dict[str, Any]:
    eq = {"field": "context.env", "op": "eq", "value": rng.choice(["prod", "staging"])}
    roles = {"field": "agent.roles", "op": "in", "value": rng.sample(_ROLES, 2)}
    regex = {"field": "tool.args.query", "op": "regex", "value": r"(?i)drop\s+table|truncate"}
    cost = {"field": "cost.estimate", "op": "gt", "value": rng.choice([5, 50, 500])}
    return rng.choice(
        [eq, roles, regex, cost, {"all": [eq, cost]}, {"any": [regex, roles]}, {"not": eq}]
    )


def synthetic_workload(rule_count: int, seed: int = 1) -> Workload:
    """Mostly one rule per distinct tool, plus a few glob-targeted and untargeted rules."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not a secret
    services = max(2, rule_count // 20)
    # A few rules apply to many tools (globs) or to every tool (untargeted); those are
    # candidates for most decisions by design, so they are kept to a realistic handful.
    glob_rules = untargeted = min(5, max(1, rule_count // 20))
    exact = rule_count - glob_rules - untargeted
    tools = [f"svc{i % services}.op{i}" for i in range(exact)]
    rules: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        rules.append(_rule(f"exact-{i}", rng, {"tools": [tool]}))
    for i in range(glob_rules):
        rules.append(_rule(f"glob-{i}", rng, {"tools": [f"svc{rng.randrange(services)}.*"]}))
    for i in range(untargeted):
        rules.append(_rule(f"any-{i}", rng, None))
    rng.shuffle(rules)
    policies = []
    for start in range(0, rule_count, RULES_PER_POLICY):
        number = start // RULES_PER_POLICY
        document: dict[str, Any] = {
            "name": f"policy {number}",
            "priority": rng.randint(-10, 10),
            "mode": "shadow" if number % 10 == 9 else "enforce",
            "rules": rules[start : start + RULES_PER_POLICY],
        }
        policies.append(PolicySource(f"policy-{number:03d}", 1, document))
    unknown_tools = [f"svc{i}.unlisted" for i in range(services)] + ["other.tool"]
    requests = [_request(rng, tools, unknown_tools) for _ in range(2000)]
    return Workload(policies, requests)


def _rule(rule_id: str, rng: random.Random, target: dict[str, Any] | None) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": rule_id,
        "when": _condition(rng),
        "action": rng.choice(_ACTIONS),
        "reason": f"synthetic rule {rule_id}",
    }
    if target is not None:
        rule["target"] = target
    return rule


def _request(rng: random.Random, tools: list[str], unknown: list[str]) -> DecisionRequest:
    tool = rng.choice(unknown) if rng.random() < 0.1 else rng.choice(tools)
    return DecisionRequest(
        tool_name=tool,
        tool_args={"query": rng.choice(_QUERIES), "limit": rng.randint(1, 1000)},
        agent_id=f"agent-{rng.randrange(50)}",
        agent_roles=tuple(rng.sample(_ROLES, rng.randint(0, 2))),
        transport=rng.choice(["mcp", "http", "grpc"]),
        cost_estimate=rng.choice([None, 1.0, 20.0, 200.0, 2000.0]),
        context={"env": rng.choice(["prod", "staging", "dev"])},
        now=NOW,
    )


# --- correctness gate ------------------------------------------------------------------------


def _outcome(verdict: Verdict, shadow: Sequence[Verdict]) -> tuple[Any, ...]:
    return (verdict, tuple(shadow))


def check_golden_cases() -> int:
    checked = 0
    for suite in load_cases(GOLDEN):
        bundle = compile_bundle(suite.policies, suite.default_action)
        for case in suite.cases:
            request = request_from_dict(case.request)
            compiled = bundle.evaluate(request)
            naive = naive_evaluate(suite.policies, suite.default_action, request)
            problems = case.expect.mismatches(compiled.verdict, compiled.shadow)
            if _outcome(compiled.verdict, compiled.shadow) != _outcome(*naive):
                problems.append(f"compiled and naive disagree: {compiled.verdict} vs {naive[0]}")
            if problems:
                sys.exit(f"golden case {suite.name}: {case.name}: {'; '.join(problems)}")
            checked += 1
    return checked


def check_agreement(workload: Workload, default: Action) -> None:
    bundle = compile_bundle(workload.policies, default)
    for request in workload.requests:
        compiled = bundle.evaluate(request)
        naive = naive_evaluate(workload.policies, default, request)
        if compiled.error or _outcome(compiled.verdict, compiled.shadow) != _outcome(*naive):
            sys.exit(f"compiled and naive disagree on {request}: {compiled} vs {naive}")


# --- measurement -----------------------------------------------------------------------------


def measure(decide: Decide, requests: Sequence[DecisionRequest], decisions: int) -> Stats:
    for request in requests[:WARMUP]:
        decide(request)
    latencies = [0] * decisions
    clock = time.perf_counter_ns
    count = len(requests)
    started = clock()
    for i in range(decisions):
        request = requests[i % count]
        before = clock()
        decide(request)
        latencies[i] = clock() - before
    elapsed = clock() - started
    latencies.sort()
    return Stats(
        rate=decisions / (elapsed / 1e9),
        p50_us=latencies[decisions // 2] / 1000,
        p99_us=latencies[min(decisions - 1, int(decisions * 0.99))] / 1000,
    )


def main() -> None:
    began = time.perf_counter()
    print(f"golden cases: {check_golden_cases()} agree (compiled, naive, expectations)")
    results: dict[tuple[str, int], Stats] = {}
    for size in SIZES:
        results["compiled", size], results["naive", size] = measure_size(size, Action.ALLOW)
    print(f"synthetic requests: {len(SIZES) * 2000} agree (compiled, naive)\n")
    _print_table(results)
    print(f"\ntotal run time {time.perf_counter() - began:.1f} s")


def measure_size(size: int, default: Action) -> tuple[Stats, Stats]:
    """(compiled, naive) for one synthetic bundle, after checking they agree on it."""
    workload = synthetic_workload(size)
    check_agreement(workload, default)
    bundle = compile_bundle(workload.policies, default)

    def compiled(request: DecisionRequest) -> Verdict:
        return bundle.evaluate(request).verdict

    def naive(request: DecisionRequest) -> Verdict:
        return naive_evaluate(workload.policies, default, request)[0]

    return (
        measure(compiled, workload.requests, DECISIONS["compiled", size]),
        measure(naive, workload.requests, DECISIONS["naive", size]),
    )


def _print_table(results: dict[tuple[str, int], Stats]) -> None:
    header = f"{'rules':>6} {'engine':>9} {'decisions/s':>13} {'p50 µs':>9} {'p99 µs':>9} {'n':>8}"
    print(header)
    print("-" * len(header))
    for size in SIZES:
        for engine in ("compiled", "naive"):
            stats = results[engine, size]
            print(
                f"{size:>6} {engine:>9} {stats.rate:>13,.0f} {stats.p50_us:>9.2f} "
                f"{stats.p99_us:>9.2f} {DECISIONS[engine, size]:>8,}"
            )
    print()
    for size in SIZES:
        ratio = results["compiled", size].rate / results["naive", size].rate
        print(f"{size:>6} rules: compiled/naive throughput ratio {ratio:,.1f}x")
    small, large = results["compiled", SIZES[0]], results["compiled", SIZES[-1]]
    print(
        f"compiled p50 from {SIZES[0]} to {SIZES[-1]} rules ({SIZES[-1] // SIZES[0]}x the rules): "
        f"{large.p50_us / small.p50_us:.2f}x the cost per decision"
    )


if __name__ == "__main__":
    main()
