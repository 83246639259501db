"""A member and an invitation on each wire: protobuf and the REST body."""

from __future__ import annotations

from typing import Any

from fulcrum.kit.timestamps import timestamp
from fulcrum.members.models import Invitation, Member
from fulcrum.pb.v1 import invitations_pb2, members_pb2


def _member_fields(m: Member) -> dict[str, Any]:
    return {
        "id": str(m.id),
        "external_user_id": m.external_user_id,
        "role": m.role.value,
        "status": m.status.value,  # "invited" until the user accepts, then "active"
    }


def member_body(m: Member) -> dict[str, Any]:
    return {**_member_fields(m), "invited_by": m.invited_by, "created_at": m.created_at}


def member_message(m: Member) -> members_pb2.Member:
    return members_pb2.Member(
        **_member_fields(m), invited_by=m.invited_by or "", create_time=timestamp(m.created_at)
    )


def _invitation_fields(i: Invitation) -> dict[str, Any]:
    return {
        "id": str(i.member.id),  # the pending member's id
        "tenant_id": str(i.member.tenant_id),
        "tenant_name": i.tenant_name,
        "role": i.member.role.value,
    }


def invitation_body(i: Invitation) -> dict[str, Any]:
    return {
        **_invitation_fields(i),
        "invited_by": i.member.invited_by,
        "created_at": i.member.created_at,
    }


def invitation_message(i: Invitation) -> invitations_pb2.Invitation:
    return invitations_pb2.Invitation(
        **_invitation_fields(i),
        invited_by=i.member.invited_by or "",
        create_time=timestamp(i.member.created_at),
    )
