"""Small validators shared by the services; each error names the field."""

from __future__ import annotations

import datetime as dt
import re
import uuid

from fulcrum.kit.errors import InvalidArgument

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def text_problem(value: str) -> str | None:
    """Why PostgreSQL could not store ``value`` as text or in jsonb, if it could not: a NUL
    character, or a lone surrogate (not encodable as UTF-8; JSON's ``"\\ud800"`` escape
    decodes to one, and psycopg fails on it while encoding the query)."""
    if "\x00" in value:
        return "must not contain NUL characters"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must not contain lone surrogates (text must be valid Unicode)"
    return None


def storable_text(value: str, field: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise InvalidArgument(problem, field=field)
    return value


def display_name(value: str, field: str = "name", max_length: int = 100) -> str:
    value = value.strip()
    if not value:
        raise InvalidArgument("must not be empty", field=field)
    if len(value) > max_length:
        raise InvalidArgument(f"must be at most {max_length} characters", field=field)
    if _CONTROL.search(value):
        raise InvalidArgument("must not contain control characters", field=field)
    return storable_text(value, field)


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
    try:
        # 9999-12-31T23:59:59-14:00 is a valid time whose UTC form is in the year 10000,
        # which PostgreSQL stores but psycopg cannot read back.
        value = value.astimezone(dt.UTC)
    except OverflowError:
        raise InvalidArgument("is out of range", field=field) from None
    if value <= dt.datetime.now(dt.UTC):
        raise InvalidArgument("must be in the future", field=field)
    return value


MAX_BATCH = 100  # requests in one batch of decisions or one simulation


def batch_cost(count: int) -> int:
    """The rate-limit tokens a batch of ``count`` requests costs (one each, at least one),
    once its size is within the limit. The doors charge it before the body is used; the
    service refuses an empty batch after checking the rest of the request."""
    if count > MAX_BATCH:
        raise InvalidArgument(f"at most {MAX_BATCH} requests per batch", field="requests")
    return max(1, count)


def batch_size(count: int) -> int:
    """The number of requests in a batch, once it is checked against the limits (both
    doors, and the services, check it with these words)."""
    if count < 1:
        raise InvalidArgument("at least one request is required", field="requests")
    batch_cost(count)
    return count
