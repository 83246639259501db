"""``/v1/audit``: query, fetch, export (JSON lines) and verify the ledger (``audit:read``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict

from fulcrum.audit import operations as ops
from fulcrum.audit.records import LedgerRecord
from fulcrum.audit.service import AuditQuery
from fulcrum.audit.wire import record_body
from fulcrum.auth.principal import Principal
from fulcrum.transports.rest.auth import allowed, services_of

router = APIRouter(prefix="/v1/audit", tags=["audit"])


class AuditRecordOut(BaseModel):
    seq: int
    event_id: str
    kind: str
    occurred_at: dt.datetime
    trace_id: str
    actor: str
    action: str
    resource_type: str
    resource_id: str
    outcome: str
    agent_id: str
    tool_name: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


def _record(value: LedgerRecord) -> AuditRecordOut:
    return AuditRecordOut.model_validate(record_body(value))


class AuditPage(BaseModel):
    records: list[AuditRecordOut]
    next_page_token: str


class VerificationOut(BaseModel):
    ok: bool
    checked: int
    first_bad_seq: int | None
    problem: str | None
    detail: str


class AuditFilterIn(BaseModel):
    """The filters of a listing (query parameters; their limits are the service's)."""

    model_config = ConfigDict(extra="forbid")

    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    agent_id: str = ""
    tool_name: str = ""
    action: str = ""
    actor: str = ""
    trace_id: str = ""
    page_size: int = 0
    page_token: str = ""


@router.get("/records")
async def list_records(
    request: Request,
    who: Annotated[Principal, allowed(ops.LIST)],
    q: Annotated[AuditFilterIn, Query()],
) -> AuditPage:
    query = AuditQuery(
        q.start_time, q.end_time, q.agent_id, q.tool_name, q.action, q.actor, q.trace_id
    )
    records, token = await services_of(request).audit.list(
        who, query, size=q.page_size, token=q.page_token
    )
    return AuditPage(records=[_record(r) for r in records], next_page_token=token)


@router.get("/records/{seq}")
async def get_record(
    seq: int, request: Request, who: Annotated[Principal, allowed(ops.GET)]
) -> AuditRecordOut:
    return _record(await services_of(request).audit.get(who, seq))


@router.get("/export", response_class=StreamingResponse)
async def export_records(
    request: Request,
    who: Annotated[Principal, allowed(ops.EXPORT)],
    from_seq: int = 1,
    to_seq: int = 0,
) -> StreamingResponse:
    records = await services_of(request).audit.export(who, from_seq, to_seq or None)

    async def lines() -> AsyncIterator[bytes]:
        async for record in records:
            yield (_record(record).model_dump_json() + "\n").encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.post("/verify")
async def verify_ledger(
    request: Request,
    who: Annotated[Principal, allowed(ops.VERIFY)],
    from_seq: int = 1,
    to_seq: int = 0,
) -> VerificationOut:
    result = await services_of(request).audit.verify(who, from_seq, to_seq or None)
    return VerificationOut(
        ok=result.ok,
        checked=result.checked,
        first_bad_seq=result.first_bad_seq,
        problem=result.problem,
        detail=result.detail,
    )
