"""``/v1/policies``: versioned policy documents (JSON bodies, or YAML with a YAML
content type), lifecycle, and simulation of a draft."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from fulcrum.auth.principal import Principal
from fulcrum.decisions.wire import evaluation_body
from fulcrum.kit.errors import InvalidArgument
from fulcrum.policies import operations as ops
from fulcrum.policies.models import Policy, PolicyStatus
from fulcrum.policies.wire import policy_body, version_body
from fulcrum.transports.rest.auth import allowed, charge, services_of
from fulcrum.transports.rest.bodies import StrictBody
from fulcrum.transports.rest.decisions import DecisionIn, EvaluationOut

router = APIRouter(prefix="/v1/policies", tags=["policies"])

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


class PolicyPage(BaseModel):
    policies: list[PolicyOut]
    next_page_token: str


class PolicyVersionOut(BaseModel):
    policy_id: str
    version: int
    document: dict[str, Any]
    author: str
    created_at: dt.datetime


class SimulateIn(StrictBody):
    policy: dict[str, Any] | str
    requests: list[DecisionIn]


class SimulationOut(BaseModel):
    with_draft: EvaluationOut
    current: EvaluationOut


class SimulateOut(BaseModel):
    results: list[SimulationOut]


def _policy(p: Policy) -> PolicyOut:
    return PolicyOut.model_validate(policy_body(p))


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
async def create_policy(
    request: Request, who: Annotated[Principal, allowed(ops.CREATE)]
) -> PolicyOut:
    policy = await services_of(request).policies.create(who, await document_of(request))
    return _policy(policy)


@router.get("")
async def list_policies(
    request: Request,
    who: Annotated[Principal, allowed(ops.LIST)],
    page_size: int = 0,
    page_token: str = "",
    status: str = "",
) -> PolicyPage:
    policies, token = await services_of(request).policies.list(
        who, size=page_size, token=page_token, status=status
    )
    return PolicyPage(policies=[_policy(p) for p in policies], next_page_token=token)


@router.post(":simulate")
async def simulate_policy(
    body: SimulateIn,
    request: Request,
    response: Response,
    who: Annotated[Principal, allowed(ops.SIMULATE)],
) -> SimulateOut:
    response.headers.update(await charge(request, who, items=len(body.requests)))
    items = [item.to_input().request for item in body.requests]
    results = await services_of(request).simulations.simulate(who, body.policy, items)
    return SimulateOut.model_validate(
        {
            "results": [
                {"with_draft": evaluation_body(r.with_draft), "current": evaluation_body(r.current)}
                for r in results
            ]
        }
    )


@router.get("/{policy_id}")
async def get_policy(
    policy_id: str, request: Request, who: Annotated[Principal, allowed(ops.GET)]
) -> PolicyOut:
    return _policy(await services_of(request).policies.get(who, policy_id))


@router.get("/{policy_id}/versions/{version}")
async def get_policy_version(
    policy_id: str,
    version: int,
    request: Request,
    who: Annotated[Principal, allowed(ops.GET_VERSION)],
) -> PolicyVersionOut:
    found = await services_of(request).policies.get_version(who, policy_id, version)
    return PolicyVersionOut.model_validate(version_body(found))


@router.put("/{policy_id}", openapi_extra=DOCUMENT_BODY)
async def update_policy(
    policy_id: str, request: Request, who: Annotated[Principal, allowed(ops.UPDATE)]
) -> PolicyOut:
    policy = await services_of(request).policies.update(who, policy_id, await document_of(request))
    return _policy(policy)


@router.post("/{policy_id}/activate")
async def activate_policy(
    policy_id: str, request: Request, who: Annotated[Principal, allowed(ops.SET_STATUS)]
) -> PolicyOut:
    policy = await services_of(request).policies.set_status(who, policy_id, PolicyStatus.ACTIVE)
    return _policy(policy)


@router.post("/{policy_id}/disable")
async def disable_policy(
    policy_id: str, request: Request, who: Annotated[Principal, allowed(ops.SET_STATUS)]
) -> PolicyOut:
    policy = await services_of(request).policies.set_status(who, policy_id, PolicyStatus.DISABLED)
    return _policy(policy)


@router.delete("/{policy_id}", status_code=204)
async def delete_policy(
    policy_id: str, request: Request, who: Annotated[Principal, allowed(ops.SET_STATUS)]
) -> Response:
    await services_of(request).policies.set_status(who, policy_id, PolicyStatus.DELETED)
    return Response(status_code=204)
