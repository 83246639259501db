"""gRPC door onto the audit ledger."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import grpc

from fulcrum.audit.records import LedgerRecord
from fulcrum.audit.service import AuditQuery
from fulcrum.container import Services
from fulcrum.pb.v1 import audit_pb2, audit_pb2_grpc
from fulcrum.transports.grpc.convert import from_timestamp, timestamp
from fulcrum.transports.grpc.interceptor import current_principal

Context = grpc.aio.ServicerContext[Any, Any]


def record(r: LedgerRecord) -> audit_pb2.AuditRecord:
    e = r.entry
    return audit_pb2.AuditRecord(
        seq=r.seq,
        event_id=str(e.event_id),
        kind=e.kind.value,
        time=timestamp(e.occurred_at),
        trace_id=e.trace_id,
        actor=e.actor,
        action=e.action,
        resource_type=e.resource_type,
        resource_id=e.resource_id,
        outcome=e.outcome,
        agent_id=e.agent_id,
        tool_name=e.tool_name,
        details_json=json.dumps(e.details, sort_keys=True),
        prev_hash=r.prev_hash.hex(),
        hash=r.hash.hex(),
    )


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, services: Services) -> None:
        self._audit = services.audit

    async def ListAuditRecords(  # noqa: N802
        self, request: audit_pb2.ListAuditRecordsRequest, context: Context
    ) -> audit_pb2.ListAuditRecordsResponse:
        query = AuditQuery(
            since=(
                from_timestamp(request.start_time, "start_time")
                if request.HasField("start_time")
                else None
            ),
            until=(
                from_timestamp(request.end_time, "end_time")
                if request.HasField("end_time")
                else None
            ),
            agent_id=request.agent_id,
            tool_name=request.tool_name,
            action=request.action,
            actor=request.actor,
            trace_id=request.trace_id,
        )
        records, token = await self._audit.list(
            current_principal.get(), query, size=request.page_size, token=request.page_token
        )
        return audit_pb2.ListAuditRecordsResponse(
            records=[record(r) for r in records], next_page_token=token
        )

    async def GetAuditRecord(  # noqa: N802
        self, request: audit_pb2.GetAuditRecordRequest, context: Context
    ) -> audit_pb2.GetAuditRecordResponse:
        found = await self._audit.get(current_principal.get(), request.seq)
        return audit_pb2.GetAuditRecordResponse(record=record(found))

    async def ExportAuditRecords(  # noqa: N802
        self, request: audit_pb2.ExportAuditRecordsRequest, context: Context
    ) -> AsyncIterator[audit_pb2.ExportAuditRecordsResponse]:
        records = await self._audit.export(
            current_principal.get(), request.from_seq, request.to_seq or None
        )
        async for found in records:
            yield audit_pb2.ExportAuditRecordsResponse(record=record(found))

    async def VerifyAuditLedger(  # noqa: N802
        self, request: audit_pb2.VerifyAuditLedgerRequest, context: Context
    ) -> audit_pb2.VerifyAuditLedgerResponse:
        result = await self._audit.verify(
            current_principal.get(), request.from_seq or 1, request.to_seq or None
        )
        return audit_pb2.VerifyAuditLedgerResponse(
            ok=result.ok,
            checked=result.checked,
            first_bad_seq=result.first_bad_seq or 0,
            problem=result.problem or "",
            detail=result.detail,
        )
