"""Offline proof: a tenant's ledger range in one file, verifiable with no database or NATS.

A bundle is JSON lines (docs/AUDIT.md), written and read in constant memory:

1. a header: tenant, range, the hash the range's first record links to, public keys;
2. the range's signed checkpoints (``"type": "checkpoint"``) and its anchors
   (``"type": "anchor"``), as the anchor codec writes them;
3. the records (``"type": "record"``) in seq order.

Checkpoints and anchors are few and held in memory; records stream through
``verify.verify_chain`` one at a time. The keys in the header only make the bundle
self-consistent: an auditor passes the keys they trust instead.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from fulcrum.audit.anchors import MalformedAnchor, anchor_fields, anchor_from_fields
from fulcrum.audit.checkpoints import Checkpoint, CheckpointVerifier
from fulcrum.audit.records import LedgerEntry, LedgerRecord, RecordKind, timestamp_text
from fulcrum.audit.repository import ledger_range
from fulcrum.audit.verify_chain import AnchorLog, VerificationResult, verify_chain
from fulcrum.audit.wire import record_line
from fulcrum.kit.errors import InvalidArgument

FORMAT = "fulcrum-audit-bundle"
VERSION = 1
PROGRESS_EVERY = 100_000  # records between two progress reports
_PEM_END = b"-----END PUBLIC KEY-----"


class UnusableBundle(InvalidArgument):
    """The file is not a bundle this version can read (exit 2, not a verdict)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="bundle")


@dataclass(frozen=True)
class Header:
    tenant_id: uuid.UUID
    from_seq: int
    to_seq: int | None
    prev_hash: bytes | None  # the hash of record from_seq - 1, when the range starts later
    exported_at: dt.datetime
    public_keys: tuple[bytes, ...]


@dataclass(frozen=True)
class BundleVerdict:
    result: VerificationResult
    header: Header
    keys_from_bundle: bool  # no --public-keys: the bundle vouched for itself
    newest_pin: int | None  # the newest record a signature in the bundle pins


def split_pems(data: bytes) -> list[bytes]:
    """The public keys of a PEM file holding one or several."""
    return [
        part.strip() + b"\n" + _PEM_END + b"\n" for part in data.split(_PEM_END) if part.strip()
    ]


# --- writing --------------------------------------------------------------------------------


def _line(out: IO[str], fields: dict[str, Any]) -> None:
    out.write(json.dumps(fields, ensure_ascii=False, separators=(",", ":")))
    out.write("\n")


def header_fields(
    tenant_id: uuid.UUID,
    from_seq: int,
    to_seq: int | None,
    prev_hash: bytes | None,
    verifier: CheckpointVerifier,
) -> dict[str, Any]:
    return {
        "type": "header",
        "format": FORMAT,
        "version": VERSION,
        "tenant_id": str(tenant_id),
        "from_seq": from_seq,
        "to_seq": to_seq,
        "prev_hash": prev_hash.hex() if prev_hash is not None else None,
        "exported_at": timestamp_text(dt.datetime.now(dt.UTC)),
        "public_keys": [pem.decode() for pem in verifier.public_key_pems()],
    }


def export_bundle(
    conninfo: str,
    tenant_id: uuid.UUID,
    verifier: CheckpointVerifier,
    anchors: AnchorLog,
    out: IO[str],
    *,
    from_seq: int = 1,
    to_seq: int | None = None,
) -> int:
    """Write the range's bundle to ``out``; return how many records it holds. Blocking:
    streams the records through a server-side cursor (callers use a thread)."""

    def in_range(seq: int) -> bool:
        return seq >= from_seq and (to_seq is None or seq <= to_seq)

    count = 0
    with ledger_range(conninfo, tenant_id, from_seq, to_seq) as stored:
        _line(out, header_fields(tenant_id, from_seq, to_seq, stored.prev_hash, verifier))
        for cp in stored.checkpoints:
            if in_range(cp.seq):
                _line(out, {"type": "checkpoint", **anchor_fields(cp)})
        for anchor in anchors.anchors:
            if in_range(anchor.seq):
                _line(out, {"type": "anchor", **anchor_fields(anchor)})
        for record in stored.records:
            _line(out, record_line(record))
            count += 1
    return count


# --- reading --------------------------------------------------------------------------------


def _parse_header(line: str) -> Header:
    try:
        fields = json.loads(line)
    except ValueError as exc:
        raise UnusableBundle("the first line is not JSON") from exc
    if not isinstance(fields, dict) or fields.get("format") != FORMAT:
        raise UnusableBundle(f"not a {FORMAT} file")
    if fields.get("version") != VERSION:
        raise UnusableBundle(f"bundle version {fields.get('version')!r} is not supported")
    try:
        to_seq = fields["to_seq"]
        prev = fields["prev_hash"]
        header = Header(
            tenant_id=uuid.UUID(fields["tenant_id"]),
            from_seq=int(fields["from_seq"]),
            to_seq=int(to_seq) if to_seq is not None else None,
            prev_hash=bytes.fromhex(prev) if prev is not None else None,
            exported_at=dt.datetime.fromisoformat(fields["exported_at"]),
            public_keys=tuple(pem.encode() for pem in fields["public_keys"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UnusableBundle(f"the header is not well formed ({exc})") from exc
    if header.from_seq < 1 or (header.to_seq is not None and header.to_seq < header.from_seq):
        raise UnusableBundle("the header's range is not valid")
    return header


def record_from_fields(fields: dict[str, Any]) -> LedgerRecord:
    try:
        entry = LedgerEntry(
            tenant_id=uuid.UUID(fields["tenant_id"]),
            event_id=uuid.UUID(fields["event_id"]),
            kind=RecordKind(fields["kind"]),
            occurred_at=dt.datetime.fromisoformat(fields["occurred_at"]),
            trace_id=fields["trace_id"],
            actor=fields["actor"],
            action=fields["action"],
            resource_type=fields["resource_type"],
            resource_id=fields["resource_id"],
            outcome=fields["outcome"],
            agent_id=fields["agent_id"],
            tool_name=fields["tool_name"],
            details=fields["details"],
        )
        seq = fields["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise TypeError("seq must be an integer")
        return LedgerRecord(
            entry, seq, bytes.fromhex(fields["prev_hash"]), bytes.fromhex(fields["hash"])
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UnusableBundle(f"a record line is not well formed ({exc})") from exc


class _Reader:
    """Reads a bundle's lines in order: header, checkpoints and anchors, then records."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._number = 1
        first = next(lines, "")
        if not first.strip():
            raise UnusableBundle("the file is empty")
        self.header = _parse_header(first)
        self.checkpoints: list[Checkpoint] = []
        self.anchors: list[Checkpoint] = []
        self.malformed_anchors = 0
        self._first_record: dict[str, Any] | None = None
        for fields in self._objects():
            kind = fields.get("type")
            if kind == "record":
                self._first_record = fields
                break
            if kind not in ("checkpoint", "anchor"):
                raise UnusableBundle(f"line {self._number}: unknown line type {kind!r}")
            try:
                cp = anchor_from_fields(fields)
            except MalformedAnchor as exc:
                if kind == "checkpoint":
                    raise UnusableBundle(f"line {self._number}: {exc}") from exc
                self.malformed_anchors += 1  # judged like one on the stream
                continue
            (self.checkpoints if kind == "checkpoint" else self.anchors).append(cp)

    def _objects(self) -> Iterator[dict[str, Any]]:
        for line in self._lines:
            self._number += 1
            if not line.strip():
                continue
            try:
                fields = json.loads(line)
            except ValueError as exc:
                raise UnusableBundle(f"line {self._number} is not JSON") from exc
            if not isinstance(fields, dict):
                raise UnusableBundle(f"line {self._number} is not a JSON object")
            yield fields

    def records(self) -> Iterator[LedgerRecord]:
        if self._first_record is None:
            return
        yield record_from_fields(self._first_record)
        for fields in self._objects():
            if fields.get("type") != "record":
                raise UnusableBundle(f"line {self._number}: only records may follow records")
            yield record_from_fields(fields)


def verify_bundle(
    path: Path,
    trusted_keys: bytes | None = None,
    *,
    progress: Callable[[int], None] = lambda _: None,
    progress_every: int = PROGRESS_EVERY,
) -> BundleVerdict:
    """Verify the bundle at ``path`` with ``trusted_keys`` (PEM), else the bundle's own;
    ``progress`` is told the count every ``progress_every`` records.
    :class:`UnusableBundle` when the file cannot be read as a bundle."""
    try:
        with path.open(encoding="utf-8") as fh:
            return _verify(fh, trusted_keys, progress, progress_every)
    except (OSError, UnicodeDecodeError) as exc:
        raise UnusableBundle(f"cannot read {path}: {exc}") from exc


def _verify(
    fh: IO[str],
    trusted_keys: bytes | None,
    progress: Callable[[int], None],
    progress_every: int,
) -> BundleVerdict:
    reader = _Reader(iter(fh))
    header = reader.header
    pems = split_pems(trusted_keys) if trusted_keys is not None else list(header.public_keys)
    try:
        verifier = CheckpointVerifier(pems)
    except ValueError as exc:
        raise UnusableBundle(str(exc)) from exc

    def counted() -> Iterator[LedgerRecord]:
        for n, record in enumerate(reader.records(), start=1):
            if n % progress_every == 0:
                progress(n)
            yield record

    result = verify_chain(
        counted(),
        reader.checkpoints,
        verifier,
        tenant_id=header.tenant_id,
        start_seq=header.from_seq,
        expected_prev_hash=header.prev_hash,
        last_seq=header.to_seq,
        anchors=AnchorLog(tuple(reader.anchors), reader.malformed_anchors),
    )
    pins = [
        cp.seq
        for cp in (*reader.checkpoints, *reader.anchors)
        if cp.seq >= header.from_seq and verifier.verify(cp)
    ]
    return BundleVerdict(result, header, trusted_keys is None, max(pins, default=None))
