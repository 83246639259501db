"""Tenant settings validation, the pure part of SettingsService.update: the default action
and rate-limit overrides (which may only lower the plan's limits). Each refusal names the
field the client sent."""

from __future__ import annotations

import math

import pytest

from fulcrum.auth.limits import PLAN_LIMITS, Plan, effective_limits
from fulcrum.engine.model import Action
from fulcrum.kit.errors import InvalidArgument
from fulcrum.tenants.settings import RATE_FIELDS, parse_action, rate_overrides

FREE = PLAN_LIMITS[Plan.FREE]  # 10/s burst 20 per tenant, 5/s burst 10 per key


def refused(plan: Plan, name: str, value: float | None) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as raised:
        rate_overrides(plan, {name: value})
    assert raised.value.field == f"rate_limit.{name}"
    return raised.value


# Default action


@pytest.mark.parametrize("action", list(Action))
def test_every_action_is_a_valid_default(action: Action) -> None:
    assert parse_action(action.value, "default_action") is action


@pytest.mark.parametrize("value", ["", "maybe", "DENY", "Allow", " deny", "deny\x00", "block"])
def test_an_unknown_default_action_is_refused_naming_the_field(value: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse_action(value, "default_action")
    assert raised.value.field == "default_action"
    for action in Action:
        assert action.value in raised.value.message


# Rate limits: good values


def test_overrides_map_to_tenant_columns() -> None:
    columns = rate_overrides(
        Plan.FREE, {"per_second": 2.5, "burst": 20, "key_per_second": 5, "key_burst": 3.0}
    )
    assert columns == {
        "rate_limit_per_second": 2.5,
        "rate_limit_burst": 20,
        "key_rate_limit_per_second": 5.0,
        "key_rate_limit_burst": 3,
    }
    assert isinstance(columns["rate_limit_burst"], int)
    assert isinstance(columns["key_rate_limit_burst"], int)  # 3.0 stored as a whole number
    assert isinstance(columns["key_rate_limit_per_second"], float)


def test_none_resets_an_override_to_the_plan() -> None:
    assert rate_overrides(Plan.FREE, {"burst": None, "key_per_second": None}) == {
        "rate_limit_burst": None,
        "key_rate_limit_per_second": None,
    }
    assert effective_limits("free", None, None, None, None) == FREE


@pytest.mark.parametrize("plan", list(Plan))
def test_the_plan_limit_itself_is_allowed(plan: Plan) -> None:
    ceiling = PLAN_LIMITS[plan]
    requested = {name: getattr(ceiling, attr) for name, (_, attr) in RATE_FIELDS.items()}
    columns = rate_overrides(plan, requested)
    assert effective_limits(plan.value, *columns.values()) == ceiling


def test_a_zero_rate_is_allowed_a_bucket_that_does_not_refill() -> None:
    # The limiter treats a zero refill as "never" (see ratelimit.limiter): a valid lockdown.
    assert rate_overrides(Plan.FREE, {"per_second": 0, "key_per_second": 0.0}) == {
        "rate_limit_per_second": 0.0,
        "key_rate_limit_per_second": 0.0,
    }


def test_a_burst_of_one_is_allowed() -> None:
    assert rate_overrides(Plan.FREE, {"burst": 1, "key_burst": 1}) == {
        "rate_limit_burst": 1,
        "key_rate_limit_burst": 1,
    }


# Rate limits: refused


@pytest.mark.parametrize("name", list(RATE_FIELDS))
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_value_is_refused(name: str, value: float) -> None:
    assert "finite" in refused(Plan.ENTERPRISE, name, value).message


@pytest.mark.parametrize("name", ["per_second", "key_per_second"])
@pytest.mark.parametrize("value", [-1, -0.001, -1e308])
def test_a_negative_rate_is_refused(name: str, value: float) -> None:
    assert "negative" in refused(Plan.FREE, name, value).message


@pytest.mark.parametrize("name", ["burst", "key_burst"])
@pytest.mark.parametrize("value", [0, -1, 0.5, 2.5, -1e308])
def test_a_burst_must_be_a_whole_number_of_at_least_one(name: str, value: float) -> None:
    assert "whole number of at least 1" in refused(Plan.FREE, name, value).message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("per_second", 10.001),
        ("burst", 21),
        ("key_per_second", 5.5),
        ("key_burst", 11),
        ("per_second", 1e308),
        ("burst", 1e300),
        ("key_burst", 2**63),
    ],
)
def test_an_override_cannot_exceed_the_plan(name: str, value: float) -> None:
    assert "cannot exceed the free plan's" in refused(Plan.FREE, name, value).message


@pytest.mark.parametrize("name", ["burst", "key_burst"])
def test_an_integer_too_large_for_a_float_is_refused_naming_the_field(name: str) -> None:
    # JSON integers have no size limit, and the REST schema (RateLimitIn) passes a 400-digit
    # burst through as a Python int: it must be refused like any other value over the plan.
    refused(Plan.FREE, name, 10**400)


def test_an_unknown_rate_field_is_refused_naming_it() -> None:
    assert refused(Plan.FREE, "per_minute", 1).message == "unknown field"


def test_one_bad_field_refuses_the_whole_update() -> None:
    with pytest.raises(InvalidArgument) as raised:
        rate_overrides(Plan.FREE, {"per_second": 5, "key_burst": 0})
    assert raised.value.field == "rate_limit.key_burst"
