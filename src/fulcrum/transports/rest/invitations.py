"""``/v1/me/invitations``: the signed-in user's own pending invitations, outside any tenant."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from fulcrum.auth.principal import Principal
from fulcrum.members import operations as ops
from fulcrum.members.models import Invitation
from fulcrum.members.wire import invitation_body
from fulcrum.transports.rest.auth import allowed, services_of
from fulcrum.transports.rest.members import MemberOut, member_out


class InvitationOut(BaseModel):
    id: str  # the pending member's id
    tenant_id: str
    tenant_name: str
    role: str
    invited_by: str | None
    created_at: dt.datetime


class InvitationList(BaseModel):
    invitations: list[InvitationOut]


def _invitation(value: Invitation) -> InvitationOut:
    return InvitationOut.model_validate(invitation_body(value))


router = APIRouter(prefix="/v1/me/invitations", tags=["invitations"])


@router.get("")
async def list_my_invitations(
    request: Request, who: Annotated[Principal, allowed(ops.LIST_INVITATIONS)]
) -> InvitationList:
    found = await services_of(request).invitations.list_mine(who)
    return InvitationList(invitations=[_invitation(i) for i in found])


@router.post("/{invitation_id}/accept")
async def accept_invitation(
    invitation_id: str, request: Request, who: Annotated[Principal, allowed(ops.ACCEPT_INVITATION)]
) -> MemberOut:
    return member_out(await services_of(request).invitations.accept(who, invitation_id))


@router.post("/{invitation_id}/decline", status_code=204)
async def decline_invitation(
    invitation_id: str, request: Request, who: Annotated[Principal, allowed(ops.DECLINE_INVITATION)]
) -> Response:
    await services_of(request).invitations.decline(who, invitation_id)
    return Response(status_code=204)
