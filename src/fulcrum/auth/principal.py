"""The authenticated caller of one request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from fulcrum.auth.limits import RateLimits
from fulcrum.auth.operations import Operation
from fulcrum.auth.scopes import Scope
from fulcrum.kit.db import Operator, PlatformProof
from fulcrum.kit.errors import PermissionDenied


class PrincipalKind(StrEnum):
    API_KEY = "api_key"
    MEMBER = "member"
    PLATFORM = "platform"
    # A signed-in user outside any tenant: only their own invitations (USER_SCOPES).
    USER = "user"


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    scopes: frozenset[Scope]
    # "key:<id>", "user:<clerk user id>" or "platform:<key id>": recorded as the actor.
    actor: str
    tenant_id: uuid.UUID | None = None
    key_id: str | None = None
    external_user_id: str | None = None
    # The member acting: the signed-in member, or the member who owns the key. None for a
    # tenant service key, a platform key or a user outside any tenant.
    member_id: uuid.UUID | None = None
    limits: RateLimits | None = None  # the tenant's rate limits; None for platform keys
    # Platform principals: what shows the database their right to administer tenants.
    platform: PlatformProof | Operator | None = field(default=None, repr=False)

    def authorize(self, operation: Operation) -> None:
        """HasScope for ``operation``: raise naming the first scope the principal lacks."""
        self.require(*operation.scopes)

    def require(self, *needed: Scope) -> None:
        """HasScope: raise naming the first missing scope."""
        for scope in needed:
            if scope not in self.scopes:
                raise PermissionDenied(f"missing scope {scope}")

    def require_platform(self) -> PlatformProof | Operator:
        if self.platform is None:
            raise PermissionDenied("this operation needs a platform credential")
        return self.platform

    def require_tenant(self) -> uuid.UUID:
        if self.tenant_id is None:
            raise PermissionDenied("this operation needs a tenant credential")
        return self.tenant_id
