"""Secrets never survive redaction, wherever they sit in a log event."""

from __future__ import annotations

import pytest

from fulcrum.kit.redaction import MASK, redact, redact_text

API_KEY = "fk_0123456789abcdef0123_" + "S-_" * 14 + "S"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "text",
    [
        f"key {API_KEY} used",
        f"Authorization: Bearer {JWT}",
        f"token in url ?jwt={JWT}",
        "connect postgresql://app:hunter2@db/fulcrum",
        "password=hunter2 host=db",
        "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----",
    ],
)
def test_secret_shapes_are_masked_in_text(text: str) -> None:
    out = redact_text(text)
    assert MASK in out
    for secret in (API_KEY, JWT, "hunter2", "MIIE"):
        assert secret not in out


def test_values_of_secret_named_fields_are_masked_recursively() -> None:
    event = {
        "event": "request",
        "headers": {"authorization": "opaque-value", "x-request-id": "r1"},
        "body": {"name": "k", "client_secret": "opaque", "nested": [{"password": "p"}]},
    }
    out = redact(event)
    assert out["headers"] == {"authorization": MASK, "x-request-id": "r1"}
    assert out["body"]["client_secret"] == MASK
    assert out["body"]["nested"] == [{"password": MASK}]
    assert out["body"]["name"] == "k"


def test_exception_text_is_masked() -> None:
    try:
        raise ValueError(f"bad key {API_KEY}")
    except ValueError as exc:
        assert API_KEY not in redact({"exception": str(exc)})["exception"]
