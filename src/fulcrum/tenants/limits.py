"""Rate-limit values as an API takes them (``per_second``, ``burst``, ``key_per_second``,
``key_burst``), checked once for the tenant's own overrides (settings) and for the
platform's custom ceilings alike."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from fulcrum.auth.limits import RateLimits
from fulcrum.kit.errors import InvalidArgument

# API field -> RateLimits attribute
LIMIT_FIELDS = {
    "per_second": "tenant_rate",
    "burst": "tenant_burst",
    "key_per_second": "key_rate",
    "key_burst": "key_burst",
}
# What the platform may set: beyond these, one tenant could hold a Redis bucket's worth of
# arithmetic no plan was sized for.
MAX_RATE = 1_000_000.0
MAX_BURST = 10_000_000


def parse_limits(
    requested: Mapping[str, float | None],
    *,
    field: str,
    ceiling: RateLimits | None,
    too_high: Callable[[float | int], str],
) -> dict[str, float | int | None]:
    """The requested values by API field, each checked (None resets it): finite, a burst a
    whole number of at least 1, a rate not negative, neither above ``ceiling`` (or, without
    one, above what the platform may set). ``field`` prefixes the names errors give."""
    parsed: dict[str, float | int | None] = {}
    for name, value in requested.items():
        where = f"{field}.{name}"
        if name not in LIMIT_FIELDS:
            raise InvalidArgument("unknown field", field=where)
        if value is None:
            parsed[name] = None
            continue
        if isinstance(value, float) and not math.isfinite(value):  # NaN passes every test below
            raise InvalidArgument("must be a finite number", field=where)
        is_burst = name.endswith("burst")
        if is_burst and (value != int(value) or value < 1):
            raise InvalidArgument("must be a whole number of at least 1", field=where)
        if value < 0:
            raise InvalidArgument("must not be negative", field=where)
        if ceiling is not None:
            limit: float | int = getattr(ceiling, LIMIT_FIELDS[name])
        else:
            limit = MAX_BURST if is_burst else MAX_RATE
        if value > limit:
            raise InvalidArgument(too_high(limit), field=where)
        parsed[name] = int(value) if is_burst else float(value)
    return parsed


def limits_fields(limits: RateLimits) -> dict[str, float | int]:
    """Limits by API field, as answers and audit records show them."""
    return {name: getattr(limits, attribute) for name, attribute in LIMIT_FIELDS.items()}
