"""API key records as the services see them. The hash never leaves the repository's
authentication lookup."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from fulcrum.auth.scopes import ROLE_SCOPES, Role, Scope
from fulcrum.ratelimit.limits import RateLimits


@dataclass(frozen=True)
class ApiKey:
    id: str
    tenant_id: uuid.UUID
    name: str
    scopes: frozenset[Scope]
    created_at: dt.datetime
    created_by: str
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None
    rotated_from: str | None
    # The member the key belongs to; it works only while that member is active and their
    # role holds every scope of the key. None with ``service``: the tenant's own key.
    owner_member_id: uuid.UUID | None = None
    service: bool = False


@dataclass(frozen=True)
class IssuedKey:
    """A key just created or rotated: the only time its secret exists outside the client."""

    key: ApiKey
    secret: str


@dataclass(frozen=True)
class StoredCredential:
    """What authentication needs to check one presented key."""

    id: str
    tenant_id: uuid.UUID
    hash: bytes
    scopes: frozenset[Scope]
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    tenant_active: bool
    limits: RateLimits | None = None
    service: bool = True  # platform keys and tenant service keys belong to no member
    owner_member_id: uuid.UUID | None = None
    owner_role: Role | None = None  # the owner's role while they are an active member

    @property
    def owner_allows(self) -> bool:
        """A member's key works only while its owner is active and holds all its scopes."""
        if self.service:
            return True
        return self.owner_role is not None and self.scopes <= ROLE_SCOPES[self.owner_role]
