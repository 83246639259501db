"""The one gRPC enforcement point. Every call passes, in order: its trace context
(``observe``), admission (``auth``: authentication, the operation's scopes, the rate
limit), the handler, error mapping (``errors``), then its count, duration and log line."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import structlog

from fulcrum.kit.logging import AccessSample
from fulcrum.kit.tracing import current_trace_id, from_traceparent
from fulcrum.transports.grpc.auth import PUBLIC_SERVICES, Caller, Gate, current_principal, tolerant
from fulcrum.transports.grpc.errors import abort_with, code_of
from fulcrum.transports.grpc.observe import CallRecord


def _metadata(details: grpc.HandlerCallDetails, name: str) -> str | None:
    for key, value in details.invocation_metadata or ():
        if key == name:
            return value if isinstance(value, str) else None
    return None


@dataclass(frozen=True)
class _Call:
    method: str
    authorization: str | None
    tenant_hint: str | None
    traceparent: str | None
    inner: Any  # the servicer method: a coroutine (or async generator) function
    streaming: bool


class GuardInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, gate: Gate, access_log: AccessSample) -> None:
        self._gate = gate
        self._access_log = access_log

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if method.startswith(PUBLIC_SERVICES) or handler is None:
            return handler
        if handler.request_streaming:
            # No Fulcrum RPC streams requests; anything that does is refused, never unguarded.
            return grpc.stream_unary_rpc_method_handler(_refuse_unguarded)
        call = _Call(
            method=method,
            authorization=_metadata(handler_call_details, "authorization"),
            tenant_hint=_metadata(handler_call_details, "x-fulcrum-tenant"),
            traceparent=_metadata(handler_call_details, "traceparent"),
            inner=handler.unary_stream or handler.unary_unary,
            streaming=handler.response_streaming,
        )
        make = (
            grpc.unary_stream_rpc_method_handler
            if call.streaming
            else grpc.unary_unary_rpc_method_handler
        )
        guard = self._guard_stream if call.streaming else self._guard_unary
        return make(
            functools.partial(guard, call),
            request_deserializer=tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )

    async def _guard_unary(
        self, call: _Call, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        answers = [answer async for answer in self._guard_stream(call, request, context)]
        return answers[0] if answers else None

    async def _guard_stream(
        self, call: _Call, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        """Admit the call, run the handler, map errors, then count, time and log it.
        Unary calls are a stream of one answer."""
        method = call.method
        record = CallRecord(from_traceparent(call.traceparent))
        token = current_trace_id.set(record.trace.trace_id)
        structlog.contextvars.bind_contextvars(request_id=record.request_id)
        try:
            caller = Caller(method, call.authorization, call.tenant_hint, context.peer())
            principal = await self._gate.admit(caller, request, context)
            record.tenant = str(principal.tenant_id) if principal.tenant_id else None
            current_principal.set(principal)
            await context.send_initial_metadata((("traceparent", record.trace.traceparent),))
            if call.streaming:
                async for answer in call.inner(request, context):
                    yield answer
            else:
                yield await call.inner(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            record.code = code_of(exc)
            await abort_with(context, exc, method)
        finally:
            record.observe(method, self._access_log)
            current_trace_id.reset(token)
            structlog.contextvars.unbind_contextvars("request_id", "tenant_id")


async def _refuse_unguarded(_: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
    await context.abort(grpc.StatusCode.PERMISSION_DENIED, "this RPC declares no scope")
