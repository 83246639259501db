"""The one error root.

    FulcrumError                    code        meaning
    ├── InvalidArgument             invalid_argument   bad input; names the field
    ├── Unauthenticated             unauthenticated    missing or bad credentials
    ├── PermissionDenied            permission_denied  a scope is missing
    ├── NotFound                    not_found          absent, or another tenant's
    ├── Conflict                    conflict           state forbids the change
    ├── ResourceExhausted           resource_exhausted rate limit or back-pressure
    ├── Unavailable                 unavailable        a dependency is down
    └── ConfigurationError          configuration      the process cannot start

Each transport maps ``code`` to its status in exactly one place.
"""

from __future__ import annotations


class FulcrumError(Exception):
    code = "internal"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


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


class Unavailable(FulcrumError):
    code = "unavailable"


class ConfigurationError(FulcrumError):
    code = "configuration"
