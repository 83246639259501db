"""Opaque cursors for keyset pagination over (created_at, id)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from fulcrum.kit.errors import InvalidArgument

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class Cursor:
    created_at: dt.datetime
    id: str


def after_clause(after: Cursor | None, id_type: str = "uuid") -> tuple[str, tuple[object, ...]]:
    """The keyset condition for the rows after ``after`` in (created_at, id) order."""
    if after is None:
        return "TRUE", ()
    return f"(created_at, id) > (%s, %s::{id_type})", (after.created_at, after.id)


def page_size(value: int | None, field: str = "page_size") -> int:
    if value is None or value == 0:
        return DEFAULT_PAGE_SIZE
    if value < 0 or value > MAX_PAGE_SIZE:
        raise InvalidArgument(f"must be between 1 and {MAX_PAGE_SIZE}", field=field)
    return value


def encode_cursor(cursor: Cursor) -> str:
    raw = json.dumps([cursor.created_at.isoformat(), cursor.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str | None, field: str = "page_token") -> Cursor | None:
    if not token:
        return None
    if len(token) > 512:
        raise InvalidArgument("page token is too long", field=field)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        created_at, ident = json.loads(raw)
        return Cursor(dt.datetime.fromisoformat(created_at), str(ident))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidArgument("invalid page token", field=field) from exc


def paginate(rows: list[T], limit: int, cursor_of: Callable[[T], Cursor]) -> tuple[list[T], str]:
    """Cut ``limit + 1`` fetched rows to a page and the token of the next one ("" at the end)."""
    if len(rows) <= limit:
        return rows, ""
    page = rows[:limit]
    return page, encode_cursor(cursor_of(page[-1]))
