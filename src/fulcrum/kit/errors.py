"""The one error root.

    FulcrumError                    code        meaning
    ├── InvalidArgument             invalid_argument   bad input; names the field
    ├── Unauthenticated             unauthenticated    missing or bad credentials
    ├── PermissionDenied            permission_denied  a scope is missing
    ├── NotFound                    not_found          absent, or another tenant's
    ├── Conflict                    conflict           state forbids the change
    ├── ResourceExhausted           resource_exhausted a rate limit; retry after a while
    ├── Overloaded                  overloaded         back-pressure: shed now, retry soon
    ├── Unavailable                 unavailable        a dependency is down
    └── ConfigurationError          configuration      the process cannot start

Each transport maps ``code`` to its status in exactly one place, and carries the error's
data the same way whatever raised it: ``retry_after_seconds`` (REST's Retry-After, gRPC's
google.rpc.RetryInfo) and ``headers`` (REST headers, gRPC trailing metadata).
"""

from __future__ import annotations

from collections.abc import Mapping


class FulcrumError(Exception):
    code = "internal"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        retry_after_seconds: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.retry_after_seconds = retry_after_seconds
        self.headers: Mapping[str, str] = headers or {}


class InvalidArgument(FulcrumError):
    code = "invalid_argument"


class Unauthenticated(FulcrumError):
    code = "unauthenticated"


class PermissionDenied(FulcrumError):
    code = "permission_denied"


class NotFound(FulcrumError):
    code = "not_found"


class Conflict(FulcrumError):
    code = "conflict"


class ResourceExhausted(FulcrumError):
    code = "resource_exhausted"


class Overloaded(FulcrumError):
    code = "overloaded"


class Unavailable(FulcrumError):
    code = "unavailable"


class ConfigurationError(FulcrumError):
    code = "configuration"
