"""``/v1/audit``: query, fetch, export (JSON lines) and verify the ledger (``audit:read``)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from fulcrum.audit.records import LedgerRecord
from fulcrum.audit.service import AuditQuery
from fulcrum.auth.principal import Principal
from fulcrum.auth.scopes import Scope
from fulcrum.transports.rest.auth import RequireScopes, services_of

router = APIRouter(prefix="/v1/audit", tags=["audit"])
Reader = Annotated[Principal, Depends(RequireScopes(Scope.AUDIT_READ))]


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

    @classmethod
    def of(cls, r: LedgerRecord) -> AuditRecordOut:
        e = r.entry
        return cls(
            seq=r.seq,
            event_id=str(e.event_id),
            kind=e.kind.value,
            occurred_at=e.occurred_at,
            trace_id=e.trace_id,
            actor=e.actor,
            action=e.action,
            resource_type=e.resource_type,
            resource_id=e.resource_id,
            outcome=e.outcome,
            agent_id=e.agent_id,
            tool_name=e.tool_name,
            details=e.details,
            prev_hash=r.prev_hash.hex(),
            hash=r.hash.hex(),
        )


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
    model_config = ConfigDict(extra="forbid")

    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    agent_id: str = Field(default="", max_length=256)
    tool_name: str = Field(default="", max_length=256)
    action: str = Field(default="", max_length=256)
    actor: str = Field(default="", max_length=256)
    trace_id: str = Field(default="", max_length=256)
    page_size: int = Field(default=0, ge=0, le=200)
    page_token: str = Field(default="", max_length=32)


@router.get("/records")
async def list_records(
    request: Request, who: Reader, q: Annotated[AuditFilterIn, Query()]
) -> AuditPage:
    query = AuditQuery(
        q.start_time, q.end_time, q.agent_id, q.tool_name, q.action, q.actor, q.trace_id
    )
    records, token = await services_of(request).audit.list(
        who, query, size=q.page_size, token=q.page_token
    )
    return AuditPage(records=[AuditRecordOut.of(r) for r in records], next_page_token=token)


@router.get("/records/{seq}")
async def get_record(seq: int, request: Request, who: Reader) -> AuditRecordOut:
    return AuditRecordOut.of(await services_of(request).audit.get(who, seq))


@router.get("/export", response_class=StreamingResponse)
async def export_records(
    request: Request,
    who: Reader,
    from_seq: Annotated[int, Query(ge=0)] = 1,
    to_seq: Annotated[int, Query(ge=0)] = 0,
) -> StreamingResponse:
    records = await services_of(request).audit.export(who, from_seq, to_seq or None)

    async def lines() -> AsyncIterator[bytes]:
        async for record in records:
            yield (json.dumps(AuditRecordOut.of(record).model_dump(mode="json")) + "\n").encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.post("/verify")
async def verify_ledger(
    request: Request,
    who: Reader,
    from_seq: Annotated[int, Query(ge=0)] = 1,
    to_seq: Annotated[int, Query(ge=0)] = 0,
) -> VerificationOut:
    result = await services_of(request).audit.verify(who, from_seq, to_seq or None)
    return VerificationOut(
        ok=result.ok,
        checked=result.checked,
        first_bad_seq=result.first_bad_seq,
        problem=result.problem,
        detail=result.detail,
    )
