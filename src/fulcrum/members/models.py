from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from fulcrum.auth.scopes import Role


@dataclass(frozen=True)
class Member:
    id: uuid.UUID
    tenant_id: uuid.UUID
    external_user_id: str
    role: Role
    created_at: dt.datetime
