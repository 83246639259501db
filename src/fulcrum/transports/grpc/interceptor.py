"""The one gRPC enforcement point: trace context, authentication, HasScope, error mapping.

Every RPC must appear in ``RPC_SCOPES``; an RPC that does not is refused (fail closed),
except the health and reflection services.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc
import structlog
from google.protobuf import any_pb2, unknown_fields
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from fulcrum.auth.authenticator import Authenticator
from fulcrum.auth.principal import Principal
from fulcrum.auth.scopes import Scope
from fulcrum.kit.dependencies import unavailable
from fulcrum.kit.errors import FulcrumError, InvalidArgument
from fulcrum.kit.logging import get_logger
from fulcrum.kit.tracing import current_trace_id, from_traceparent
from fulcrum.observability.metrics import REQUEST_DURATION, REQUESTS
from fulcrum.ratelimit.limiter import RateDecision, RateLimited, RateLimiter

log = get_logger(__name__)
access_log = get_logger("fulcrum.access")

current_principal: ContextVar[Principal] = ContextVar("principal")

PUBLIC_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)

_T = "/fulcrum.v1.TenantService/"
_M = "/fulcrum.v1.MemberService/"
_K = "/fulcrum.v1.ApiKeyService/"
_P = "/fulcrum.v1.PolicyService/"
_D = "/fulcrum.v1.DecisionService/"
_S = "/fulcrum.v1.SettingsService/"

RPC_SCOPES: dict[str, tuple[Scope, ...]] = {
    f"{_T}CreateTenant": (Scope.TENANTS_ADMIN,),
    f"{_T}GetTenant": (Scope.TENANTS_ADMIN,),
    f"{_T}ListTenants": (Scope.TENANTS_ADMIN,),
    f"{_T}SuspendTenant": (Scope.TENANTS_ADMIN,),
    f"{_T}ResumeTenant": (Scope.TENANTS_ADMIN,),
    f"{_M}ListMembers": (Scope.MEMBERS_READ,),
    f"{_M}GetMember": (Scope.MEMBERS_READ,),
    f"{_M}AddMember": (Scope.MEMBERS_MANAGE,),
    f"{_M}UpdateMemberRole": (Scope.MEMBERS_MANAGE,),
    f"{_M}RemoveMember": (Scope.MEMBERS_MANAGE,),
    f"{_K}CreateApiKey": (Scope.KEYS_MANAGE,),
    f"{_K}GetApiKey": (Scope.KEYS_READ,),
    f"{_K}ListApiKeys": (Scope.KEYS_READ,),
    f"{_K}RevokeApiKey": (Scope.KEYS_MANAGE,),
    f"{_K}RotateApiKey": (Scope.KEYS_MANAGE,),
    f"{_P}CreatePolicy": (Scope.POLICIES_WRITE,),
    f"{_P}GetPolicy": (Scope.POLICIES_READ,),
    f"{_P}GetPolicyVersion": (Scope.POLICIES_READ,),
    f"{_P}ListPolicies": (Scope.POLICIES_READ,),
    f"{_P}UpdatePolicy": (Scope.POLICIES_WRITE,),
    f"{_P}ActivatePolicy": (Scope.POLICIES_WRITE,),
    f"{_P}DisablePolicy": (Scope.POLICIES_WRITE,),
    f"{_P}DeletePolicy": (Scope.POLICIES_WRITE,),
    f"{_P}SimulatePolicy": (Scope.POLICIES_READ,),
    f"{_D}Evaluate": (Scope.DECISIONS_EVALUATE,),
    f"{_D}EvaluateBatch": (Scope.DECISIONS_EVALUATE,),
    f"{_S}GetSettings": (Scope.SETTINGS_READ,),
    f"{_S}UpdateSettings": (Scope.SETTINGS_MANAGE,),
}

STATUS = {
    "invalid_argument": grpc.StatusCode.INVALID_ARGUMENT,
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
    "permission_denied": grpc.StatusCode.PERMISSION_DENIED,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "conflict": grpc.StatusCode.FAILED_PRECONDITION,
    "resource_exhausted": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
}


def status_message(exc: FulcrumError) -> str:
    return f"{exc.field}: {exc.message}" if exc.field else exc.message


def unknown_field(message: Message, path: str = "") -> str | None:
    """The path of the first field the server's schema does not know, if any.

    Proto3 would silently drop such fields; refusing them tells a client at once that it
    speaks a newer or different API than this server.
    """
    unknown = unknown_fields.UnknownFieldSet(message)
    if len(unknown):
        return f"{path}#{unknown[0].field_number}"
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        values = value if descriptor.is_repeated else [value]
        for item in values:
            if isinstance(item, Message):
                found = unknown_field(item, f"{path}{descriptor.name}.")
                if found:
                    return found
    return None


def _metadata_of(decision: RateDecision) -> tuple[tuple[str, str], ...]:
    return tuple((name.lower(), value) for name, value in decision.headers().items())


async def _abort_rate_limited(
    context: grpc.aio.ServicerContext[Any, Any], exc: RateLimited
) -> None:
    """RESOURCE_EXHAUSTED with google.rpc.RetryInfo in the status details."""
    retry = error_details_pb2.RetryInfo()
    retry.retry_delay.FromSeconds(exc.decision.retry_after_seconds)
    detail = any_pb2.Any()
    detail.Pack(retry)
    status = rpc_status.to_status(
        status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=exc.message, details=[detail])
    )
    await context.abort(
        status.code,
        status.details,
        trailing_metadata=(*status.trailing_metadata, *_metadata_of(exc.decision)),
    )


def _metadata(details: grpc.HandlerCallDetails, name: str) -> str | None:
    for key, value in details.invocation_metadata or ():
        if key == name:
            return value if isinstance(value, str) else None
    return None


@dataclass(frozen=True)
class _Call:
    method: str
    scopes: tuple[Scope, ...] | None
    inner: Any  # the servicer method: a coroutine function under grpc.aio
    authorization: str | None
    tenant_hint: str | None
    traceparent: str | None


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self, authenticator: Authenticator, rate_limiter: RateLimiter) -> None:
        self._authenticator = authenticator
        self._rate_limiter = rate_limiter

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if method.startswith(PUBLIC_SERVICES) or handler is None or handler.unary_unary is None:
            return handler
        call = _Call(
            method=method,
            scopes=RPC_SCOPES.get(method),
            inner=handler.unary_unary,
            authorization=_metadata(handler_call_details, "authorization"),
            tenant_hint=_metadata(handler_call_details, "x-fulcrum-tenant"),
            traceparent=_metadata(handler_call_details, "traceparent"),
        )
        return grpc.unary_unary_rpc_method_handler(
            functools.partial(self._guard, call),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _guard(
        self, call: _Call, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        method = call.method
        started = time.perf_counter()
        trace = from_traceparent(call.traceparent)
        token = current_trace_id.set(trace.trace_id)
        request_id = secrets.token_hex(8)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        code = grpc.StatusCode.OK
        tenant: str | None = None
        try:
            if call.scopes is None:
                code = grpc.StatusCode.PERMISSION_DENIED
                await context.abort(code, "this RPC declares no scope")
            principal = await self._authenticator.authenticate(call.authorization, call.tenant_hint)
            tenant = str(principal.tenant_id) if principal.tenant_id else None
            structlog.contextvars.bind_contextvars(tenant_id=tenant)
            principal.require(*call.scopes)
            decision = await self._rate_limiter.check(principal)
            if decision is not None:
                context.set_trailing_metadata(_metadata_of(decision))
            if isinstance(request, Message) and (field := unknown_field(request)):
                raise InvalidArgument("unknown field", field=field)
            current_principal.set(principal)
            await context.send_initial_metadata((("traceparent", trace.traceparent),))
            return await call.inner(request, context)
        except RateLimited as exc:
            code = grpc.StatusCode.RESOURCE_EXHAUSTED
            await _abort_rate_limited(context, exc)
        except FulcrumError as exc:
            code = STATUS.get(exc.code, grpc.StatusCode.INTERNAL)
            await context.abort(code, status_message(exc))
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            down = unavailable(exc)
            if down is not None:
                log.warning("grpc.dependency_unavailable", method=method, exc_info=exc)
                code = grpc.StatusCode.UNAVAILABLE
                await context.abort(code, down.message)
            log.error("grpc.unhandled", method=method, error=type(exc).__name__, exc_info=exc)
            code = grpc.StatusCode.INTERNAL
            await context.abort(code, "internal error")
        finally:
            elapsed = time.perf_counter() - started
            REQUESTS.labels(transport="grpc", route=method, code=code.name).inc()
            REQUEST_DURATION.labels(transport="grpc", route=method).observe(elapsed)
            access_log.info(
                "request",
                transport="grpc",
                route=method,
                status=code.name,
                duration_ms=round(elapsed * 1000, 3),
                tenant_id=tenant,
                request_id=request_id,
                trace_id=trace.trace_id,
            )
            current_trace_id.reset(token)
            structlog.contextvars.unbind_contextvars("request_id", "tenant_id")
