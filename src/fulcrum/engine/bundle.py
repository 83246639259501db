"""A tenant's compiled policies and the decision they reach for a request.

Enforced: of all matching rules of enforce-mode policies, the most severe action wins; ties
go to the higher policy priority, then the lower policy id, then the earlier rule. Candidates
are pre-sorted in exactly that order, so the first match is the winner and evaluation stops.
Shadow: each shadow-mode policy with a match contributes its own most severe verdict; shadow
verdicts never touch the enforced one. Any exception fails closed to deny.
"""

from __future__ import annotations

from fulcrum.engine.compiled import CompiledRule
from fulcrum.engine.index import ToolIndex
from fulcrum.engine.model import (
    EVALUATION_ERROR,
    NO_MATCH_REASON,
    Action,
    DecisionRequest,
    Evaluation,
    RuleTrace,
    Verdict,
)

_FAILED_CLOSED = Verdict(Action.DENY, EVALUATION_ERROR)
_DEFAULT_VERDICTS = {action: Verdict(action, NO_MATCH_REASON) for action in Action}


class Bundle:
    """Immutable once built (by ``compiler.compile_bundle``); safe to share across threads."""

    __slots__ = ("_enforced", "_no_match", "_shadowed", "default_action", "hash", "rule_count")

    def __init__(
        self,
        *,
        hash: str,
        default_action: Action,
        rule_count: int,
        enforced: ToolIndex,
        shadowed: ToolIndex | None,
    ) -> None:
        self.hash = hash  # content hash of the policies and default action
        self.default_action = default_action
        self.rule_count = rule_count
        self._enforced = enforced  # ordered CompiledRule.severity_first
        self._shadowed = shadowed  # ordered CompiledRule.policy_first; None: no shadow policy
        self._no_match = Evaluation(_DEFAULT_VERDICTS[default_action], hash)

    def evaluate(self, request: DecisionRequest, *, explain: bool = False) -> Evaluation:
        """Never raises: an exception inside evaluation yields deny / ``evaluation_error``."""
        try:
            return self._explain(request) if explain else self._decide(request)
        except Exception as exc:
            return Evaluation(
                _FAILED_CLOSED,
                self.hash,
                explanation=() if explain else None,
                error=type(exc).__name__,
            )

    def _decide(self, request: DecisionRequest) -> Evaluation:
        winner = None
        for rule in self._enforced.candidates(request.tool_name):
            if rule.matches(request):
                winner = rule
                break
        shadow = _shadow_verdicts(self._shadowed, request) if self._shadowed is not None else ()
        if not shadow:
            return self._no_match if winner is None else winner.evaluation
        return self._evaluation(winner, shadow, None)

    def _explain(self, request: DecisionRequest) -> Evaluation:
        """Evaluate every candidate rule (no early exit) and trace each one in scope."""
        traced: list[tuple[CompiledRule, RuleTrace]] = []
        winner = None
        for rule in self._enforced.candidates(request.tool_name):
            trace = rule.trace(request)
            if trace is not None:
                traced.append((rule, trace))
                if trace.matched and winner is None:
                    winner = rule
        shadow: list[Verdict] = []
        decided: set[int] = set()
        for rule in self._shadowed.candidates(request.tool_name) if self._shadowed else ():
            trace = rule.trace(request)
            if trace is not None:
                traced.append((rule, trace))
                if trace.matched and rule.policy_rank not in decided:
                    shadow.append(rule.verdict)
                    decided.add(rule.policy_rank)
        traced.sort(key=lambda pair: pair[0].document_order)
        return self._evaluation(winner, tuple(shadow), tuple(trace for _, trace in traced))

    def _evaluation(
        self,
        winner: CompiledRule | None,
        shadow: tuple[Verdict, ...],
        explanation: tuple[RuleTrace, ...] | None,
    ) -> Evaluation:
        if winner is None:
            return Evaluation(self._no_match.verdict, self.hash, shadow, explanation)
        return Evaluation(winner.verdict, self.hash, shadow, explanation, matched=True)


def _shadow_verdicts(shadowed: ToolIndex, request: DecisionRequest) -> tuple[Verdict, ...]:
    verdicts: list[Verdict] = []
    decided_policy = -1
    for rule in shadowed.candidates(request.tool_name):
        # Candidates are grouped by policy, most severe first: a policy's first match is its
        # verdict and the rest of its rules can be skipped.
        if rule.policy_rank != decided_policy and rule.matches(request):
            verdicts.append(rule.verdict)
            decided_policy = rule.policy_rank
    return tuple(verdicts)
