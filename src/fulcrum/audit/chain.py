"""Linking ledger entries into a tenant's hash chain.

A record's hash is computed once, before insert, and recomputed by every later
verification from the row read back. Both computations must see the same JSON, so
``chain`` only accepts entries whose ``details`` already have the form PostgreSQL ``jsonb``
gives back (see :func:`canonical_details`): the worker sanitises, the chain never silently
alters what it hashes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from fulcrum.audit.canonical import canonical_json
from fulcrum.audit.records import GENESIS_HASH, LedgerEntry, LedgerRecord, chained_fields

# RFC 8785 refuses integers outside the IEEE 754 safe range, and ``jsonb`` prints a float of
# 1e16 or more as an integer (``1e+16`` comes back as ``10000000000000000``), so every
# number, float or not, must stay strictly inside it to hash the same before and after.
_SAFE_MAGNITUDE = 2**53


def record_hash(prev_hash: bytes, entry: LedgerEntry, seq: int) -> bytes:
    """SHA-256 over the previous hash and the canonical JSON of the chained fields.

    Raises ``rfc8785.CanonicalizationError`` (a ``ValueError``) for contents RFC 8785
    cannot represent.
    """
    return hashlib.sha256(prev_hash + canonical_json(chained_fields(entry, seq))).digest()


def canonical_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``details`` as it will read back from ``jsonb``, or ``ValueError``.

    The copy is ``json.loads(json.dumps(details))``: tuples become lists, non-string keys
    become strings. Refused, because they cannot be stored or would hash differently
    after the round trip: values JSON has no form for (NaN, infinities, bytes, dates, ...),
    numbers of magnitude 2**53 or more, and strings (keys included) holding NUL or lone
    surrogates, which ``jsonb`` rejects.
    """
    try:
        copy: dict[str, Any] = json.loads(json.dumps(details, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"details are not JSON: {exc}") from exc
    _check_storable(copy, "details")
    return copy


def _check_storable(value: object, path: str) -> None:
    if isinstance(value, str):
        _check_text(value, path)
    elif isinstance(value, bool):
        return
    elif isinstance(value, int | float):
        if abs(value) >= _SAFE_MAGNITUDE:
            raise ValueError(f"{path}: {value!r} is outside the range JSON numbers hash stably")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, f"{path} key {key!r}")
            _check_storable(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_storable(item, f"{path}[{index}]")


def _check_text(text: str, path: str) -> None:
    if "\x00" in text:
        raise ValueError(f"{path}: NUL characters cannot be stored")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{path}: lone surrogates cannot be stored") from exc


_TEXT_FIELDS = (
    "trace_id",
    "actor",
    "action",
    "resource_type",
    "resource_id",
    "outcome",
    "agent_id",
    "tool_name",
)


def prepare(entry: LedgerEntry) -> LedgerEntry:
    """The entry with canonical details, or ``ValueError`` if it can never be chained (the
    worker sets such an event aside instead of retrying it forever)."""
    if entry.occurred_at.utcoffset() is None:
        raise ValueError(f"event {entry.event_id}: occurred_at must be timezone-aware")
    try:
        details = canonical_details(entry.details)
        for name in _TEXT_FIELDS:
            _check_text(getattr(entry, name), name)
    except ValueError as exc:
        raise ValueError(f"event {entry.event_id}: {exc}") from exc
    return replace(entry, details=details)


def chain(
    entries: Sequence[LedgerEntry], *, head_seq: int, head_hash: bytes, prepared: bool = False
) -> list[LedgerRecord]:
    """Link ``entries`` after the tenant's head (``head_seq`` 0 and ``GENESIS_HASH`` if new).

    All-or-nothing: any unfit entry raises ``ValueError`` naming it before anything is
    returned, so a batch is never half chained.
    """
    if head_seq < 0 or len(head_hash) != len(GENESIS_HASH):
        raise ValueError("head_seq must be >= 0 and head_hash a SHA-256 digest")
    if head_seq == 0 and head_hash != GENESIS_HASH:
        raise ValueError("an empty chain's head hash is GENESIS_HASH")
    tenants = {entry.tenant_id for entry in entries}
    if len(tenants) > 1:
        raise ValueError(f"entries of {len(tenants)} tenants cannot share one chain")
    records = []
    prev_hash = head_hash
    for seq, entry in enumerate(entries, start=head_seq + 1):
        if not prepared:  # entries from prepare() were checked already
            _check_chainable(entry, seq)
        digest = record_hash(prev_hash, entry, seq)
        records.append(LedgerRecord(entry=entry, seq=seq, prev_hash=prev_hash, hash=digest))
        prev_hash = digest
    return records


def _check_chainable(entry: LedgerEntry, seq: int) -> None:
    name = f"entry for seq {seq} (event {entry.event_id})"
    if entry.occurred_at.utcoffset() is None:
        # A naive time would be read as the host's local time: the hash would depend on it.
        raise ValueError(f"{name}: occurred_at must be timezone-aware")
    try:
        for key, value in chained_fields(entry, seq).items():
            if isinstance(value, str):
                _check_text(value, key)
        storable = canonical_details(entry.details)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from exc
    if storable != entry.details:
        raise ValueError(f"{name}: details are not canonical; pass them through canonical_details")
