from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from enum import StrEnum

from fulcrum.auth.scopes import Role


class MemberStatus(StrEnum):
    # Added by a tenant and not yet accepted by the user: it does not sign in.
    INVITED = "invited"
    ACTIVE = "active"


@dataclass(frozen=True)
class Member:
    id: uuid.UUID
    tenant_id: uuid.UUID
    external_user_id: str
    role: Role
    created_at: dt.datetime
    status: MemberStatus = MemberStatus.ACTIVE
    invited_by: str | None = None


@dataclass(frozen=True)
class Invitation:
    """A user's pending membership, as the invited user sees it."""

    member: Member
    tenant_name: str
