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
    r"\bfkp?_[A-Za-z0-9_\-]{16,}",
    r"(?i:\bbearer\s+[A-Za-z0-9._~+/=\-]+)",
    r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
    r"(?i:\b(password|passwd|pwd|secret|token|api_key|apikey|pepper)=([^\s&;,'\"]+))",
    r"(?i:(postgres(ql)?|redis|rediss|nats|tls)://[^:/\s]+:[^@\s]+@)",
]
# One pass over the text instead of one per pattern: every pattern masks its whole match,
# so the alternation masks the same secrets (at the leftmost match first).
_SECRET_SHAPES = re.compile("|".join(f"(?:{pattern})" for pattern in _PATTERNS))


def redact_text(text: str) -> str:
    return _SECRET_SHAPES.sub(MASK, text)


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
