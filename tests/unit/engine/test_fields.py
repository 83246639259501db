"""Reading request fields: empty request values are missing, paths walk dicts and lists,
time fields read the request's time in UTC."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from fulcrum.engine.fields import MISSING, UnknownField, resolve_field
from fulcrum.engine.model import DecisionRequest

NOW = dt.datetime(2026, 1, 5, 14, 30, tzinfo=dt.UTC)  # a Monday


def read(field: str, **request: Any) -> object:
    return resolve_field(field).read(DecisionRequest(tool_name="t", now=NOW, **request))


def test_empty_request_values_are_missing() -> None:
    for field in ("agent.id", "agent.roles", "transport", "input.text", "model.id"):
        assert read(field) is MISSING
    assert read("cost.estimate") is MISSING
    assert read("trust.score") is MISSING
    assert read("cost.estimate", cost_estimate=0.0) == 0.0  # zero is a value, not absence


def test_nested_paths() -> None:
    args = {"a": {"b": [{"c": 1}, {"c": 2}]}, "0": "key", "list": ["x"]}
    assert read("tool.args.a.b.1.c", tool_args=args) == 2
    assert read("tool.args.a.b.2.c", tool_args=args) is MISSING
    assert read("tool.args.a.b.c", tool_args=args) is MISSING  # a non-numeric key into a list
    assert read("tool.args.0", tool_args=args) == "key"  # digits are keys in a mapping
    assert read("tool.args.list.0.x", tool_args=args) is MISSING
    assert read("context.env", context={"env": None}) is None


def test_time_fields_are_utc() -> None:
    assert read("time.hour") == 14
    assert read("time.weekday") == "mon"
    assert read("time.of_day") == "14:30"
    plus_two = dt.datetime(2026, 1, 5, 1, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    request = DecisionRequest(tool_name="t", now=plus_two)
    assert resolve_field("time.of_day").read(request) == "23:05"
    assert resolve_field("time.weekday").read(request) == "sun"


@pytest.mark.parametrize(
    "name", ["tool", "tool.args", "tool.args.", "context..x", "agent.name", ""]
)
def test_unknown_fields(name: str) -> None:
    with pytest.raises(UnknownField):
        resolve_field(name)
