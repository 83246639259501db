"""``/v1/members``: the caller's tenant's members."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from fulcrum.auth.principal import Principal
from fulcrum.members import operations as ops
from fulcrum.members.models import Member
from fulcrum.members.wire import member_body
from fulcrum.transports.rest.auth import allowed, services_of
from fulcrum.transports.rest.bodies import StrictBody


class MemberOut(BaseModel):
    id: str
    external_user_id: str
    role: str
    status: str  # "invited" until the user accepts, then "active"
    invited_by: str | None
    created_at: dt.datetime


class AddMemberIn(StrictBody):
    external_user_id: str
    role: str


class UpdateMemberIn(StrictBody):
    role: str


class MemberPage(BaseModel):
    members: list[MemberOut]
    next_page_token: str


def member_out(value: Member) -> MemberOut:
    return MemberOut.model_validate(member_body(value))


router = APIRouter(prefix="/v1/members", tags=["members"])


@router.get("")
async def list_members(
    request: Request,
    who: Annotated[Principal, allowed(ops.LIST)],
    page_size: int = 0,
    page_token: str = "",
) -> MemberPage:
    members, token = await services_of(request).members.list(who, size=page_size, token=page_token)
    return MemberPage(members=[member_out(m) for m in members], next_page_token=token)


@router.get("/{member_id}")
async def get_member(
    member_id: str, request: Request, who: Annotated[Principal, allowed(ops.GET)]
) -> MemberOut:
    return member_out(await services_of(request).members.get(who, member_id))


@router.post("", status_code=201)
async def add_member(
    body: AddMemberIn, request: Request, who: Annotated[Principal, allowed(ops.ADD)]
) -> MemberOut:
    member = await services_of(request).members.add(
        who, external_user_id=body.external_user_id, role=body.role
    )
    return member_out(member)


@router.patch("/{member_id}")
async def update_member(
    member_id: str,
    body: UpdateMemberIn,
    request: Request,
    who: Annotated[Principal, allowed(ops.UPDATE_ROLE)],
) -> MemberOut:
    return member_out(await services_of(request).members.update_role(who, member_id, body.role))


@router.delete("/{member_id}", status_code=204)
async def remove_member(
    member_id: str, request: Request, who: Annotated[Principal, allowed(ops.REMOVE)]
) -> Response:
    await services_of(request).members.remove(who, member_id)
    return Response(status_code=204)
