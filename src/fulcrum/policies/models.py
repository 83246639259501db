from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class PolicyStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    DISABLED = "disabled"
    DELETED = "deleted"


@dataclass(frozen=True)
class Policy:
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    status: PolicyStatus
    mode: str
    priority: int
    current_version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    document: dict[str, Any]


@dataclass(frozen=True)
class PolicyVersion:
    policy_id: uuid.UUID
    version: int
    document: dict[str, Any]
    author: str
    created_at: dt.datetime


@dataclass(frozen=True)
class ActivePolicySet:
    """What a bundle compiles from: the tenant's active policies at one revision."""

    revision: int
    default_action: str
    policies: list[PolicyVersion]
