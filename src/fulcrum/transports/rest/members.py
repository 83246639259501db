"""``/v1/members``: the caller's tenant's members."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from fulcrum.auth.principal import Principal
from fulcrum.auth.scopes import Scope
from fulcrum.transports.rest.auth import RequireScopes, services_of
from fulcrum.transports.rest.schemas import AddMemberIn, MemberOut, MemberPage, UpdateMemberIn

router = APIRouter(prefix="/v1/members", tags=["members"])
Reader = Annotated[Principal, Depends(RequireScopes(Scope.MEMBERS_READ))]
Manager = Annotated[Principal, Depends(RequireScopes(Scope.MEMBERS_MANAGE))]


@router.get("")
async def list_members(
    request: Request,
    who: Reader,
    page_size: Annotated[int, Query(ge=0, le=200)] = 0,
    page_token: Annotated[str, Query(max_length=512)] = "",
) -> MemberPage:
    members, token = await services_of(request).members.list(who, size=page_size, token=page_token)
    return MemberPage(members=[MemberOut.of(m) for m in members], next_page_token=token)


@router.get("/{member_id}")
async def get_member(member_id: str, request: Request, who: Reader) -> MemberOut:
    return MemberOut.of(await services_of(request).members.get(who, member_id))


@router.post("", status_code=201)
async def add_member(body: AddMemberIn, request: Request, who: Manager) -> MemberOut:
    member = await services_of(request).members.add(
        who, external_user_id=body.external_user_id, role=body.role
    )
    return MemberOut.of(member)


@router.patch("/{member_id}")
async def update_member(
    member_id: str, body: UpdateMemberIn, request: Request, who: Manager
) -> MemberOut:
    return MemberOut.of(await services_of(request).members.update_role(who, member_id, body.role))


@router.delete("/{member_id}", status_code=204)
async def remove_member(member_id: str, request: Request, who: Manager) -> Response:
    await services_of(request).members.remove(who, member_id)
    return Response(status_code=204)
