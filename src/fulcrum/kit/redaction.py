"""Removes secrets from anything about to be logged.

Two nets: values under keys named like secrets are replaced wholesale, and secret-shaped
substrings (Fulcrum API keys, bearer tokens, JWTs, PEM private keys, ``password=...``
pairs) are masked inside any string, including exception messages and tracebacks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "[REDACTED]"

_SECRET_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|authorization|cookie|pepper|private[_-]?key|"
    r"signing[_-]?key|credential|session)",
    re.IGNORECASE,
)
_PATTERNS = [
    # Fulcrum API keys fk_<key id>_<secret> and platform keys fkp_... (fulcrum.auth.api_keys),
    # and anything near that shape, such as a truncated key.
    re.compile(r"\bfkp?_[A-Za-z0-9_\-]{16,}"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]+"),
    re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api_key|apikey|pepper)=([^\s&;,'\"]+)"),
    re.compile(r"(?i)(postgres(ql)?|redis|rediss|nats|tls)://[^:/\s]+:[^@\s]+@"),
]


def redact_text(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(MASK, text)
    return text


def redact(value: Any, key: str | None = None) -> Any:
    if key is not None and _SECRET_KEY.search(key) and value not in (None, ""):
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, bytes):
        return redact_text(value.decode(errors="replace"))
    return value
