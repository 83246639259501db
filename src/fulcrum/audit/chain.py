"""Linking ledger entries into a tenant's hash chain.

A record's hash is computed once, by the worker, and recomputed by every later
verification from the row read back (:func:`record_hash`, the reference). Both must see
the same JSON, so the worker first prepares each entry (:func:`prepare`): details become
the form PostgreSQL ``jsonb`` gives back, anything that cannot be stored or would hash
differently after storage is refused, and the canonical JSON is encoded once. Linking
(:func:`link`) then only assigns sequence numbers and hashes, and the row is stored from
the very bytes that were hashed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fulcrum.audit.canonical import ENCODER, NotFast, canonical_json, fast_form
from fulcrum.audit.records import (
    GENESIS_HASH,
    LedgerEntry,
    RecordKind,
    canonical_split,
    chained_fields,
)

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


@dataclass(frozen=True, slots=True)
class PreparedEntry:
    """An entry fit to be chained and stored: what the writer needs to know of it, and its
    canonical JSON encoded once, around the ``seq`` it will get (``canonical_split``)."""

    tenant_id: uuid.UUID
    event_id: uuid.UUID
    kind: RecordKind
    occurred_at: dt.datetime
    before_seq: bytes
    after_seq: bytes


@dataclass(frozen=True, slots=True)
class Link:
    """A prepared entry's place in the chain, and the exact bytes its hash covers (the
    ledger row is stored from them, so what is stored is what was hashed)."""

    seq: int
    prev_hash: bytes
    hash: bytes
    canonical: bytes


def prepare(entry: LedgerEntry) -> PreparedEntry:
    """The entry checked, sanitised and encoded, or ``ValueError`` if it can never be chained
    (the worker sets such an event aside instead of retrying it forever).

    Plain details take one pass of :func:`fast_form`; anything else, or anything that
    fails there, takes the careful path: the ``jsonb`` round trip of
    :func:`canonical_details`, field-by-field checks naming what is wrong, and the
    reference encoder."""
    if entry.occurred_at.utcoffset() is None:
        raise ValueError(f"event {entry.event_id}: occurred_at must be timezone-aware")
    if not any("\x00" in getattr(entry, name) for name in _TEXT_FIELDS):
        try:
            return _encode(entry, ENCODER.encode(fast_form(entry.details)))
        except (NotFast, UnicodeEncodeError):
            pass
    try:
        for name in _TEXT_FIELDS:
            _check_text(getattr(entry, name), name)
        details = canonical_details(entry.details)
    except ValueError as exc:
        raise ValueError(f"event {entry.event_id}: {exc}") from exc
    return _encode(entry, canonical_json(details).decode("utf-8"))


def _encode(entry: LedgerEntry, details_json: str) -> PreparedEntry:
    before, after = canonical_split(
        tenant_id=entry.tenant_id,
        event_id=entry.event_id,
        kind=entry.kind,
        occurred_at=entry.occurred_at,
        trace_id=entry.trace_id,
        actor=entry.actor,
        action=entry.action,
        resource_type=entry.resource_type,
        resource_id=entry.resource_id,
        outcome=entry.outcome,
        agent_id=entry.agent_id,
        tool_name=entry.tool_name,
        details_json=details_json,
    )
    return prepared_entry(
        tenant_id=entry.tenant_id,
        event_id=entry.event_id,
        kind=entry.kind,
        occurred_at=entry.occurred_at,
        before_seq=before,
        after_seq=after,
    )


def prepared_entry(
    *,
    tenant_id: uuid.UUID,
    event_id: uuid.UUID,
    kind: RecordKind,
    occurred_at: dt.datetime,
    before_seq: str,
    after_seq: str,
) -> PreparedEntry:
    """The prepared entry of text from ``canonical_split``; ``UnicodeEncodeError`` if it
    holds lone surrogates (``jsonb`` refuses them)."""
    return PreparedEntry(
        tenant_id,
        event_id,
        kind,
        occurred_at,
        before_seq.encode("utf-8"),
        after_seq.encode("utf-8"),
    )


def link(entries: Sequence[PreparedEntry], *, head_seq: int, head_hash: bytes) -> list[Link]:
    """Link prepared entries after the tenant's head (``head_seq`` 0 and ``GENESIS_HASH``
    if new): sequence numbers and SHA-256 only, cheap enough to run under the head's lock."""
    _check_head(head_seq, head_hash)
    tenants = {prepared.tenant_id for prepared in entries}
    if len(tenants) > 1:
        raise ValueError(f"entries of {len(tenants)} tenants cannot share one chain")
    links = []
    prev_hash = head_hash
    for seq, prepared in enumerate(entries, start=head_seq + 1):
        canonical = b"%s%d%s" % (prepared.before_seq, seq, prepared.after_seq)
        digest = hashlib.sha256(prev_hash + canonical).digest()
        links.append(Link(seq, prev_hash, digest, canonical))
        prev_hash = digest
    return links


def _check_head(head_seq: int, head_hash: bytes) -> None:
    if head_seq < 0 or len(head_hash) != len(GENESIS_HASH):
        raise ValueError("head_seq must be >= 0 and head_hash a SHA-256 digest")
    if head_seq == 0 and head_hash != GENESIS_HASH:
        raise ValueError("an empty chain's head hash is GENESIS_HASH")
