from __future__ import annotations

import pytest

from fulcrum.kit.tracing import from_traceparent

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_valid_traceparent_keeps_the_trace_id() -> None:
    ctx = from_traceparent(VALID)
    assert ctx.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert ctx.parent_id != "00f067aa0ba902b7"
    assert ctx.traceparent.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
    ],
)
def test_invalid_traceparent_starts_a_new_trace(header: str | None) -> None:
    ctx = from_traceparent(header)
    assert len(ctx.trace_id) == 32
    assert ctx.trace_id != "4bf92f3577b34da6a3ce929d0e0e4736"
