"""The policy engine: validate, compile and evaluate policies. Pure: no I/O, no clock reads
except the request's own ``now``.

    parse_policy(raw) -> PolicyDocument          validate on write (InvalidArgument names the path)
    compile_bundle(sources, default) -> Bundle   once per change of a tenant's active policies
    Bundle.evaluate(request, explain=) -> Evaluation   the hot path; never raises, fails closed

Golden decision cases, which read files, live apart in ``fulcrum.policytest``.
"""

from fulcrum.engine.compiler import Bundle, compile_bundle
from fulcrum.engine.document import PolicyDocument
from fulcrum.engine.model import (
    EVALUATION_ERROR,
    NO_MATCH_REASON,
    Action,
    ConditionTrace,
    DecisionRequest,
    Evaluation,
    Mode,
    PolicySource,
    RuleTrace,
    Verdict,
)
from fulcrum.engine.schema import parse_policy

__all__ = [
    "EVALUATION_ERROR",
    "NO_MATCH_REASON",
    "Action",
    "Bundle",
    "ConditionTrace",
    "DecisionRequest",
    "Evaluation",
    "Mode",
    "PolicyDocument",
    "PolicySource",
    "RuleTrace",
    "Verdict",
    "compile_bundle",
    "parse_policy",
]
