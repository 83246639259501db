"""HasScope for gRPC: each RPC names the operation it serves (``OPERATIONS`` of its
servicer module); the call is authenticated, checked against the operation's scopes and
charged to the rate limit before its handler runs. An RPC that names none is refused (fail
closed), except the health and reflection services.

A request that does not parse, or carries fields this server does not know, is refused
only once the caller is admitted: left to grpc, a failing deserializer would answer
UNKNOWN, with the exception's text, to callers without credentials too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc
import structlog
from google.protobuf import unknown_fields
from google.protobuf.message import Message

from fulcrum.auth.operations import Operation
from fulcrum.auth.principal import Principal
from fulcrum.authn.authenticator import Authenticator
from fulcrum.authn.guard import peer_host
from fulcrum.kit.errors import InvalidArgument, PermissionDenied
from fulcrum.kit.validation import batch_cost
from fulcrum.ratelimit.limiter import RateLimiter

current_principal: ContextVar[Principal] = ContextVar("principal")

PUBLIC_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


def rpcs(service: str, operations: Mapping[str, Operation]) -> dict[str, Operation]:
    """A servicer's RPCs by full method name, from its service's name and method names."""
    return {f"/{service}/{method}": operation for method, operation in operations.items()}


@dataclass(frozen=True)
class Undecodable:
    """What a request that does not parse becomes, so that the call is authenticated before
    it is refused."""

    message_type: str


def tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None
    # The generated stubs pass ``MessageClass.FromString``; its class names the type.
    descriptor = getattr(getattr(deserialize, "__self__", None), "DESCRIPTOR", None)
    message_type = getattr(descriptor, "full_name", "request message")

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception:  # DecodeError, or anything else bytes from a client can cause
            return Undecodable(message_type)

    return parse


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


@dataclass(frozen=True)
class Caller:
    """What the gate knows of a call before it runs: its credentials and hints."""

    method: str
    authorization: str | None
    tenant_hint: str | None
    peer: str


class Gate:
    def __init__(
        self,
        authenticator: Authenticator,
        rate_limiter: RateLimiter,
        operations: Mapping[str, Operation],
    ) -> None:
        self._authenticator = authenticator
        self._rate_limiter = rate_limiter
        self._operations = operations

    async def admit(
        self, caller: Caller, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Principal:
        """Authenticate, check the operation's scopes, charge the rate limit; then refuse a
        request that did not parse. Raises to refuse."""
        operation = self._operations.get(caller.method)
        if operation is None:
            raise PermissionDenied("this RPC declares no scope")
        principal = await self._authenticator.authenticate(
            caller.authorization,
            caller.tenant_hint,
            user_only=operation.user_only,
            client=peer_host(caller.peer),
        )
        tenant = str(principal.tenant_id) if principal.tenant_id else None
        structlog.contextvars.bind_contextvars(tenant_id=tenant)
        principal.authorize(operation)
        cost = 1
        if operation.per_item and not isinstance(request, Undecodable):
            cost = batch_cost(len(request.requests))
        decision = await self._rate_limiter.check(principal, cost)
        if decision is not None:
            context.set_trailing_metadata(
                tuple((name.lower(), value) for name, value in decision.headers().items())
            )
        if isinstance(request, Undecodable):
            raise InvalidArgument(f"the request is not a valid {request.message_type}")
        if isinstance(request, Message) and (field := unknown_field(request)):
            raise InvalidArgument("unknown field", field=field)
        return principal
