"""The one place gRPC maps errors to status codes. Messages never echo input values."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from fulcrum.kit.dependencies import dependency_error
from fulcrum.kit.errors import FulcrumError
from fulcrum.kit.logging import get_logger

log = get_logger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]

STATUS = {
    "invalid_argument": grpc.StatusCode.INVALID_ARGUMENT,
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
    "permission_denied": grpc.StatusCode.PERMISSION_DENIED,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "conflict": grpc.StatusCode.FAILED_PRECONDITION,
    "resource_exhausted": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "overloaded": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
}


def status_message(exc: FulcrumError) -> str:
    return f"{exc.field}: {exc.message}" if exc.field else exc.message


def code_of(exc: Exception) -> grpc.StatusCode:
    """The status an error ends a call with."""
    if isinstance(exc, FulcrumError):
        return STATUS.get(exc.code, grpc.StatusCode.INTERNAL)
    known = dependency_error(exc)
    return STATUS[known.code] if known is not None else grpc.StatusCode.INTERNAL


async def abort_with(context: Context, exc: Exception, method: str) -> None:
    """Abort the call for ``exc`` (raises grpc's AbortError)."""
    if isinstance(exc, FulcrumError):
        await _abort(context, code_of(exc), status_message(exc), exc)
    known = dependency_error(exc)
    if known is not None:
        # A known outage, or a transaction that lost to a concurrent one (retry): answered
        # and counted in the access log, no traceback for a conflict.
        if known.code == "unavailable":
            log.warning("grpc.dependency_unavailable", method=method, exc_info=exc)
        else:
            log.info("grpc.transaction_conflict", method=method, error=type(exc).__name__)
        await _abort(context, code_of(exc), known.message, known)
    log.error("grpc.unhandled", method=method, error=type(exc).__name__, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error")


async def _abort(context: Context, code: grpc.StatusCode, message: str, exc: FulcrumError) -> None:
    """Abort with the error's data: google.rpc.RetryInfo in the status details when it
    says when to retry, its headers as trailing metadata."""
    metadata = tuple((name.lower(), value) for name, value in exc.headers.items())
    if exc.retry_after_seconds is None:
        await context.abort(code, message, trailing_metadata=metadata)
    retry = error_details_pb2.RetryInfo()
    retry.retry_delay.FromSeconds(exc.retry_after_seconds)
    detail = any_pb2.Any()
    detail.Pack(retry)
    status = rpc_status.to_status(
        status_pb2.Status(code=code.value[0], message=message, details=[detail])
    )
    await context.abort(
        status.code, status.details, trailing_metadata=(*status.trailing_metadata, *metadata)
    )
