"""Domain objects <-> protobuf messages."""

from __future__ import annotations

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp

from fulcrum.api_keys.models import ApiKey
from fulcrum.kit.errors import InvalidArgument
from fulcrum.members.models import Invitation, Member
from fulcrum.pb.v1 import api_keys_pb2, invitations_pb2, members_pb2, tenants_pb2
from fulcrum.tenants.models import Tenant, TenantStatus

_TENANT_STATUS = {
    TenantStatus.ACTIVE: tenants_pb2.TENANT_STATUS_ACTIVE,
    TenantStatus.SUSPENDED: tenants_pb2.TENANT_STATUS_SUSPENDED,
}


def timestamp(value: dt.datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def from_timestamp(ts: Timestamp, field: str) -> dt.datetime:
    try:
        return ts.ToDatetime(tzinfo=dt.UTC)
    except (ValueError, OverflowError):
        raise InvalidArgument("is not a valid timestamp", field=field) from None


def tenant(t: Tenant) -> tenants_pb2.Tenant:
    return tenants_pb2.Tenant(
        id=str(t.id),
        name=t.name,
        status=_TENANT_STATUS[t.status],
        create_time=timestamp(t.created_at),
    )


def member(m: Member) -> members_pb2.Member:
    return members_pb2.Member(
        id=str(m.id),
        external_user_id=m.external_user_id,
        role=m.role.value,
        create_time=timestamp(m.created_at),
        status=m.status.value,
        invited_by=m.invited_by or "",
    )


def invitation(i: Invitation) -> invitations_pb2.Invitation:
    return invitations_pb2.Invitation(
        id=str(i.member.id),
        tenant_id=str(i.member.tenant_id),
        tenant_name=i.tenant_name,
        role=i.member.role.value,
        invited_by=i.member.invited_by or "",
        create_time=timestamp(i.member.created_at),
    )


def api_key(k: ApiKey) -> api_keys_pb2.ApiKey:
    return api_keys_pb2.ApiKey(
        id=k.id,
        name=k.name,
        scopes=sorted(k.scopes),
        create_time=timestamp(k.created_at),
        expire_time=timestamp(k.expires_at),
        revoke_time=timestamp(k.revoked_at),
        last_used_time=timestamp(k.last_used_at),
        created_by=k.created_by,
        rotated_from=k.rotated_from or "",
        owner=str(k.owner_member_id) if k.owner_member_id else "",
        service=k.service,
    )
