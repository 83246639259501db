"""A decision request as the service takes it, and the decision it makes."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from fulcrum.engine.model import DecisionRequest, Evaluation


@dataclass(frozen=True)
class DecisionInput:
    request: DecisionRequest
    explain: bool = False
    trace_id: str | None = None  # from the request's own traceparent, when it has one


@dataclass(frozen=True)
class Decision:
    decision_id: uuid.UUID
    trace_id: str
    evaluation: Evaluation
    evaluation_ns: int
    decided_at: dt.datetime
