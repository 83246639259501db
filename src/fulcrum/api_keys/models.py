"""API key records as the services see them. The hash never leaves the repository's
authentication lookup."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from fulcrum.auth.scopes import Scope
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
