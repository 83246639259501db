"""The one gRPC enforcement point: trace context, authentication, HasScope, error mapping.

Every RPC must appear in ``RPC_SCOPES``; an RPC that does not is refused (fail closed),
except the health and reflection services.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import grpc
import structlog
from google.protobuf import any_pb2, unknown_fields
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from fulcrum.auth.principal import Principal
from fulcrum.auth.scopes import Scope
from fulcrum.authn.authenticator import Authenticator, AuthThrottled
from fulcrum.authn.guard import peer_host
from fulcrum.decisions.service import MAX_BATCH
from fulcrum.kit.dependencies import dependency_error
from fulcrum.kit.errors import FulcrumError, InvalidArgument, PermissionDenied
from fulcrum.kit.logging import get_logger
from fulcrum.kit.tracing import TraceContext, current_trace_id, from_traceparent
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
_I = "/fulcrum.v1.InvitationService/"
_K = "/fulcrum.v1.ApiKeyService/"
_P = "/fulcrum.v1.PolicyService/"
_D = "/fulcrum.v1.DecisionService/"
_S = "/fulcrum.v1.SettingsService/"
_A = "/fulcrum.v1.AuditService/"

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
    f"{_I}ListMyInvitations": (Scope.INVITATIONS_RESPOND,),
    f"{_I}AcceptInvitation": (Scope.INVITATIONS_RESPOND,),
    f"{_I}DeclineInvitation": (Scope.INVITATIONS_RESPOND,),
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
    f"{_A}ListAuditRecords": (Scope.AUDIT_READ,),
    f"{_A}GetAuditRecord": (Scope.AUDIT_READ,),
    f"{_A}ExportAuditRecords": (Scope.AUDIT_READ,),
    f"{_A}VerifyAuditLedger": (Scope.AUDIT_READ,),
}

# RPCs of a signed-in user outside any tenant: authenticated with ``user_only``, so the
# principal is the user alone; no other RPC ever sees that principal.
USER_RPCS = frozenset({f"{_I}ListMyInvitations", f"{_I}AcceptInvitation", f"{_I}DeclineInvitation"})

# RPCs that evaluate many requests in one call: each item costs a token, charged at once
# (all or none) after the number of items is checked against the batch limit.
PER_ITEM: dict[str, Callable[[Any], int]] = {
    f"{_D}EvaluateBatch": lambda request: len(request.requests),
    f"{_P}SimulatePolicy": lambda request: len(request.requests),
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


async def _abort_exhausted(
    context: grpc.aio.ServicerContext[Any, Any],
    message: str,
    retry_after_seconds: int | None,
    metadata: tuple[tuple[str, str], ...],
) -> None:
    """RESOURCE_EXHAUSTED with google.rpc.RetryInfo in the status details (none when
    retrying is futile, e.g. a batch larger than the burst)."""
    details = []
    if retry_after_seconds is not None:
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromSeconds(retry_after_seconds)
        detail = any_pb2.Any()
        detail.Pack(retry)
        details.append(detail)
    status = rpc_status.to_status(
        status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=message, details=details)
    )
    await context.abort(
        status.code, status.details, trailing_metadata=(*status.trailing_metadata, *metadata)
    )


def _metadata(details: grpc.HandlerCallDetails, name: str) -> str | None:
    for key, value in details.invocation_metadata or ():
        if key == name:
            return value if isinstance(value, str) else None
    return None


@dataclass(frozen=True)
class Undecodable:
    """What a request that does not parse becomes, so that the call is authenticated before
    it is refused. Left to grpc, a failing deserializer answers UNKNOWN with the exception's
    text before any interceptor runs, to callers without credentials too."""

    message_type: str


def _tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None
    # The generated stubs pass ``MessageClass.FromString``; its class names the type.
    descriptor = getattr(getattr(deserialize, "__self__", None), "DESCRIPTOR", None)
    message_type = getattr(descriptor, "full_name", "request message")

    def tolerant(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception:  # DecodeError, or anything else bytes from a client can cause
            return Undecodable(message_type)

    return tolerant


@dataclass(frozen=True)
class _Call:
    method: str
    scopes: tuple[Scope, ...] | None
    inner: Any  # the servicer method: a coroutine (or async generator) function
    streaming: bool
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
        if method.startswith(PUBLIC_SERVICES) or handler is None:
            return handler
        if handler.request_streaming:
            # No Fulcrum RPC streams requests; anything that does is refused, never unguarded.
            return grpc.stream_unary_rpc_method_handler(_refuse_unguarded)
        call = _Call(
            method=method,
            scopes=RPC_SCOPES.get(method),
            inner=handler.unary_stream or handler.unary_unary,
            streaming=handler.response_streaming,
            authorization=_metadata(handler_call_details, "authorization"),
            tenant_hint=_metadata(handler_call_details, "x-fulcrum-tenant"),
            traceparent=_metadata(handler_call_details, "traceparent"),
        )
        make = (
            grpc.unary_stream_rpc_method_handler
            if call.streaming
            else grpc.unary_unary_rpc_method_handler
        )
        guard = self._guard_stream if call.streaming else self._guard_unary
        return make(
            functools.partial(guard, call),
            request_deserializer=_tolerant(handler.request_deserializer),
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
        state = _CallState(from_traceparent(call.traceparent))
        token = current_trace_id.set(state.trace.trace_id)
        structlog.contextvars.bind_contextvars(request_id=state.request_id)
        try:
            current_principal.set(await self._admit(call, request, context, state))
            await context.send_initial_metadata((("traceparent", state.trace.traceparent),))
            if call.streaming:
                async for answer in call.inner(request, context):
                    yield answer
            else:
                yield await call.inner(request, context)
        except RateLimited as exc:
            state.code = grpc.StatusCode.RESOURCE_EXHAUSTED
            retry = exc.decision.retry_after_seconds if exc.decision.fits else None
            await _abort_exhausted(context, exc.message, retry, _metadata_of(exc.decision))
        except AuthThrottled as exc:
            state.code = grpc.StatusCode.RESOURCE_EXHAUSTED
            retry_after = exc.retry_after_seconds
            await _abort_exhausted(
                context, exc.message, retry_after, (("retry-after", str(retry_after)),)
            )
        except FulcrumError as exc:
            state.code = STATUS.get(exc.code, grpc.StatusCode.INTERNAL)
            await context.abort(state.code, status_message(exc))
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            known = dependency_error(exc)
            if known is not None:
                if known.code == "unavailable":
                    log.warning("grpc.dependency_unavailable", method=call.method, exc_info=exc)
                else:
                    log.info(
                        "grpc.transaction_conflict", method=call.method, error=type(exc).__name__
                    )
                state.code = STATUS[known.code]
                await context.abort(state.code, known.message)
            log.error("grpc.unhandled", method=call.method, error=type(exc).__name__, exc_info=exc)
            state.code = grpc.StatusCode.INTERNAL
            await context.abort(state.code, "internal error")
        finally:
            state.observe(call.method)
            current_trace_id.reset(token)
            structlog.contextvars.unbind_contextvars("request_id", "tenant_id")

    async def _admit(
        self,
        call: _Call,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        state: _CallState,
    ) -> Principal:
        """HasScope for gRPC: authenticate, check scopes, charge the rate limit."""
        if call.scopes is None:
            raise PermissionDenied("this RPC declares no scope")
        principal = await self._authenticator.authenticate(
            call.authorization,
            call.tenant_hint,
            user_only=call.method in USER_RPCS,
            client=peer_host(context.peer()),
        )
        state.tenant = str(principal.tenant_id) if principal.tenant_id else None
        structlog.contextvars.bind_contextvars(tenant_id=state.tenant)
        principal.require(*call.scopes)
        cost = 1
        items = PER_ITEM.get(call.method)
        if items is not None and not isinstance(request, Undecodable):
            cost = items(request)
            if cost > MAX_BATCH:
                raise InvalidArgument(f"at most {MAX_BATCH} requests per batch", field="requests")
        decision = await self._rate_limiter.check(principal, max(1, cost))
        if decision is not None:
            context.set_trailing_metadata(_metadata_of(decision))
        if isinstance(request, Undecodable):
            raise InvalidArgument(f"the request is not a valid {request.message_type}")
        if isinstance(request, Message) and (field := unknown_field(request)):
            raise InvalidArgument("unknown field", field=field)
        return principal


@dataclass
class _CallState:
    trace: TraceContext
    code: grpc.StatusCode = grpc.StatusCode.OK
    tenant: str | None = None
    request_id: str = field(default_factory=lambda: secrets.token_hex(8))
    started: float = field(default_factory=time.perf_counter)

    def observe(self, method: str) -> None:
        elapsed = time.perf_counter() - self.started
        REQUESTS.labels(transport="grpc", route=method, code=self.code.name).inc()
        REQUEST_DURATION.labels(transport="grpc", route=method).observe(elapsed)
        access_log.info(
            "request",
            transport="grpc",
            route=method,
            status=self.code.name,
            duration_ms=round(elapsed * 1000, 3),
            tenant_id=self.tenant,
            request_id=self.request_id,
            trace_id=self.trace.trace_id,
        )


async def _refuse_unguarded(_: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
    await context.abort(grpc.StatusCode.PERMISSION_DENIED, "this RPC declares no scope")
