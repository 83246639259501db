"""gRPC door onto policies, their versions and the simulation of a draft."""

from __future__ import annotations

from typing import Any

import grpc

from fulcrum.container import Services
from fulcrum.decisions.wire import evaluation_message, message_input
from fulcrum.pb.v1 import (
    policies_pb2,
    policies_pb2_grpc,
)
from fulcrum.policies import operations as ops
from fulcrum.policies.models import PolicyStatus
from fulcrum.policies.wire import policy_message, version_message
from fulcrum.transports.grpc.auth import current_principal, rpcs

Context = grpc.aio.ServicerContext[Any, Any]


class PolicyServicer(policies_pb2_grpc.PolicyServiceServicer):
    def __init__(self, services: Services) -> None:
        self._policies = services.policies
        self._simulations = services.simulations

    async def CreatePolicy(  # noqa: N802
        self, request: policies_pb2.CreatePolicyRequest, context: Context
    ) -> policies_pb2.CreatePolicyResponse:
        created = await self._policies.create(current_principal.get(), request.document)
        return policies_pb2.CreatePolicyResponse(policy=policy_message(created))

    async def GetPolicy(  # noqa: N802
        self, request: policies_pb2.GetPolicyRequest, context: Context
    ) -> policies_pb2.GetPolicyResponse:
        found = await self._policies.get(current_principal.get(), request.policy_id)
        return policies_pb2.GetPolicyResponse(policy=policy_message(found))

    async def GetPolicyVersion(  # noqa: N802
        self, request: policies_pb2.GetPolicyVersionRequest, context: Context
    ) -> policies_pb2.GetPolicyVersionResponse:
        found = await self._policies.get_version(
            current_principal.get(), request.policy_id, request.version
        )
        return version_message(found)

    async def ListPolicies(  # noqa: N802
        self, request: policies_pb2.ListPoliciesRequest, context: Context
    ) -> policies_pb2.ListPoliciesResponse:
        found, token = await self._policies.list(
            current_principal.get(),
            size=request.page_size,
            token=request.page_token,
            status=request.status,
        )
        return policies_pb2.ListPoliciesResponse(
            policies=[policy_message(p) for p in found], next_page_token=token
        )

    async def UpdatePolicy(  # noqa: N802
        self, request: policies_pb2.UpdatePolicyRequest, context: Context
    ) -> policies_pb2.UpdatePolicyResponse:
        updated = await self._policies.update(
            current_principal.get(), request.policy_id, request.document
        )
        return policies_pb2.UpdatePolicyResponse(policy=policy_message(updated))

    async def ActivatePolicy(  # noqa: N802
        self, request: policies_pb2.ActivatePolicyRequest, context: Context
    ) -> policies_pb2.ActivatePolicyResponse:
        updated = await self._policies.set_status(
            current_principal.get(), request.policy_id, PolicyStatus.ACTIVE
        )
        return policies_pb2.ActivatePolicyResponse(policy=policy_message(updated))

    async def DisablePolicy(  # noqa: N802
        self, request: policies_pb2.DisablePolicyRequest, context: Context
    ) -> policies_pb2.DisablePolicyResponse:
        updated = await self._policies.set_status(
            current_principal.get(), request.policy_id, PolicyStatus.DISABLED
        )
        return policies_pb2.DisablePolicyResponse(policy=policy_message(updated))

    async def DeletePolicy(  # noqa: N802
        self, request: policies_pb2.DeletePolicyRequest, context: Context
    ) -> policies_pb2.DeletePolicyResponse:
        await self._policies.set_status(
            current_principal.get(), request.policy_id, PolicyStatus.DELETED
        )
        return policies_pb2.DeletePolicyResponse()

    async def SimulatePolicy(  # noqa: N802
        self, request: policies_pb2.SimulatePolicyRequest, context: Context
    ) -> policies_pb2.SimulatePolicyResponse:
        items = [message_input(r).request for r in request.requests]
        results = await self._simulations.simulate(current_principal.get(), request.document, items)
        return policies_pb2.SimulatePolicyResponse(
            results=[
                policies_pb2.SimulationResult(
                    with_draft=evaluation_message(r.with_draft),
                    current=evaluation_message(r.current),
                )
                for r in results
            ]
        )


SERVICE = policies_pb2.DESCRIPTOR.services_by_name["PolicyService"].full_name
OPERATIONS = rpcs(
    SERVICE,
    {
        "CreatePolicy": ops.CREATE,
        "GetPolicy": ops.GET,
        "GetPolicyVersion": ops.GET_VERSION,
        "ListPolicies": ops.LIST,
        "UpdatePolicy": ops.UPDATE,
        "ActivatePolicy": ops.SET_STATUS,
        "DisablePolicy": ops.SET_STATUS,
        "DeletePolicy": ops.SET_STATUS,
        "SimulatePolicy": ops.SIMULATE,
    },
)


def register(server: grpc.aio.Server, services: Services) -> None:
    policies_pb2_grpc.add_PolicyServiceServicer_to_server(PolicyServicer(services), server)
