"""Both doors refuse the same bad input with the same words: the field it names and the
message. Each case is one input said twice, as a REST request and as its RPC."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message

from fulcrum.pb.v1 import (
    api_keys_pb2,
    audit_pb2,
    decisions_pb2,
    members_pb2,
    policies_pb2,
    settings_pb2,
)
from tests.support.identity import TenantFixture, enterprise_plan, new_tenant, rest
from tests.support.processes import FulcrumProcess
from tests.support.stack import LiveStack
from tests.support.tenant_rows import TenantRows

HUGE = "x" * 100_000
_K = "/fulcrum.v1.ApiKeyService/"
_M = "/fulcrum.v1.MemberService/"
_D = "/fulcrum.v1.DecisionService/"
_S = "/fulcrum.v1.SettingsService/"
_A = "/fulcrum.v1.AuditService/"
_P = "/fulcrum.v1.PolicyService/"


def evaluate(**fields: Any) -> decisions_pb2.EvaluateRequest:
    message = decisions_pb2.EvaluateRequest(**fields)
    if not message.tool.name and "tool" not in fields:
        message.tool.name = "db.query"
    return message


DECISION = {"tool": {"name": "db.query"}}

# (case id, REST method, path, body, RPC, request message)
CASES: list[tuple[str, str, str, Any, str, Message]] = [
    (
        "key name too long",
        "POST",
        "/v1/api-keys",
        {"name": HUGE, "scopes": ["keys:read"]},
        f"{_K}CreateApiKey",
        api_keys_pb2.CreateApiKeyRequest(name=HUGE, scopes=["keys:read"]),
    ),
    (
        "key name blank",
        "POST",
        "/v1/api-keys",
        {"name": "  ", "scopes": ["keys:read"]},
        f"{_K}CreateApiKey",
        api_keys_pb2.CreateApiKeyRequest(name="  ", scopes=["keys:read"]),
    ),
    (
        "key name with NUL",
        "POST",
        "/v1/api-keys",
        {"name": "a\x00b", "scopes": ["keys:read"]},
        f"{_K}CreateApiKey",
        api_keys_pb2.CreateApiKeyRequest(name="a\x00b", scopes=["keys:read"]),
    ),
    (
        "unknown scope",
        "POST",
        "/v1/api-keys",
        {"name": "k", "scopes": ["keys:read", "nope:x"]},
        f"{_K}CreateApiKey",
        api_keys_pb2.CreateApiKeyRequest(name="k", scopes=["keys:read", "nope:x"]),
    ),
    (
        "no scopes",
        "POST",
        "/v1/api-keys",
        {"name": "k", "scopes": []},
        f"{_K}CreateApiKey",
        api_keys_pb2.CreateApiKeyRequest(name="k", scopes=[]),
    ),
    (
        "platform scope",
        "POST",
        "/v1/api-keys",
        {"name": "k", "scopes": ["tenants:admin"]},
        f"{_K}CreateApiKey",
        api_keys_pb2.CreateApiKeyRequest(name="k", scopes=["tenants:admin"]),
    ),
    (
        "key id malformed",
        "GET",
        "/v1/api-keys/XYZ",
        None,
        f"{_K}GetApiKey",
        api_keys_pb2.GetApiKeyRequest(api_key_id="XYZ"),
    ),
    (
        "page size too large",
        "GET",
        "/v1/api-keys?page_size=1000",
        None,
        f"{_K}ListApiKeys",
        api_keys_pb2.ListApiKeysRequest(page_size=1000),
    ),
    (
        "page size negative",
        "GET",
        "/v1/api-keys?page_size=-1",
        None,
        f"{_K}ListApiKeys",
        api_keys_pb2.ListApiKeysRequest(page_size=-1),
    ),
    (
        "page token forged",
        "GET",
        "/v1/members?page_token=%25%25%25",
        None,
        f"{_M}ListMembers",
        members_pb2.ListMembersRequest(page_token="%%%"),
    ),
    (
        "member id malformed",
        "GET",
        "/v1/members/not-a-uuid",
        None,
        f"{_M}GetMember",
        members_pb2.GetMemberRequest(member_id="not-a-uuid"),
    ),
    (
        "user id malformed",
        "POST",
        "/v1/members",
        {"external_user_id": "u 1", "role": "viewer"},
        f"{_M}AddMember",
        members_pb2.AddMemberRequest(external_user_id="u 1", role="viewer"),
    ),
    (
        "unknown role",
        "POST",
        "/v1/members",
        {"external_user_id": "u1", "role": "emperor"},
        f"{_M}AddMember",
        members_pb2.AddMemberRequest(external_user_id="u1", role="emperor"),
    ),
    (
        "tool name missing",
        "POST",
        "/v1/decisions",
        {"tool": {"name": ""}},
        f"{_D}Evaluate",
        evaluate(tool=decisions_pb2.Tool(name="")),
    ),
    (
        "tool name too long",
        "POST",
        "/v1/decisions",
        {"tool": {"name": "t" * 300}},
        f"{_D}Evaluate",
        evaluate(tool=decisions_pb2.Tool(name="t" * 300)),
    ),
    (
        "tool name with NUL",
        "POST",
        "/v1/decisions",
        {"tool": {"name": "db\x00query"}},
        f"{_D}Evaluate",
        evaluate(tool=decisions_pb2.Tool(name="db\x00query")),
    ),
    (
        "agent id with NUL",
        "POST",
        "/v1/decisions",
        {**DECISION, "agent": {"id": "a\x00"}},
        f"{_D}Evaluate",
        evaluate(agent=decisions_pb2.Agent(id="a\x00")),
    ),
    (
        "too many roles",
        "POST",
        "/v1/decisions",
        {**DECISION, "agent": {"roles": ["r"] * 51}},
        f"{_D}Evaluate",
        evaluate(agent=decisions_pb2.Agent(roles=["r"] * 51)),
    ),
    (
        "input text too long",
        "POST",
        "/v1/decisions",
        {**DECISION, "input": {"text": "x" * (64 * 1024 + 1)}},
        f"{_D}Evaluate",
        evaluate(input_text="x" * (64 * 1024 + 1)),
    ),
    (
        "transport too long",
        "POST",
        "/v1/decisions",
        {**DECISION, "transport": "m" * 65},
        f"{_D}Evaluate",
        evaluate(transport="m" * 65),
    ),
    (
        "model id with NUL",
        "POST",
        "/v1/decisions",
        {**DECISION, "model": {"id": "\x00"}},
        f"{_D}Evaluate",
        evaluate(model_id="\x00"),
    ),
    (
        "cost beyond what the ledger hashes",
        "POST",
        "/v1/decisions",
        {**DECISION, "cost": {"estimate": 1e20}},
        f"{_D}Evaluate",
        evaluate(cost_estimate=1e20),
    ),
    (
        "batch too large",
        "POST",
        "/v1/decisions:batch",
        {"requests": [DECISION] * 101},
        f"{_D}EvaluateBatch",
        decisions_pb2.EvaluateBatchRequest(requests=[evaluate()] * 101),
    ),
    (
        "batch empty",
        "POST",
        "/v1/decisions:batch",
        {"requests": []},
        f"{_D}EvaluateBatch",
        decisions_pb2.EvaluateBatchRequest(requests=[]),
    ),
    (
        "simulation too large",
        "POST",
        "/v1/policies:simulate",
        {"policy": {"name": "p", "rules": []}, "requests": [DECISION] * 101},
        f"{_P}SimulatePolicy",
        policies_pb2.SimulatePolicyRequest(
            document='{"name": "p", "rules": []}', requests=[evaluate()] * 101
        ),
    ),
    (
        "policy status unknown",
        "GET",
        "/v1/policies?status=deleted",
        None,
        f"{_P}ListPolicies",
        policies_pb2.ListPoliciesRequest(status="deleted"),
    ),
    (
        "policy page size too large",
        "GET",
        "/v1/policies?page_size=500",
        None,
        f"{_P}ListPolicies",
        policies_pb2.ListPoliciesRequest(page_size=500),
    ),
    (
        "unknown default action",
        "PATCH",
        "/v1/settings",
        {"default_action": "maybe"},
        f"{_S}UpdateSettings",
        settings_pb2.UpdateSettingsRequest(default_action="maybe"),
    ),
    (
        "rate above the plan",
        "PATCH",
        "/v1/settings",
        {"rate_limit": {"per_second": 10**9}},
        f"{_S}UpdateSettings",
        settings_pb2.UpdateSettingsRequest(rate_limit=settings_pb2.RateLimit(per_second=1e9)),
    ),
    (
        "burst below one",
        "PATCH",
        "/v1/settings",
        {"rate_limit": {"burst": 0}},
        f"{_S}UpdateSettings",
        settings_pb2.UpdateSettingsRequest(rate_limit=settings_pb2.RateLimit(burst=0)),
    ),
    (
        "audit filter too long",
        "GET",
        "/v1/audit/records?agent_id=" + "a" * 257,
        None,
        f"{_A}ListAuditRecords",
        audit_pb2.ListAuditRecordsRequest(agent_id="a" * 257),
    ),
    (
        "audit page size too large",
        "GET",
        "/v1/audit/records?page_size=201",
        None,
        f"{_A}ListAuditRecords",
        audit_pb2.ListAuditRecordsRequest(page_size=201),
    ),
]


@pytest.fixture(scope="module")
def tenant(stack: LiveStack) -> TenantFixture:
    created = new_tenant(stack, "same-words")
    enterprise_plan(stack, created)  # the batch cases cost a hundred tokens each
    return created


@pytest.fixture
def unchanged(stack: LiveStack, tenant: TenantFixture) -> Iterator[None]:
    with TenantRows(stack) as rows:
        before = rows.snapshot(tenant.id)
        yield
        assert rows.snapshot(tenant.id) == before


def rest_words(api: FulcrumProcess, key: str, method: str, path: str, body: Any) -> str:
    with rest(api, key) as client:
        response = client.request(method, path, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_argument"
    message = str(error["message"])
    field = error.get("field")
    return message if not field or message.startswith(f"{field}: ") else f"{field}: {message}"


def grpc_words(api: FulcrumProcess, key: str, rpc: str, message: Message) -> str:
    with api.channel() as channel:
        call = channel.unary_unary(
            rpc, request_serializer=type(message).SerializeToString, response_deserializer=None
        )
        with pytest.raises(grpc.RpcError) as err:
            call(message, metadata=(("authorization", f"Bearer {key}"),), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    return str(err.value.details())


@pytest.mark.parametrize(
    ("case", "method", "path", "body", "rpc", "message"), CASES, ids=[c[0] for c in CASES]
)
def test_both_doors_say_the_same(
    api: FulcrumProcess,
    tenant: TenantFixture,
    unchanged: None,
    case: str,
    method: str,
    path: str,
    body: Any,
    rpc: str,
    message: Message,
) -> None:
    said_by_rest = rest_words(api, tenant.owner_key, method, path, body)
    said_by_grpc = grpc_words(api, tenant.owner_key, rpc, message)
    assert said_by_rest == said_by_grpc
    assert ": " in said_by_rest  # it names the field
    assert HUGE not in said_by_rest
