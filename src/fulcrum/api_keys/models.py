"""API key records as the services see them. The hash never leaves authentication's
lookup (authn.repository)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from fulcrum.auth.scopes import Scope


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
