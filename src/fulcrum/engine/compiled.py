"""One rule, compiled: its ready-made verdict, its rank, and closures that test a request."""

from __future__ import annotations

from dataclasses import dataclass

from fulcrum.engine.conditions import CompiledCondition, Test, compile_condition
from fulcrum.engine.document import Rule
from fulcrum.engine.model import ConditionTrace, DecisionRequest, Evaluation, RuleTrace, Verdict
from fulcrum.engine.targets import Scope, compile_scope


@dataclass(frozen=True, slots=True, eq=False)  # identity equality: rules are deduplicated by id
class CompiledRule:
    verdict: Verdict
    # When this rule wins and there are no shadow verdicts or explanation to add, the answer
    # depends on nothing else, so it is built once here rather than per decision.
    evaluation: Evaluation
    policy_rank: int  # the policy's place in (priority desc, policy_id) order
    rule_index: int  # the rule's place in its policy's document
    scope: Scope | None
    condition: CompiledCondition | None
    matches: Test  # scope and condition together: the hot path's one call per candidate

    @property
    def severity_first(self) -> tuple[int, int, int]:
        """Enforcement order: most severe first, then priority, policy id, rule order."""
        return (-self.verdict.action.severity, self.policy_rank, self.rule_index)

    @property
    def policy_first(self) -> tuple[int, int, int]:
        """Shadow order: grouped by policy, most severe first within each."""
        return (self.policy_rank, -self.verdict.action.severity, self.rule_index)

    @property
    def document_order(self) -> tuple[int, int]:
        return (self.policy_rank, self.rule_index)

    def trace(self, request: DecisionRequest) -> RuleTrace | None:
        """How the rule fared, or None when its target excludes the request (not evaluated)."""
        if self.scope is not None and not self.scope(request):
            return None
        conditions: list[ConditionTrace] = []
        matched = self.condition is None or self.condition.trace(request, conditions)
        verdict = self.verdict
        return RuleTrace(
            verdict.policy_id, verdict.policy_version, verdict.rule_id, matched, tuple(conditions)
        )


def compile_rule(
    rule: Rule,
    *,
    policy_id: str,
    policy_version: int,
    policy_rank: int,
    rule_index: int,
    bundle_hash: str,
) -> CompiledRule:
    scope = compile_scope(rule.target)
    condition = compile_condition(rule.when) if rule.when is not None else None
    verdict = Verdict(rule.action, rule.reason, policy_id, policy_version, rule.id)
    return CompiledRule(
        verdict=verdict,
        evaluation=Evaluation(verdict, bundle_hash, matched=True),
        policy_rank=policy_rank,
        rule_index=rule_index,
        scope=scope,
        condition=condition,
        matches=_matcher(scope, condition),
    )


def _always(request: DecisionRequest) -> bool:
    return True


def _matcher(scope: Scope | None, condition: CompiledCondition | None) -> Test:
    if condition is None:
        return scope or _always
    if scope is None:
        return condition.test
    test = condition.test
    return lambda request: scope(request) and test(request)
