"""``/v1/me/invitations``: the signed-in user's own pending invitations, outside any tenant."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from fulcrum.auth.principal import Principal
from fulcrum.auth.scopes import Scope
from fulcrum.transports.rest.auth import RequireScopes, services_of
from fulcrum.transports.rest.schemas import InvitationList, InvitationOut, MemberOut

router = APIRouter(prefix="/v1/me/invitations", tags=["invitations"])
User = Annotated[Principal, Depends(RequireScopes(Scope.INVITATIONS_RESPOND, user_only=True))]


@router.get("")
async def list_my_invitations(request: Request, who: User) -> InvitationList:
    found = await services_of(request).invitations.list_mine(who)
    return InvitationList(invitations=[InvitationOut.of(i) for i in found])


@router.post("/{invitation_id}/accept")
async def accept_invitation(invitation_id: str, request: Request, who: User) -> MemberOut:
    return MemberOut.of(await services_of(request).invitations.accept(who, invitation_id))


@router.post("/{invitation_id}/decline", status_code=204)
async def decline_invitation(invitation_id: str, request: Request, who: User) -> Response:
    await services_of(request).invitations.decline(who, invitation_id)
    return Response(status_code=204)
