"""The engine's nouns: actions, requests, policy sources and evaluations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Action(StrEnum):
    ALLOW = "allow"
    WARN = "warn"
    ESCALATE = "escalate"
    REQUIRE_APPROVAL = "require_approval"
    DENY = "deny"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


# The most severe matching action wins: deny > require_approval > escalate > warn > allow.
_SEVERITY = {
    Action.ALLOW: 0,
    Action.WARN: 1,
    Action.ESCALATE: 2,
    Action.REQUIRE_APPROVAL: 3,
    Action.DENY: 4,
}


class Mode(StrEnum):
    ENFORCE = "enforce"
    SHADOW = "shadow"


EVALUATION_ERROR = "evaluation_error"
NO_MATCH_REASON = "no policy matched; the tenant's default action applies"


@dataclass(frozen=True)
class DecisionRequest:
    """What an agent asks to do. ``now`` drives the time-of-day fields."""

    tool_name: str
    agent_id: str = ""
    agent_roles: tuple[str, ...] = ()
    tool_args: Mapping[str, Any] = field(default_factory=dict)
    transport: str = ""
    input_text: str = ""
    model_id: str = ""
    cost_estimate: float | None = None
    trust_score: float | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


@dataclass(frozen=True)
class PolicySource:
    """One active policy version as the compiler receives it."""

    policy_id: str
    version: int
    document: Mapping[str, Any]  # a validated policy document (see engine.schema)


@dataclass(frozen=True)
class ConditionTrace:
    path: str  # e.g. "when.all[1]"
    field: str
    op: str
    held: bool


@dataclass(frozen=True)
class RuleTrace:
    policy_id: str
    policy_version: int
    rule_id: str
    matched: bool
    conditions: tuple[ConditionTrace, ...]


@dataclass(frozen=True)
class Verdict:
    """The outcome of one policy (shadow verdicts) or of the whole bundle."""

    action: Action
    reason: str
    policy_id: str = ""
    policy_version: int = 0
    rule_id: str = ""


@dataclass(frozen=True)
class Evaluation:
    verdict: Verdict
    bundle_hash: str
    shadow: tuple[Verdict, ...] = ()
    explanation: tuple[RuleTrace, ...] | None = None
    matched: bool = False  # False when the tenant default applied
    error: str = ""  # the exception's type name when evaluation failed closed (never its text)
