"""gRPC doors onto decisions, policies (with simulation) and settings."""

from __future__ import annotations

import json
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from fulcrum.container import Services
from fulcrum.decisions.requests import build_request
from fulcrum.decisions.service import Decision, DecisionInput
from fulcrum.engine.model import Evaluation, Verdict
from fulcrum.events.codec import ACTIONS
from fulcrum.kit.tracing import from_traceparent
from fulcrum.pb.v1 import (
    decisions_pb2,
    decisions_pb2_grpc,
    policies_pb2,
    policies_pb2_grpc,
    settings_pb2,
    settings_pb2_grpc,
)
from fulcrum.policies.models import Policy, PolicyStatus
from fulcrum.tenants.settings import TenantSettings
from fulcrum.transports.grpc.convert import timestamp
from fulcrum.transports.grpc.interceptor import current_principal

Context = grpc.aio.ServicerContext[Any, Any]


def decision_input(message: decisions_pb2.EvaluateRequest) -> DecisionInput:
    request = build_request(
        tool_name=message.tool.name,
        tool_args=MessageToDict(message.tool.args) if message.tool.HasField("args") else {},
        agent_id=message.agent.id,
        agent_roles=list(message.agent.roles),
        transport=message.transport,
        input_text=message.input_text,
        model_id=message.model_id,
        cost_estimate=message.cost_estimate if message.HasField("cost_estimate") else None,
        context=MessageToDict(message.context) if message.HasField("context") else {},
    )
    trace = from_traceparent(message.traceparent).trace_id if message.traceparent else None
    return DecisionInput(request, message.explain, trace)


def verdict(v: Verdict) -> decisions_pb2.Verdict:
    return decisions_pb2.Verdict(
        action=ACTIONS[v.action],
        reason=v.reason,
        policy_id=v.policy_id,
        policy_version=v.policy_version,
        rule_id=v.rule_id,
    )


def evaluation(e: Evaluation, **extra: Any) -> decisions_pb2.Decision:
    v = e.verdict
    return decisions_pb2.Decision(
        action=ACTIONS[v.action],
        reason=v.reason,
        policy_id=v.policy_id,
        policy_version=v.policy_version,
        rule_id=v.rule_id,
        bundle_hash=e.bundle_hash,
        matched=e.matched,
        shadow=[verdict(s) for s in e.shadow],
        explanation=[
            decisions_pb2.RuleTrace(
                policy_id=t.policy_id,
                policy_version=t.policy_version,
                rule_id=t.rule_id,
                matched=t.matched,
                conditions=[
                    decisions_pb2.ConditionTrace(path=c.path, field=c.field, op=c.op, held=c.held)
                    for c in t.conditions
                ],
            )
            for t in e.explanation or ()
        ],
        **extra,
    )


def decision(d: Decision) -> decisions_pb2.Decision:
    return evaluation(
        d.evaluation,
        decision_id=str(d.decision_id),
        trace_id=d.trace_id,
        evaluation_time_ns=d.evaluation_ns,
    )


def policy(p: Policy) -> policies_pb2.Policy:
    return policies_pb2.Policy(
        id=str(p.id),
        name=p.name,
        status=p.status.value,
        mode=p.mode,
        priority=p.priority,
        version=p.current_version,
        document_json=json.dumps(p.document, sort_keys=True),
        create_time=timestamp(p.created_at),
        update_time=timestamp(p.updated_at),
    )


class DecisionServicer(decisions_pb2_grpc.DecisionServiceServicer):
    def __init__(self, services: Services) -> None:
        self._decisions = services.decisions

    async def Evaluate(  # noqa: N802
        self, request: decisions_pb2.EvaluateRequest, context: Context
    ) -> decisions_pb2.EvaluateResponse:
        made = await self._decisions.evaluate(current_principal.get(), decision_input(request))
        return decisions_pb2.EvaluateResponse(decision=decision(made))

    async def EvaluateBatch(  # noqa: N802
        self, request: decisions_pb2.EvaluateBatchRequest, context: Context
    ) -> decisions_pb2.EvaluateBatchResponse:
        items = [decision_input(r) for r in request.requests]
        made = await self._decisions.evaluate_batch(current_principal.get(), items)
        return decisions_pb2.EvaluateBatchResponse(decisions=[decision(d) for d in made])


class PolicyServicer(policies_pb2_grpc.PolicyServiceServicer):
    def __init__(self, services: Services) -> None:
        self._policies = services.policies
        self._simulations = services.simulations

    async def CreatePolicy(  # noqa: N802
        self, request: policies_pb2.CreatePolicyRequest, context: Context
    ) -> policies_pb2.CreatePolicyResponse:
        created = await self._policies.create(current_principal.get(), request.document)
        return policies_pb2.CreatePolicyResponse(policy=policy(created))

    async def GetPolicy(  # noqa: N802
        self, request: policies_pb2.GetPolicyRequest, context: Context
    ) -> policies_pb2.GetPolicyResponse:
        found = await self._policies.get(current_principal.get(), request.policy_id)
        return policies_pb2.GetPolicyResponse(policy=policy(found))

    async def GetPolicyVersion(  # noqa: N802
        self, request: policies_pb2.GetPolicyVersionRequest, context: Context
    ) -> policies_pb2.GetPolicyVersionResponse:
        found = await self._policies.get_version(
            current_principal.get(), request.policy_id, request.version
        )
        return policies_pb2.GetPolicyVersionResponse(
            policy_id=str(found.policy_id),
            version=found.version,
            document_json=json.dumps(found.document, sort_keys=True),
            author=found.author,
            create_time=timestamp(found.created_at),
        )

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
            policies=[policy(p) for p in found], next_page_token=token
        )

    async def UpdatePolicy(  # noqa: N802
        self, request: policies_pb2.UpdatePolicyRequest, context: Context
    ) -> policies_pb2.UpdatePolicyResponse:
        updated = await self._policies.update(
            current_principal.get(), request.policy_id, request.document
        )
        return policies_pb2.UpdatePolicyResponse(policy=policy(updated))

    async def ActivatePolicy(  # noqa: N802
        self, request: policies_pb2.ActivatePolicyRequest, context: Context
    ) -> policies_pb2.ActivatePolicyResponse:
        updated = await self._policies.set_status(
            current_principal.get(), request.policy_id, PolicyStatus.ACTIVE
        )
        return policies_pb2.ActivatePolicyResponse(policy=policy(updated))

    async def DisablePolicy(  # noqa: N802
        self, request: policies_pb2.DisablePolicyRequest, context: Context
    ) -> policies_pb2.DisablePolicyResponse:
        updated = await self._policies.set_status(
            current_principal.get(), request.policy_id, PolicyStatus.DISABLED
        )
        return policies_pb2.DisablePolicyResponse(policy=policy(updated))

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
        items = [decision_input(r).request for r in request.requests]
        results = await self._simulations.simulate(current_principal.get(), request.document, items)
        return policies_pb2.SimulatePolicyResponse(
            results=[
                policies_pb2.SimulationResult(
                    with_draft=evaluation(r.with_draft), current=evaluation(r.current)
                )
                for r in results
            ]
        )


class SettingsServicer(settings_pb2_grpc.SettingsServiceServicer):
    def __init__(self, services: Services) -> None:
        self._settings = services.settings

    async def GetSettings(  # noqa: N802
        self, request: settings_pb2.GetSettingsRequest, context: Context
    ) -> settings_pb2.GetSettingsResponse:
        current = await self._settings.get(current_principal.get())
        return settings_pb2.GetSettingsResponse(settings=tenant_settings(current))

    async def UpdateSettings(  # noqa: N802
        self, request: settings_pb2.UpdateSettingsRequest, context: Context
    ) -> settings_pb2.UpdateSettingsResponse:
        rate_limit = (
            {
                name: getattr(request.rate_limit, name)
                for name in ("per_second", "burst", "key_per_second", "key_burst")
                if request.rate_limit.HasField(name)
            }
            if request.HasField("rate_limit")
            else None
        )
        updated = await self._settings.update(
            current_principal.get(),
            default_action=request.default_action or None,
            rate_limit=rate_limit,
        )
        return settings_pb2.UpdateSettingsResponse(settings=tenant_settings(updated))


def tenant_settings(s: TenantSettings) -> settings_pb2.Settings:
    return settings_pb2.Settings(
        default_action=s.default_action.value,
        plan=s.plan.value,
        rate_limit=settings_pb2.RateLimit(
            per_second=s.limits.tenant_rate,
            burst=s.limits.tenant_burst,
            key_per_second=s.limits.key_rate,
            key_burst=s.limits.key_burst,
        ),
    )
