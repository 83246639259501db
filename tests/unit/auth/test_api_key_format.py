"""API key format, hashing and scope rules (pure)."""

from __future__ import annotations

import pytest

from fulcrum.auth.api_keys import KeyKind, hash_key, matches, new_key, parse_key
from fulcrum.auth.scopes import PLATFORM_SCOPES, ROLE_SCOPES, Role, Scope, parse_tenant_scopes
from fulcrum.kit.errors import InvalidArgument
from fulcrum.kit.redaction import MASK, redact_text


@pytest.mark.parametrize("kind", list(KeyKind))
def test_new_keys_parse_back_and_carry_256_bits(kind: KeyKind) -> None:
    key = new_key(kind)
    parsed = parse_key(key.full)
    assert parsed == key
    assert key.full.startswith(f"{kind.value}_{key.key_id}_")
    secret = key.full[len(kind.value) + 22 :]
    assert len(secret) == 43  # base64url of 32 bytes from `secrets`


def test_keys_are_unique() -> None:
    assert len({new_key(KeyKind.TENANT).full for _ in range(1000)}) == 1000


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "fk_",
        "fk_abc_def",
        "sk_" + "0" * 20 + "_" + "A" * 43,
        "fk_" + "0" * 20 + "_" + "A" * 42,
        "fk_" + "G" * 20 + "_" + "A" * 43,
        "fk_" + "0" * 20 + "_" + "A" * 43 + "\n",
        "x" * 10_000,
    ],
)
def test_malformed_keys_do_not_parse(presented: str) -> None:
    assert parse_key(presented) is None


def test_hash_is_peppered_and_compared_exactly() -> None:
    key = new_key(KeyKind.TENANT).full
    stored = hash_key(b"pepper-1", key)
    assert len(stored) == 32
    assert matches(b"pepper-1", key, stored)
    assert not matches(b"pepper-2", key, stored)
    assert not matches(b"pepper-1", key[:-1] + ("A" if key[-1] != "A" else "B"), stored)


def test_keys_are_redacted_from_logs() -> None:
    for kind in KeyKind:
        key = new_key(kind).full
        assert redact_text(f"auth with {key} failed") == f"auth with {MASK} failed"


def test_role_scopes_respect_the_hierarchy() -> None:
    assert all(not (scopes & PLATFORM_SCOPES) for scopes in ROLE_SCOPES.values())
    assert ROLE_SCOPES[Role.ADMIN] < ROLE_SCOPES[Role.OWNER]
    assert Scope.OWNERSHIP_MANAGE not in ROLE_SCOPES[Role.ADMIN]
    assert ROLE_SCOPES[Role.AGENT] == {Scope.DECISIONS_EVALUATE}
    for role in Role:
        assert ROLE_SCOPES[role] <= ROLE_SCOPES[Role.OWNER]


def test_tenant_scopes_refuse_platform_and_unknown_scopes() -> None:
    assert parse_tenant_scopes(["keys:read", "keys:read"]) == {Scope.KEYS_READ}
    with pytest.raises(InvalidArgument) as err:
        parse_tenant_scopes(["keys:read", "tenants:admin"])
    assert err.value.field == "scopes[1]"
    with pytest.raises(InvalidArgument, match="unknown scope"):
        parse_tenant_scopes(["keys:*"])
