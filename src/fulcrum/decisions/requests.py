"""Builds the engine's DecisionRequest from either transport, with limits that name the field.

Trust comes from Fulcrum's own state, never from the caller, so a request cannot carry it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fulcrum.engine.model import DecisionRequest
from fulcrum.kit.errors import InvalidArgument
from fulcrum.kit.validation import storable_text

MAX_NAME = 256
MAX_ROLES = 50
MAX_TEXT = 64 * 1024
MAX_STRUCT_BYTES = 64 * 1024
MAX_DEPTH = 16


# Costs are recorded in the audit ledger, whose JSON numbers hash stably only below this.
MAX_COST = 2.0**53


def _bounded(value: str, field: str, limit: int = MAX_NAME) -> str:
    if len(value) > limit:
        raise InvalidArgument(f"must be at most {limit} characters", field=field)
    return value


def _recorded(value: str, field: str, limit: int = MAX_NAME) -> str:
    """A field copied into the audit ledger: bounded, and free of NUL characters and lone
    surrogates, which the ledger cannot store (a decision it could not record must not be
    answered)."""
    return _bounded(storable_text(value, field), field, limit)


def _depth(value: Any, level: int = 0) -> int:
    if isinstance(value, Mapping):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


def _struct(value: Mapping[str, Any] | None, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument("must be an object", field=field)
    if len(json.dumps(value, default=str)) > MAX_STRUCT_BYTES:
        raise InvalidArgument(f"must be at most {MAX_STRUCT_BYTES} bytes as JSON", field=field)
    if _depth(value) > MAX_DEPTH:
        raise InvalidArgument(f"must nest at most {MAX_DEPTH} levels", field=field)
    return value


def build_request(
    *,
    tool_name: str,
    tool_args: Mapping[str, Any] | None = None,
    agent_id: str = "",
    agent_roles: Sequence[str] = (),
    transport: str = "",
    input_text: str = "",
    model_id: str = "",
    cost_estimate: float | None = None,
    context: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> DecisionRequest:
    if not tool_name:
        raise InvalidArgument("is required", field="tool.name")
    if len(agent_roles) > MAX_ROLES:
        raise InvalidArgument(f"at most {MAX_ROLES} roles", field="agent.roles")
    if cost_estimate is not None and not math.isfinite(cost_estimate):
        raise InvalidArgument("must be a finite number", field="cost.estimate")
    if cost_estimate is not None and abs(cost_estimate) >= MAX_COST:
        raise InvalidArgument(f"must be below {MAX_COST:.0f} in magnitude", field="cost.estimate")
    return DecisionRequest(
        tool_name=_recorded(tool_name, "tool.name"),
        tool_args=_struct(tool_args, "tool.args"),
        agent_id=_recorded(agent_id, "agent.id"),
        agent_roles=tuple(
            _bounded(role, f"agent.roles[{i}]") for i, role in enumerate(agent_roles)
        ),
        transport=_recorded(transport, "transport", 64),
        input_text=_bounded(input_text, "input.text", MAX_TEXT),
        model_id=_recorded(model_id, "model.id"),
        cost_estimate=cost_estimate,
        trust_score=None,
        context=_struct(context, "context"),
        now=now or dt.datetime.now(dt.UTC),
    )
