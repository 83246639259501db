"""gRPC door onto a tenant's members."""

from __future__ import annotations

from typing import Any

import grpc

from fulcrum.container import Services
from fulcrum.members import operations as ops
from fulcrum.members.wire import member_message
from fulcrum.pb.v1 import (
    members_pb2,
    members_pb2_grpc,
)
from fulcrum.transports.grpc.auth import current_principal, rpcs

Context = grpc.aio.ServicerContext[Any, Any]


class MemberServicer(members_pb2_grpc.MemberServiceServicer):
    def __init__(self, services: Services) -> None:
        self._members = services.members

    async def ListMembers(  # noqa: N802
        self, request: members_pb2.ListMembersRequest, context: Context
    ) -> members_pb2.ListMembersResponse:
        members, token = await self._members.list(
            current_principal.get(), size=request.page_size, token=request.page_token
        )
        return members_pb2.ListMembersResponse(
            members=[member_message(m) for m in members], next_page_token=token
        )

    async def GetMember(  # noqa: N802
        self, request: members_pb2.GetMemberRequest, context: Context
    ) -> members_pb2.GetMemberResponse:
        member = await self._members.get(current_principal.get(), request.member_id)
        return members_pb2.GetMemberResponse(member=member_message(member))

    async def AddMember(  # noqa: N802
        self, request: members_pb2.AddMemberRequest, context: Context
    ) -> members_pb2.AddMemberResponse:
        member = await self._members.add(
            current_principal.get(), external_user_id=request.external_user_id, role=request.role
        )
        return members_pb2.AddMemberResponse(member=member_message(member))

    async def UpdateMemberRole(  # noqa: N802
        self, request: members_pb2.UpdateMemberRoleRequest, context: Context
    ) -> members_pb2.UpdateMemberRoleResponse:
        member = await self._members.update_role(
            current_principal.get(), request.member_id, request.role
        )
        return members_pb2.UpdateMemberRoleResponse(member=member_message(member))

    async def RemoveMember(  # noqa: N802
        self, request: members_pb2.RemoveMemberRequest, context: Context
    ) -> members_pb2.RemoveMemberResponse:
        await self._members.remove(current_principal.get(), request.member_id)
        return members_pb2.RemoveMemberResponse()


SERVICE = members_pb2.DESCRIPTOR.services_by_name["MemberService"].full_name
OPERATIONS = rpcs(
    SERVICE,
    {
        "ListMembers": ops.LIST,
        "GetMember": ops.GET,
        "AddMember": ops.ADD,
        "UpdateMemberRole": ops.UPDATE_ROLE,
        "RemoveMember": ops.REMOVE,
    },
)


def register(server: grpc.aio.Server, services: Services) -> None:
    members_pb2_grpc.add_MemberServiceServicer_to_server(MemberServicer(services), server)
