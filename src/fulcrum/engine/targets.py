"""A rule's target minus its tools (which the tool index handles): agents, roles, transports.

Every present list must match (AND); within a list any entry may match (OR).
"""

from __future__ import annotations

from collections.abc import Callable

from fulcrum.engine.document import Target
from fulcrum.engine.model import DecisionRequest
from fulcrum.engine.patterns import compile_glob, is_glob

Scope = Callable[[DecisionRequest], bool]


def compile_scope(target: Target) -> Scope | None:
    """The filter a request must pass before the rule's condition runs; None when untargeted."""
    checks: list[Scope] = []
    if target.agents is not None:
        checks.append(_agent_matcher(target.agents))
    if target.roles is not None:
        roles = frozenset(target.roles)
        checks.append(lambda request: not roles.isdisjoint(request.agent_roles))
    if target.transports is not None:
        transports = frozenset(target.transports)
        checks.append(lambda request: request.transport in transports)
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    return lambda request: all(check(request) for check in checks)


def _agent_matcher(entries: tuple[str, ...]) -> Scope:
    exact = frozenset(entry for entry in entries if not is_glob(entry))
    globs = tuple(compile_glob(entry) for entry in entries if is_glob(entry))
    if not globs:
        return lambda request: request.agent_id in exact
    return lambda request: (
        request.agent_id in exact
        or any(glob.fullmatch(request.agent_id) is not None for glob in globs)
    )
