"""``/v1/policies``: versioned policy documents (JSON bodies, or YAML with a YAML
content type), lifecycle, and simulation of a draft."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from fulcrum.auth.principal import Principal
from fulcrum.auth.scopes import Scope
from fulcrum.kit.errors import InvalidArgument
from fulcrum.policies.models import Policy, PolicyStatus
from fulcrum.transports.rest.auth import RequireScopes, charge, services_of
from fulcrum.transports.rest.decision_schemas import (
    EvaluationOut,
    SimulateIn,
    SimulateOut,
    SimulationOut,
)

router = APIRouter(prefix="/v1/policies", tags=["policies"])
Reader = Annotated[Principal, Depends(RequireScopes(Scope.POLICIES_READ))]
Writer = Annotated[Principal, Depends(RequireScopes(Scope.POLICIES_WRITE))]
# A simulation evaluates every request it carries: one token each (see decisions.py).
Simulator = Annotated[Principal, Depends(RequireScopes(Scope.POLICIES_READ, per_item=True))]

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
DOCUMENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


class PolicyOut(BaseModel):
    id: str
    name: str
    status: str
    mode: str
    priority: int
    version: int
    document: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, p: Policy) -> PolicyOut:
        return cls(
            id=str(p.id),
            name=p.name,
            status=p.status.value,
            mode=p.mode,
            priority=p.priority,
            version=p.current_version,
            document=p.document,
            created_at=p.created_at,
            updated_at=p.updated_at,
        )


class PolicyPage(BaseModel):
    policies: list[PolicyOut]
    next_page_token: str


class PolicyVersionOut(BaseModel):
    policy_id: str
    version: int
    document: dict[str, Any]
    author: str
    created_at: dt.datetime


async def document_of(request: Request) -> str | bytes:
    """The raw body: YAML when the content type says so, JSON otherwise."""
    body = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in (*YAML_TYPES, "application/json", ""):
        raise InvalidArgument(
            "content type must be application/json or application/yaml", field="content-type"
        )
    return body


@router.post("", status_code=201, openapi_extra=DOCUMENT_BODY)
async def create_policy(request: Request, who: Writer) -> PolicyOut:
    policy = await services_of(request).policies.create(who, await document_of(request))
    return PolicyOut.of(policy)


@router.get("")
async def list_policies(
    request: Request,
    who: Reader,
    page_size: Annotated[int, Query(ge=0, le=200)] = 0,
    page_token: Annotated[str, Query(max_length=512)] = "",
    status: Annotated[str, Query(max_length=16)] = "",
) -> PolicyPage:
    policies, token = await services_of(request).policies.list(
        who, size=page_size, token=page_token, status=status
    )
    return PolicyPage(policies=[PolicyOut.of(p) for p in policies], next_page_token=token)


@router.post(":simulate")
async def simulate_policy(
    body: SimulateIn, request: Request, response: Response, who: Simulator
) -> SimulateOut:
    await charge(request, response, who, cost=max(1, len(body.requests)))
    items = [item.to_input().request for item in body.requests]
    results = await services_of(request).simulations.simulate(who, body.policy, items)
    return SimulateOut(
        results=[
            SimulationOut(
                with_draft=EvaluationOut.of(r.with_draft), current=EvaluationOut.of(r.current)
            )
            for r in results
        ]
    )


@router.get("/{policy_id}")
async def get_policy(policy_id: str, request: Request, who: Reader) -> PolicyOut:
    return PolicyOut.of(await services_of(request).policies.get(who, policy_id))


@router.get("/{policy_id}/versions/{version}")
async def get_policy_version(
    policy_id: str, version: int, request: Request, who: Reader
) -> PolicyVersionOut:
    found = await services_of(request).policies.get_version(who, policy_id, version)
    return PolicyVersionOut(
        policy_id=str(found.policy_id),
        version=found.version,
        document=found.document,
        author=found.author,
        created_at=found.created_at,
    )


@router.put("/{policy_id}", openapi_extra=DOCUMENT_BODY)
async def update_policy(policy_id: str, request: Request, who: Writer) -> PolicyOut:
    policy = await services_of(request).policies.update(who, policy_id, await document_of(request))
    return PolicyOut.of(policy)


@router.post("/{policy_id}/activate")
async def activate_policy(policy_id: str, request: Request, who: Writer) -> PolicyOut:
    policy = await services_of(request).policies.set_status(who, policy_id, PolicyStatus.ACTIVE)
    return PolicyOut.of(policy)


@router.post("/{policy_id}/disable")
async def disable_policy(policy_id: str, request: Request, who: Writer) -> PolicyOut:
    policy = await services_of(request).policies.set_status(who, policy_id, PolicyStatus.DISABLED)
    return PolicyOut.of(policy)


@router.delete("/{policy_id}", status_code=204)
async def delete_policy(policy_id: str, request: Request, who: Writer) -> Response:
    await services_of(request).policies.set_status(who, policy_id, PolicyStatus.DELETED)
    return Response(status_code=204)
