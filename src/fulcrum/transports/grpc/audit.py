"""gRPC door onto the audit ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from fulcrum.audit import operations as ops
from fulcrum.audit.service import AuditQuery
from fulcrum.audit.wire import record_message
from fulcrum.container import Services
from fulcrum.kit.timestamps import from_timestamp
from fulcrum.pb.v1 import audit_pb2, audit_pb2_grpc
from fulcrum.transports.grpc.auth import current_principal, rpcs

Context = grpc.aio.ServicerContext[Any, Any]


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
            records=[record_message(r) for r in records], next_page_token=token
        )

    async def GetAuditRecord(  # noqa: N802
        self, request: audit_pb2.GetAuditRecordRequest, context: Context
    ) -> audit_pb2.GetAuditRecordResponse:
        found = await self._audit.get(current_principal.get(), request.seq)
        return audit_pb2.GetAuditRecordResponse(record=record_message(found))

    async def ExportAuditRecords(  # noqa: N802
        self, request: audit_pb2.ExportAuditRecordsRequest, context: Context
    ) -> AsyncIterator[audit_pb2.ExportAuditRecordsResponse]:
        records = await self._audit.export(
            current_principal.get(), request.from_seq, request.to_seq or None
        )
        async for found in records:
            yield audit_pb2.ExportAuditRecordsResponse(record=record_message(found))

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


SERVICE = audit_pb2.DESCRIPTOR.services_by_name["AuditService"].full_name
OPERATIONS = rpcs(
    SERVICE,
    {
        "ListAuditRecords": ops.LIST,
        "GetAuditRecord": ops.GET,
        "ExportAuditRecords": ops.EXPORT,
        "VerifyAuditLedger": ops.VERIFY,
    },
)


def register(server: grpc.aio.Server, services: Services) -> None:
    audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(services), server)
