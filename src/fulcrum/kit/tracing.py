"""W3C trace context: honour an incoming ``traceparent`` or start a new trace."""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

current_trace_id: ContextVar[str | None] = ContextVar("trace_id", default=None)


@dataclass(frozen=True)
class TraceContext:
    trace_id: str
    parent_id: str
    flags: str = "01"

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.parent_id}-{self.flags}"


def new_trace() -> TraceContext:
    return TraceContext(trace_id=secrets.token_hex(16), parent_id=secrets.token_hex(8))


def from_traceparent(header: str | None) -> TraceContext:
    """Parse ``traceparent``; an absent or invalid header starts a new trace."""
    if header:
        match = _TRACEPARENT.match(header.strip().lower())
        if match and set(match.group(1)) != {"0"} and set(match.group(2)) != {"0"}:
            return TraceContext(match.group(1), secrets.token_hex(8), match.group(3))
    return new_trace()
