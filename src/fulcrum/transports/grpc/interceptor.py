"""The one gRPC enforcement point. Every call passes, in order: its trace context
(``observe``), admission (``auth``: authentication, the operation's scopes, the rate
limit), the handler, error mapping (``errors``), then its count, duration and log line."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import Token
from dataclasses import dataclass
from typing import Any

import grpc
import structlog

from fulcrum.kit.logging import AccessSample
from fulcrum.kit.tracing import current_trace_id, from_traceparent
from fulcrum.transports.grpc.auth import PUBLIC_SERVICES, Caller, Gate, current_principal, tolerant
from fulcrum.transports.grpc.errors import abort_with, code_of
from fulcrum.transports.grpc.observe import CallRecord


def _metadata(context: grpc.aio.ServicerContext[Any, Any], *names: str) -> list[str | None]:
    found: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if key in names and key not in found and isinstance(value, str):
            found[key] = value
    return [found.get(name) for name in names]


@dataclass(frozen=True)
class _Method:
    name: str
    inner: Any  # the servicer method: a coroutine (or async generator) function


class GuardInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Each method's guarded handler is built once, on its first call: a call costs a dict
    lookup here, and its credentials are read from the call's own metadata."""

    def __init__(self, gate: Gate, access_log: AccessSample) -> None:
        self._gate = gate
        self._access_log = access_log
        self._guarded: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        method = handler_call_details.method
        guarded = self._guarded.get(method)
        if guarded is not None:
            return guarded
        handler = await continuation(handler_call_details)
        if method.startswith(PUBLIC_SERVICES) or handler is None:
            return handler
        guarded = self._guard(method, handler)
        self._guarded[method] = guarded
        return guarded

    def _guard(
        self, name: str, handler: grpc.RpcMethodHandler[Any, Any]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        if handler.request_streaming:
            # No Fulcrum RPC streams requests; anything that does is refused, never unguarded.
            return grpc.stream_unary_rpc_method_handler(_refuse_unguarded)
        deserializer = tolerant(handler.request_deserializer)
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(
                functools.partial(self._guard_stream, _Method(name, handler.unary_stream)),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.unary_unary_rpc_method_handler(
            functools.partial(self._guard_unary, _Method(name, handler.unary_unary)),
            request_deserializer=deserializer,
            response_serializer=handler.response_serializer,
        )

    def _begin(
        self, method: _Method, context: grpc.aio.ServicerContext[Any, Any]
    ) -> tuple[CallRecord, Token[str | None], Caller]:
        authorization, tenant_hint, traceparent = _metadata(
            context, "authorization", "x-fulcrum-tenant", "traceparent"
        )
        record = CallRecord(from_traceparent(traceparent))
        token = current_trace_id.set(record.trace.trace_id)
        structlog.contextvars.bind_contextvars(request_id=record.request_id)
        return record, token, Caller(method.name, authorization, tenant_hint, context.peer())

    async def _admit(
        self,
        caller: Caller,
        record: CallRecord,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> None:
        principal = await self._gate.admit(caller, request, context)
        record.tenant = str(principal.tenant_id) if principal.tenant_id else None
        current_principal.set(principal)
        await context.send_initial_metadata((("traceparent", record.trace.traceparent),))

    def _end(self, method: _Method, record: CallRecord, token: Token[str | None]) -> None:
        record.observe(method.name, self._access_log)
        current_trace_id.reset(token)
        structlog.contextvars.unbind_contextvars("request_id", "tenant_id")

    async def _guard_unary(
        self, method: _Method, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        """Admit the call, run the handler, map errors, then count, time and log it."""
        record, token, caller = self._begin(method, context)
        try:
            await self._admit(caller, record, request, context)
            return await method.inner(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            record.code = code_of(exc)
            await abort_with(context, exc, method.name)
        finally:
            self._end(method, record, token)

    async def _guard_stream(
        self, method: _Method, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        """As :meth:`_guard_unary`, for a stream of answers."""
        record, token, caller = self._begin(method, context)
        try:
            await self._admit(caller, record, request, context)
            async for answer in method.inner(request, context):
                yield answer
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            record.code = code_of(exc)
            await abort_with(context, exc, method.name)
        finally:
            self._end(method, record, token)


async def _refuse_unguarded(_: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
    await context.abort(grpc.StatusCode.PERMISSION_DENIED, "this RPC declares no scope")
