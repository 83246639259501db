"""The golden-case loader and the request dict shape it shares with the REST API."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from fulcrum.engine.model import Action, Verdict
from fulcrum.kit.errors import InvalidArgument
from fulcrum.policytest.cases import Expectation, ShadowExpectation, request_from_dict

FULL: dict[str, Any] = {
    "tool": {"name": "db.query", "args": {"query": "select 1"}},
    "agent": {"id": "agent-7", "roles": ["reader", "writer"]},
    "transport": "mcp",
    "input": {"text": "hello"},
    "model": {"id": "m-1"},
    "cost": {"estimate": 1.5},
    "trust": {"score": 0.75},
    "context": {"env": "prod"},
    "time": "2026-01-05T14:30:00Z",
}


def test_every_field_of_the_shape_is_read() -> None:
    request = request_from_dict(FULL)
    assert request.tool_name == "db.query"
    assert request.tool_args == {"query": "select 1"}
    assert (request.agent_id, request.agent_roles) == ("agent-7", ("reader", "writer"))
    assert (request.transport, request.input_text, request.model_id) == ("mcp", "hello", "m-1")
    assert (request.cost_estimate, request.trust_score) == (1.5, 0.75)
    assert request.context == {"env": "prod"}
    assert request.now == dt.datetime(2026, 1, 5, 14, 30, tzinfo=dt.UTC)


def test_a_server_clock_refuses_a_caller_chosen_time() -> None:
    server_now = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    without_time = {key: value for key, value in FULL.items() if key != "time"}
    assert request_from_dict(without_time, now=server_now).now == server_now
    with pytest.raises(InvalidArgument) as caught:
        request_from_dict(FULL, now=server_now)
    assert caught.value.field == "time"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tool": {"args": {}}}, "tool.name"),
        ({"tool": {"name": "t", "argz": {}}}, "tool.argz"),
        ({"agent": {"id": "a", "roles": "admin"}}, "agent.roles"),
        ({"agent": {"id": "a", "roles": ["ok", 3]}}, "agent.roles[1]"),
        ({"cost": {"estimate": "cheap"}}, "cost.estimate"),
        ({"context": ["x"]}, "context"),
        ({"time": "yesterday"}, "time"),
        ({"time": "2026-01-05T14:30:00"}, "time"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_malformed_requests_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        request_from_dict({**FULL, **change})
    assert caught.value.field == field


def test_expectations_report_every_difference() -> None:
    expect = Expectation(
        Action.DENY, "r", "p", reason="why", shadow=(ShadowExpectation("s", Action.WARN, "w"),)
    )
    assert (
        expect.mismatches(
            Verdict(Action.DENY, "why", "p", 1, "r"), [Verdict(Action.WARN, "", "s", 1, "w")]
        )
        == []
    )
    problems = expect.mismatches(Verdict(Action.ALLOW, "other"), [])
    assert len(problems) == 3
    assert problems[0] == "expected deny by p/r, got allow by None/None"
