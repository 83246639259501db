"""Small validators shared by the services; each error names the field."""

from __future__ import annotations

import datetime as dt
import re
import uuid

from fulcrum.kit.errors import InvalidArgument

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def display_name(value: str, field: str = "name", max_length: int = 100) -> str:
    value = value.strip()
    if not value:
        raise InvalidArgument("must not be empty", field=field)
    if len(value) > max_length:
        raise InvalidArgument(f"must be at most {max_length} characters", field=field)
    if _CONTROL.search(value):
        raise InvalidArgument("must not contain control characters", field=field)
    return value


def parse_uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgument("must be a UUID", field=field) from None


def future_time(value: dt.datetime | None, field: str) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidArgument("must include a time zone", field=field)
    if value <= dt.datetime.now(dt.UTC):
        raise InvalidArgument("must be in the future", field=field)
    return value
