"""Reading and verifying the audit ledger (scope ``audit:read``)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from nats.aio.client import Client as NatsClient

from fulcrum.audit import operations as ops
from fulcrum.audit import repository as repo
from fulcrum.audit.anchors import read_anchors
from fulcrum.audit.checkpoints import CheckpointVerifier
from fulcrum.audit.records import LedgerRecord
from fulcrum.audit.verify_chain import VerificationResult
from fulcrum.audit.verify_stored import verify_tenant
from fulcrum.auth.principal import Principal
from fulcrum.kit.db import Database
from fulcrum.kit.errors import InvalidArgument, NotFound
from fulcrum.kit.pagination import page_size
from fulcrum.kit.validation import storable_text

MAX_FILTER_TEXT = 256
EXPORT_PAGE = 2000  # records read per transaction while exporting


@dataclass(frozen=True)
class AuditQuery:
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    agent_id: str = ""
    tool_name: str = ""
    action: str = ""
    actor: str = ""
    trace_id: str = ""

    def to_filter(self) -> repo.RecordFilter:
        for name in ("agent_id", "tool_name", "action", "actor", "trace_id"):
            if len(getattr(self, name)) > MAX_FILTER_TEXT:
                raise InvalidArgument(f"must be at most {MAX_FILTER_TEXT} characters", field=name)
            storable_text(getattr(self, name), name)  # a NUL would fail in PostgreSQL
        if self.since and self.until and self.since >= self.until:
            raise InvalidArgument("must be after start_time", field="end_time")
        return repo.RecordFilter(
            since=self.since,
            until=self.until,
            agent_id=self.agent_id or None,
            tool_name=self.tool_name or None,
            action=self.action or None,
            actor=self.actor or None,
            trace_id=self.trace_id or None,
        )


def parse_seq_token(token: str | None) -> int:
    if not token:
        return 0
    # isascii: "²".isdigit() is true, but int() refuses it.
    if not (token.isascii() and token.isdigit()) or len(token) > 19:
        raise InvalidArgument("invalid page token", field="page_token")
    return int(token)


MAX_SEQ = 2**63 - 1  # PostgreSQL's bigint; REST's integers are unbounded


def _range(from_seq: int, to_seq: int | None) -> tuple[int, int | None]:
    if from_seq < 0 or (to_seq is not None and to_seq < 0):
        raise InvalidArgument("must not be negative", field="from_seq")
    for name, value in (("from_seq", from_seq), ("to_seq", to_seq)):
        if value is not None and value > MAX_SEQ:
            raise InvalidArgument(f"must be at most {MAX_SEQ}", field=name)
    start = max(from_seq, 1)
    end = to_seq or None
    if end is not None and end < start:
        raise InvalidArgument("must not be before from_seq", field="to_seq")
    return start, end


class AuditService:
    def __init__(
        self,
        db: Database,
        conninfo: str,
        verifier: CheckpointVerifier,
        nats: Callable[[], NatsClient | None],
    ) -> None:
        self._db = db
        self._conninfo = conninfo
        self._verifier = verifier
        self._nats = nats  # the process's connection, once it is up

    async def list(
        self, principal: Principal, query: AuditQuery, *, size: int | None, token: str | None
    ) -> tuple[list[LedgerRecord], str]:
        principal.authorize(ops.LIST)
        tenant_id = principal.require_tenant()
        limit = page_size(size)
        where = query.to_filter()
        after = parse_seq_token(token)
        async with self._db.tenant_tx(tenant_id) as conn:
            records = await repo.find_records(conn, where, after, limit + 1)
        if len(records) > limit:
            records = records[:limit]
            return records, str(records[-1].seq)
        return records, ""

    async def get(self, principal: Principal, seq: int) -> LedgerRecord:
        principal.authorize(ops.GET)
        tenant_id = principal.require_tenant()
        if seq < 1:
            raise InvalidArgument("must be 1 or more", field="seq")
        async with self._db.tenant_tx(tenant_id) as conn:
            record = await repo.record_at(conn, seq)
        if record is None:
            raise NotFound(f"audit record {seq} not found")
        return record

    async def export(
        self, principal: Principal, from_seq: int, to_seq: int | None
    ) -> AsyncIterator[LedgerRecord]:
        """Check access now, then stream: errors surface before the first byte is sent."""
        principal.authorize(ops.EXPORT)
        tenant_id = principal.require_tenant()
        start, end = _range(from_seq, to_seq)

        async def stream() -> AsyncIterator[LedgerRecord]:
            # A page per short transaction: while a slow client reads, no pooled connection
            # is held. Records never change once written, so the pages join up exactly.
            after = start - 1
            while True:
                async with self._db.tenant_tx(tenant_id) as conn:
                    page = await repo.records_after(conn, after, end, EXPORT_PAGE)
                for record in page:
                    yield record
                if len(page) < EXPORT_PAGE:
                    return
                after = page[-1].seq

        return stream()

    async def verify(
        self, principal: Principal, from_seq: int = 1, to_seq: int | None = None
    ) -> VerificationResult:
        principal.authorize(ops.VERIFY)
        tenant_id = principal.require_tenant()
        start, end = _range(from_seq, to_seq)
        anchors = await read_anchors(self._nats(), tenant_id)  # before the database is read
        return await asyncio.to_thread(
            verify_tenant,
            self._conninfo,
            tenant_id,
            self._verifier,
            anchors=anchors,
            from_seq=start,
            to_seq=end,
        )
