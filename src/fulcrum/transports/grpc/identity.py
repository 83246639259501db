"""gRPC doors onto the tenant, member and API key services (thin: convert and call)."""

from __future__ import annotations

from typing import Any

import grpc

from fulcrum.container import Services
from fulcrum.pb.v1 import (
    api_keys_pb2,
    api_keys_pb2_grpc,
    invitations_pb2,
    invitations_pb2_grpc,
    members_pb2,
    members_pb2_grpc,
    tenants_pb2,
    tenants_pb2_grpc,
)
from fulcrum.tenants.models import TenantStatus
from fulcrum.transports.grpc import convert
from fulcrum.transports.grpc.interceptor import current_principal

Context = grpc.aio.ServicerContext[Any, Any]


class TenantServicer(tenants_pb2_grpc.TenantServiceServicer):
    def __init__(self, services: Services) -> None:
        self._tenants = services.tenants

    async def CreateTenant(  # noqa: N802
        self, request: tenants_pb2.CreateTenantRequest, context: Context
    ) -> tenants_pb2.CreateTenantResponse:
        tenant, issued = await self._tenants.create(
            current_principal.get(), name=request.name, owner_user_id=request.owner_user_id or None
        )
        return tenants_pb2.CreateTenantResponse(
            tenant=convert.tenant(tenant), owner_api_key=issued.secret
        )

    async def GetTenant(  # noqa: N802
        self, request: tenants_pb2.GetTenantRequest, context: Context
    ) -> tenants_pb2.GetTenantResponse:
        tenant = await self._tenants.get(current_principal.get(), request.tenant_id)
        return tenants_pb2.GetTenantResponse(tenant=convert.tenant(tenant))

    async def ListTenants(  # noqa: N802
        self, request: tenants_pb2.ListTenantsRequest, context: Context
    ) -> tenants_pb2.ListTenantsResponse:
        tenants, token = await self._tenants.list(
            current_principal.get(), size=request.page_size, token=request.page_token
        )
        return tenants_pb2.ListTenantsResponse(
            tenants=[convert.tenant(t) for t in tenants], next_page_token=token
        )

    async def SuspendTenant(  # noqa: N802
        self, request: tenants_pb2.SuspendTenantRequest, context: Context
    ) -> tenants_pb2.SuspendTenantResponse:
        tenant = await self._tenants.set_status(
            current_principal.get(), request.tenant_id, TenantStatus.SUSPENDED
        )
        return tenants_pb2.SuspendTenantResponse(tenant=convert.tenant(tenant))

    async def ResumeTenant(  # noqa: N802
        self, request: tenants_pb2.ResumeTenantRequest, context: Context
    ) -> tenants_pb2.ResumeTenantResponse:
        tenant = await self._tenants.set_status(
            current_principal.get(), request.tenant_id, TenantStatus.ACTIVE
        )
        return tenants_pb2.ResumeTenantResponse(tenant=convert.tenant(tenant))


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
            members=[convert.member(m) for m in members], next_page_token=token
        )

    async def GetMember(  # noqa: N802
        self, request: members_pb2.GetMemberRequest, context: Context
    ) -> members_pb2.GetMemberResponse:
        member = await self._members.get(current_principal.get(), request.member_id)
        return members_pb2.GetMemberResponse(member=convert.member(member))

    async def AddMember(  # noqa: N802
        self, request: members_pb2.AddMemberRequest, context: Context
    ) -> members_pb2.AddMemberResponse:
        member = await self._members.add(
            current_principal.get(), external_user_id=request.external_user_id, role=request.role
        )
        return members_pb2.AddMemberResponse(member=convert.member(member))

    async def UpdateMemberRole(  # noqa: N802
        self, request: members_pb2.UpdateMemberRoleRequest, context: Context
    ) -> members_pb2.UpdateMemberRoleResponse:
        member = await self._members.update_role(
            current_principal.get(), request.member_id, request.role
        )
        return members_pb2.UpdateMemberRoleResponse(member=convert.member(member))

    async def RemoveMember(  # noqa: N802
        self, request: members_pb2.RemoveMemberRequest, context: Context
    ) -> members_pb2.RemoveMemberResponse:
        await self._members.remove(current_principal.get(), request.member_id)
        return members_pb2.RemoveMemberResponse()


class InvitationServicer(invitations_pb2_grpc.InvitationServiceServicer):
    def __init__(self, services: Services) -> None:
        self._invitations = services.invitations

    async def ListMyInvitations(  # noqa: N802
        self, request: invitations_pb2.ListMyInvitationsRequest, context: Context
    ) -> invitations_pb2.ListMyInvitationsResponse:
        found = await self._invitations.list_mine(current_principal.get())
        return invitations_pb2.ListMyInvitationsResponse(
            invitations=[convert.invitation(i) for i in found]
        )

    async def AcceptInvitation(  # noqa: N802
        self, request: invitations_pb2.AcceptInvitationRequest, context: Context
    ) -> invitations_pb2.AcceptInvitationResponse:
        member = await self._invitations.accept(current_principal.get(), request.invitation_id)
        return invitations_pb2.AcceptInvitationResponse(member=convert.member(member))

    async def DeclineInvitation(  # noqa: N802
        self, request: invitations_pb2.DeclineInvitationRequest, context: Context
    ) -> invitations_pb2.DeclineInvitationResponse:
        await self._invitations.decline(current_principal.get(), request.invitation_id)
        return invitations_pb2.DeclineInvitationResponse()


class ApiKeyServicer(api_keys_pb2_grpc.ApiKeyServiceServicer):
    def __init__(self, services: Services) -> None:
        self._keys = services.api_keys

    async def CreateApiKey(  # noqa: N802
        self, request: api_keys_pb2.CreateApiKeyRequest, context: Context
    ) -> api_keys_pb2.CreateApiKeyResponse:
        expires = (
            convert.from_timestamp(request.expire_time, "expire_time")
            if request.HasField("expire_time")
            else None
        )
        issued = await self._keys.create(
            current_principal.get(),
            name=request.name,
            scopes=list(request.scopes),
            expires_at=expires,
            service=request.service,
        )
        return api_keys_pb2.CreateApiKeyResponse(
            api_key=convert.api_key(issued.key), secret=issued.secret
        )

    async def GetApiKey(  # noqa: N802
        self, request: api_keys_pb2.GetApiKeyRequest, context: Context
    ) -> api_keys_pb2.GetApiKeyResponse:
        key = await self._keys.get(current_principal.get(), request.api_key_id)
        return api_keys_pb2.GetApiKeyResponse(api_key=convert.api_key(key))

    async def ListApiKeys(  # noqa: N802
        self, request: api_keys_pb2.ListApiKeysRequest, context: Context
    ) -> api_keys_pb2.ListApiKeysResponse:
        keys, token = await self._keys.list(
            current_principal.get(), size=request.page_size, token=request.page_token
        )
        return api_keys_pb2.ListApiKeysResponse(
            api_keys=[convert.api_key(k) for k in keys], next_page_token=token
        )

    async def RevokeApiKey(  # noqa: N802
        self, request: api_keys_pb2.RevokeApiKeyRequest, context: Context
    ) -> api_keys_pb2.RevokeApiKeyResponse:
        key = await self._keys.revoke(current_principal.get(), request.api_key_id)
        return api_keys_pb2.RevokeApiKeyResponse(api_key=convert.api_key(key))

    async def RotateApiKey(  # noqa: N802
        self, request: api_keys_pb2.RotateApiKeyRequest, context: Context
    ) -> api_keys_pb2.RotateApiKeyResponse:
        until = (
            convert.from_timestamp(request.old_key_valid_until, "old_key_valid_until")
            if request.HasField("old_key_valid_until")
            else None
        )
        issued, previous = await self._keys.rotate(
            current_principal.get(), request.api_key_id, old_valid_until=until
        )
        return api_keys_pb2.RotateApiKeyResponse(
            api_key=convert.api_key(issued.key),
            secret=issued.secret,
            previous_api_key=convert.api_key(previous),
        )
