"""gRPC door onto a signed-in user's own invitations."""

from __future__ import annotations

from typing import Any

import grpc

from fulcrum.container import Services
from fulcrum.members import operations as ops
from fulcrum.members.wire import invitation_message, member_message
from fulcrum.pb.v1 import (
    invitations_pb2,
    invitations_pb2_grpc,
)
from fulcrum.transports.grpc.auth import current_principal, rpcs

Context = grpc.aio.ServicerContext[Any, Any]


class InvitationServicer(invitations_pb2_grpc.InvitationServiceServicer):
    def __init__(self, services: Services) -> None:
        self._invitations = services.invitations

    async def ListMyInvitations(  # noqa: N802
        self, request: invitations_pb2.ListMyInvitationsRequest, context: Context
    ) -> invitations_pb2.ListMyInvitationsResponse:
        found = await self._invitations.list_mine(current_principal.get())
        return invitations_pb2.ListMyInvitationsResponse(
            invitations=[invitation_message(i) for i in found]
        )

    async def AcceptInvitation(  # noqa: N802
        self, request: invitations_pb2.AcceptInvitationRequest, context: Context
    ) -> invitations_pb2.AcceptInvitationResponse:
        member = await self._invitations.accept(current_principal.get(), request.invitation_id)
        return invitations_pb2.AcceptInvitationResponse(member=member_message(member))

    async def DeclineInvitation(  # noqa: N802
        self, request: invitations_pb2.DeclineInvitationRequest, context: Context
    ) -> invitations_pb2.DeclineInvitationResponse:
        await self._invitations.decline(current_principal.get(), request.invitation_id)
        return invitations_pb2.DeclineInvitationResponse()


SERVICE = invitations_pb2.DESCRIPTOR.services_by_name["InvitationService"].full_name
OPERATIONS = rpcs(
    SERVICE,
    {
        "ListMyInvitations": ops.LIST_INVITATIONS,
        "AcceptInvitation": ops.ACCEPT_INVITATION,
        "DeclineInvitation": ops.DECLINE_INVITATION,
    },
)


def register(server: grpc.aio.Server, services: Services) -> None:
    invitations_pb2_grpc.add_InvitationServiceServicer_to_server(
        InvitationServicer(services), server
    )
