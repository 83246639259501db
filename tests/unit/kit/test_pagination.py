"""Page tokens and sizes: a token reads back as the cursor it was made from; anything else a
client sends as a token, or a size out of range, is refused naming the field."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid

import pytest

from fulcrum.kit.errors import InvalidArgument
from fulcrum.kit.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Cursor,
    after_clause,
    decode_cursor,
    encode_cursor,
    page_size,
    paginate,
)

CURSOR = Cursor(
    dt.datetime(2026, 11, 28, 9, 30, 0, 123456, tzinfo=dt.UTC),
    "0193a3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b",
)


def token_of(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        CURSOR,
        Cursor(dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-14))), "a" * 20),
        Cursor(dt.datetime(1, 1, 1, tzinfo=dt.UTC), str(uuid.UUID(int=0))),
        Cursor(dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC), "ü/+=?&"),
    ],
)
def test_a_token_reads_back_as_its_cursor(cursor: Cursor) -> None:
    token = encode_cursor(cursor)
    decoded = decode_cursor(token)
    assert decoded == cursor
    assert decoded is not None and decoded.created_at.utcoffset() == cursor.created_at.utcoffset()


def test_a_token_is_url_safe() -> None:
    for n in range(40):  # every padding length, every base64 alphabet corner
        token = encode_cursor(Cursor(CURSOR.created_at, "?" * n + "~" * (n % 3)))
        assert "=" not in token and "+" not in token and "/" not in token
        assert decode_cursor(token) == Cursor(CURSOR.created_at, "?" * n + "~" * (n % 3))


@pytest.mark.parametrize("token", [None, ""])
def test_no_token_is_the_first_page(token: str | None) -> None:
    assert decode_cursor(token) is None
    assert after_clause(None) == ("TRUE", ())


GARBAGE = {
    "not base64": "!!!!",
    "bad length": "a",
    "not json": base64.urlsafe_b64encode(b"\xff\xfe not json").decode(),
    "empty": "AA",
    "json null": token_of(None),
    "a number": token_of(5),
    "too few parts": token_of(["2026-11-28T09:30:00+00:00"]),
    "too many parts": token_of(["2026-11-28T09:30:00+00:00", "x", "y"]),
    "an object": token_of({"created_at": "2026-11-28T09:30:00+00:00", "id": "x"}),
    "not a time": token_of(["yesterday", "x"]),
    "a number as time": token_of([1764322200, "x"]),
    "out of range": token_of(["2026-13-01T00:00:00+00:00", "x"]),
}


@pytest.mark.parametrize("token", GARBAGE.values(), ids=GARBAGE.keys())
def test_a_garbage_token_is_refused_naming_the_field(token: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        decode_cursor(token)
    assert refused.value.field == "page_token"
    with pytest.raises(InvalidArgument) as refused:
        decode_cursor(token, field="cursor")
    assert refused.value.field == "cursor"


@pytest.mark.parametrize("replacement", ["A", "_", "-", "9"])
def test_an_edited_token_is_a_cursor_or_refused_never_another_error(replacement: str) -> None:
    # Tokens are opaque, not signed: an edit that keeps them well formed moves the cursor
    # (the services then check its id). Any other edit is refused naming the field.
    token = encode_cursor(CURSOR)
    refused = 0
    for at in range(len(token)):
        edited = token[:at] + replacement + token[at + 1 :]
        try:
            decoded = decode_cursor(edited)
        except InvalidArgument as exc:
            assert exc.field == "page_token"
            refused += 1
        else:
            assert isinstance(decoded, Cursor)
    assert refused > len(token) // 2


def test_an_oversized_token_is_refused_before_decoding() -> None:
    long_but_valid = encode_cursor(Cursor(CURSOR.created_at, "x" * 600))
    with pytest.raises(InvalidArgument, match="too long") as refused:
        decode_cursor(long_but_valid)
    assert refused.value.field == "page_token"
    assert decode_cursor(encode_cursor(Cursor(CURSOR.created_at, "x" * 300))) is not None


@pytest.mark.parametrize(
    ("asked", "given"), [(None, DEFAULT_PAGE_SIZE), (0, DEFAULT_PAGE_SIZE), (1, 1), (200, 200)]
)
def test_page_sizes_in_range_are_kept_and_none_is_the_default(
    asked: int | None, given: int
) -> None:
    assert MAX_PAGE_SIZE == 200
    assert page_size(asked) == given


@pytest.mark.parametrize("asked", [-1, MAX_PAGE_SIZE + 1, 10**9])
def test_page_sizes_out_of_range_are_refused_not_clamped(asked: int) -> None:
    with pytest.raises(InvalidArgument, match=f"between 1 and {MAX_PAGE_SIZE}") as refused:
        page_size(asked)
    assert refused.value.field == "page_size"
    with pytest.raises(InvalidArgument) as refused:
        page_size(asked, field="limit")
    assert refused.value.field == "limit"


def test_paginate_cuts_the_extra_row_and_points_after_the_last_kept() -> None:
    rows = [Cursor(CURSOR.created_at + dt.timedelta(seconds=n), f"id-{n}") for n in range(4)]
    page, token = paginate(rows, 3, lambda row: row)
    assert page == rows[:3]
    assert decode_cursor(token) == rows[2]
    where, params = after_clause(decode_cursor(token))
    assert where == "(created_at, id) > (%s, %s::uuid)"
    assert params == (rows[2].created_at, "id-2")


@pytest.mark.parametrize("count", [0, 2, 3])
def test_the_last_page_has_no_token(count: int) -> None:
    rows = [CURSOR] * count
    page, token = paginate(rows, 3, lambda row: row)
    assert page == rows
    assert token == ""
