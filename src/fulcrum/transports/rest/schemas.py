"""REST request and response bodies. Requests refuse unknown fields."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from fulcrum.api_keys.models import ApiKey
from fulcrum.members.models import Invitation, Member
from fulcrum.tenants.models import Tenant


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=10_000)


class TenantOut(BaseModel):
    id: str
    name: str
    status: str
    created_at: dt.datetime

    @classmethod
    def of(cls, t: Tenant) -> TenantOut:
        return cls(id=str(t.id), name=t.name, status=t.status.value, created_at=t.created_at)


class CreateTenantIn(Request):
    name: str = Field(max_length=200)
    owner_user_id: str | None = Field(default=None, max_length=400)


class CreateTenantOut(BaseModel):
    tenant: TenantOut
    owner_api_key: str


class TenantPage(BaseModel):
    tenants: list[TenantOut]
    next_page_token: str


class MemberOut(BaseModel):
    id: str
    external_user_id: str
    role: str
    status: str  # "invited" until the user accepts, then "active"
    invited_by: str | None
    created_at: dt.datetime

    @classmethod
    def of(cls, m: Member) -> MemberOut:
        return cls(
            id=str(m.id),
            external_user_id=m.external_user_id,
            role=m.role.value,
            status=m.status.value,
            invited_by=m.invited_by,
            created_at=m.created_at,
        )


class InvitationOut(BaseModel):
    id: str  # the pending member's id
    tenant_id: str
    tenant_name: str
    role: str
    invited_by: str | None
    created_at: dt.datetime

    @classmethod
    def of(cls, i: Invitation) -> InvitationOut:
        return cls(
            id=str(i.member.id),
            tenant_id=str(i.member.tenant_id),
            tenant_name=i.tenant_name,
            role=i.member.role.value,
            invited_by=i.member.invited_by,
            created_at=i.member.created_at,
        )


class InvitationList(BaseModel):
    invitations: list[InvitationOut]


class AddMemberIn(Request):
    external_user_id: str = Field(max_length=400)
    role: str = Field(max_length=100)


class UpdateMemberIn(Request):
    role: str = Field(max_length=100)


class MemberPage(BaseModel):
    members: list[MemberOut]
    next_page_token: str


class ApiKeyOut(BaseModel):
    id: str
    name: str
    scopes: list[str]
    created_at: dt.datetime
    created_by: str
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None
    rotated_from: str | None
    owner: str | None  # the member the key belongs to; null for a service key
    service: bool

    @classmethod
    def of(cls, k: ApiKey) -> ApiKeyOut:
        return cls(
            id=k.id,
            name=k.name,
            scopes=sorted(k.scopes),
            created_at=k.created_at,
            created_by=k.created_by,
            expires_at=k.expires_at,
            revoked_at=k.revoked_at,
            last_used_at=k.last_used_at,
            rotated_from=k.rotated_from,
            owner=str(k.owner_member_id) if k.owner_member_id else None,
            service=k.service,
        )


class CreateApiKeyIn(Request):
    name: str = Field(max_length=200)
    scopes: list[str] = Field(max_length=50)
    expires_at: dt.datetime | None = None
    # A tenant service key outlives every member; only an owner creates one.
    service: bool = False


class CreateApiKeyOut(BaseModel):
    api_key: ApiKeyOut
    secret: str


class RotateApiKeyIn(Request):
    old_key_valid_until: dt.datetime | None = None


class RotateApiKeyOut(BaseModel):
    api_key: ApiKeyOut
    secret: str
    previous_api_key: ApiKeyOut


class ApiKeyPage(BaseModel):
    api_keys: list[ApiKeyOut]
    next_page_token: str
