"""API key format and hashing (pure; no I/O).

A key reads ``fk_<key id>_<secret>`` (platform keys ``fkp_...``): the prefix lets secret
scanners find leaked keys, the 20-hex-digit key id is public and finds the stored record,
and the secret is 256 bits from :mod:`secrets`. Only HMAC-SHA-256(pepper, key) is stored;
comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum


class KeyKind(StrEnum):
    TENANT = "fk"
    PLATFORM = "fkp"


KEY_ID_BYTES = 10
SECRET_BYTES = 32
_SECRET_LEN = 43  # base64url of 32 bytes, unpadded
_FORMAT = re.compile(r"(fkp?)_([0-9a-f]{20})_([A-Za-z0-9_\-]{43})")
MAX_PRESENTED_LENGTH = 200


@dataclass(frozen=True)
class ParsedKey:
    kind: KeyKind
    key_id: str
    full: str


def new_key(kind: KeyKind) -> ParsedKey:
    key_id = secrets.token_hex(KEY_ID_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    assert len(secret) == _SECRET_LEN
    return ParsedKey(kind, key_id, f"{kind.value}_{key_id}_{secret}")


def parse_key(presented: str) -> ParsedKey | None:
    """Return the parsed key, or None when it is not shaped like a Fulcrum key."""
    if len(presented) > MAX_PRESENTED_LENGTH:
        return None
    match = _FORMAT.fullmatch(presented)
    if match is None:
        return None
    return ParsedKey(KeyKind(match.group(1)), match.group(2), presented)


def hash_key(pepper: bytes, key: str) -> bytes:
    return hmac.new(pepper, key.encode(), hashlib.sha256).digest()


def matches(pepper: bytes, key: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(hash_key(pepper, key), stored_hash)
