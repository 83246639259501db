"""Policies and decisions end to end over REST and gRPC against real API processes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import grpc
import psycopg
import pytest
import yaml
from google.protobuf.struct_pb2 import Struct

from fulcrum.pb.v1 import decisions_pb2, decisions_pb2_grpc, policies_pb2, policies_pb2_grpc
from tests.support.identity import TenantFixture, new_tenant, rest
from tests.support.processes import FulcrumProcess, start_api
from tests.support.stack import LiveStack

DROP_TABLE = {
    "name": "no-drop",
    "priority": 5,
    "rules": [
        {
            "id": "block-drop",
            "target": {"tools": ["db.query"]},
            "when": {"field": "tool.args.sql", "op": "regex", "value": "(?i)drop\\s+table"},
            "action": "deny",
            "reason": "dropping tables is not allowed",
        },
        {
            "id": "allow-db",
            "target": {"tools": ["db.*"]},
            "action": "allow",
            "reason": "database tools are allowed",
        },
    ],
}


def create_policy(api: FulcrumProcess, key: str, document: dict, activate: bool = True) -> dict:
    with rest(api, key) as client:
        created = client.post("/v1/policies", json=document)
        assert created.status_code == 201, created.text
        policy = created.json()
        if activate:
            activated = client.post(f"/v1/policies/{policy['id']}/activate")
            assert activated.status_code == 200, activated.text
            policy = activated.json()
    return policy


def decide(api: FulcrumProcess, key: str, body: dict) -> dict:
    with rest(api, key) as client:
        response = client.post("/v1/decisions", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def db_query(sql: str) -> dict:
    return {"tool": {"name": "db.query", "args": {"sql": sql}}, "agent": {"id": "agent-1"}}


@pytest.fixture
def tenant(stack: LiveStack) -> TenantFixture:
    return new_tenant(stack, "pol")


def test_policy_lifecycle_and_decisions(api: FulcrumProcess, tenant: TenantFixture) -> None:
    policy = create_policy(api, tenant.owner_key, DROP_TABLE)
    assert (policy["status"], policy["version"]) == ("active", 1)
    denied = decide(api, tenant.owner_key, db_query("DROP TABLE users"))
    assert denied["action"] == "deny"
    assert denied["reason"] == "dropping tables is not allowed"
    assert (denied["policy_id"], denied["policy_version"], denied["rule_id"]) == (
        policy["id"],
        1,
        "block-drop",
    )
    assert len(denied["trace_id"]) == 32 and denied["decision_id"]
    allowed = decide(api, tenant.owner_key, db_query("select 1"))
    assert (allowed["action"], allowed["rule_id"]) == ("allow", "allow-db")
    default = decide(api, tenant.owner_key, {"tool": {"name": "shell.exec"}})
    assert (default["action"], default["matched"]) == ("deny", False)

    with rest(api, tenant.owner_key) as client:
        assert client.patch("/v1/settings", json={"default_action": "allow"}).status_code == 200
    deadline = time.monotonic() + 1
    while decide(api, tenant.owner_key, {"tool": {"name": "shell.exec"}})["action"] != "allow":
        assert time.monotonic() < deadline, api.log_text()[-3000:]
        time.sleep(0.05)

    with rest(api, tenant.owner_key) as client:
        assert client.post(f"/v1/policies/{policy['id']}/disable").json()["status"] == "disabled"
    deadline = time.monotonic() + 1
    while decide(api, tenant.owner_key, db_query("DROP TABLE users"))["action"] != "allow":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_updates_make_immutable_versions_and_are_audited(
    api: FulcrumProcess, stack: LiveStack, tenant: TenantFixture
) -> None:
    policy = create_policy(api, tenant.owner_key, DROP_TABLE)
    changed = {**DROP_TABLE, "rules": DROP_TABLE["rules"][:1]}
    with rest(api, tenant.owner_key) as client:
        updated = client.put(
            f"/v1/policies/{policy['id']}",
            content=yaml.safe_dump(changed),
            headers={"content-type": "application/yaml"},
        )
        assert updated.status_code == 200, updated.text
        assert updated.json()["version"] == 2
        v1 = client.get(f"/v1/policies/{policy['id']}/versions/1").json()
        v2 = client.get(f"/v1/policies/{policy['id']}/versions/2").json()
    assert len(v1["document"]["rules"]) == 2 and len(v2["document"]["rules"]) == 1
    with psycopg.connect(stack.superuser_dsn()) as su:
        rows = su.execute(
            "SELECT action, details FROM audit_events WHERE tenant_id = %s "
            "AND resource_type = 'policy' ORDER BY occurred_at",
            (tenant.id,),
        ).fetchall()
    actions = [r[0] for r in rows]
    assert actions == ["policy.create", "policy.activate", "policy.update"]
    assert rows[2][1]["before"]["version"] == 1 and rows[2][1]["after"]["version"] == 2


INVALID = [
    ({**DROP_TABLE, "rules": [{**DROP_TABLE["rules"][0], "action": "explode"}]}, "rules[0].action"),
    (
        {
            **DROP_TABLE,
            "rules": [
                {
                    **DROP_TABLE["rules"][0],
                    "when": {"field": "tool.args.sql", "op": "matches", "value": "x"},
                }
            ],
        },
        "rules[0].when.op",
    ),
    (
        {
            **DROP_TABLE,
            "rules": [
                {
                    **DROP_TABLE["rules"][0],
                    "when": {"field": "tool.args.sql", "op": "regex", "value": "(unclosed"},
                }
            ],
        },
        "rules[0].when.value",
    ),
    (
        {
            **DROP_TABLE,
            "rules": [
                {
                    **DROP_TABLE["rules"][0],
                    "when": {"field": "cost.estimate", "op": "gt", "value": "cheap"},
                }
            ],
        },
        "rules[0].when.value",
    ),
    (
        {
            **DROP_TABLE,
            "rules": [{k: v for k, v in DROP_TABLE["rules"][0].items() if k != "action"}],
        },
        "rules[0].action",
    ),
    ({**DROP_TABLE, "surprise": True}, "surprise"),
]


@pytest.mark.parametrize(("document", "path"), INVALID)
def test_invalid_policies_are_refused_with_the_path_and_nothing_is_stored(
    api: FulcrumProcess, stack: LiveStack, tenant: TenantFixture, document: dict, path: str
) -> None:
    with rest(api, tenant.owner_key) as client:
        response = client.post("/v1/policies", json=document)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == path
    with psycopg.connect(stack.superuser_dsn()) as su:
        count = su.execute(
            "SELECT (SELECT count(*) FROM policies WHERE tenant_id = %s) + "
            "(SELECT count(*) FROM policy_versions WHERE tenant_id = %s)",
            (tenant.id, tenant.id),
        ).fetchone()
    assert count == (0,)


def too_deep(levels: int) -> dict:
    node: dict = {"field": "tool.name", "op": "eq", "value": "x"}
    for _ in range(levels):
        node = {"all": [node]}
    return node


def test_too_deep_and_too_large_policies_are_refused(
    api: FulcrumProcess, tenant: TenantFixture
) -> None:
    deep = {**DROP_TABLE, "rules": [{**DROP_TABLE["rules"][0], "when": too_deep(12)}]}
    many = {
        **DROP_TABLE,
        "rules": [
            {"id": f"r{i}", "action": "allow", "reason": "r", "target": {"tools": [f"t{i}"]}}
            for i in range(201)
        ],
    }
    huge = {**DROP_TABLE, "description": "x" * 300_000}
    with rest(api, tenant.owner_key) as client:
        for document, field in ((deep, "rules[0].when"), (many, "rules"), (huge, "document")):
            response = client.post("/v1/policies", json=document)
            assert response.status_code == 400, response.text
            assert response.json()["error"]["field"].startswith(field), response.text


def test_shadow_policies_are_reported_never_enforced(
    api: FulcrumProcess, tenant: TenantFixture
) -> None:
    create_policy(api, tenant.owner_key, DROP_TABLE)
    shadow = create_policy(
        api,
        tenant.owner_key,
        {
            "name": "shadow-deny-all-db",
            "mode": "shadow",
            "rules": [
                {
                    "id": "deny-db",
                    "target": {"tools": ["db.*"]},
                    "action": "deny",
                    "reason": "trial: no database at all",
                }
            ],
        },
    )
    answer = decide(api, tenant.owner_key, db_query("select 1"))
    assert answer["action"] == "allow"
    assert answer["shadow"] == [
        {
            "action": "deny",
            "reason": "trial: no database at all",
            "policy_id": shadow["id"],
            "policy_version": 1,
            "rule_id": "deny-db",
        }
    ]


def test_explain_and_batch(api: FulcrumProcess, tenant: TenantFixture) -> None:
    create_policy(api, tenant.owner_key, DROP_TABLE)
    explained = decide(api, tenant.owner_key, {**db_query("select 1"), "explain": True})
    traces = {t["rule_id"]: t for t in explained["explanation"]}
    assert traces["block-drop"]["matched"] is False
    assert traces["block-drop"]["conditions"][0]["held"] is False
    assert traces["allow-db"]["matched"] is True
    assert decide(api, tenant.owner_key, db_query("select 1"))["explanation"] is None
    with rest(api, tenant.owner_key) as client:
        batch = client.post(
            "/v1/decisions:batch",
            json={"requests": [db_query("drop table x"), db_query("select 1")] * 50},
        )
        assert batch.status_code == 200
        actions = [d["action"] for d in batch.json()["decisions"]]
        assert actions == ["deny", "allow"] * 50
        too_many = client.post("/v1/decisions:batch", json={"requests": [db_query("x")] * 101})
        assert too_many.status_code == 400


def test_grpc_evaluate_matches_rest(api: FulcrumProcess, tenant: TenantFixture) -> None:
    create_policy(api, tenant.owner_key, DROP_TABLE)
    rest_answer = decide(api, tenant.owner_key, db_query("DROP TABLE t"))
    args = Struct()
    args.update({"sql": "DROP TABLE t"})
    metadata = (("authorization", f"Bearer {tenant.owner_key}"),)
    with api.channel() as channel:
        stub = decisions_pb2_grpc.DecisionServiceStub(channel)
        answer = stub.Evaluate(
            decisions_pb2.EvaluateRequest(
                tool=decisions_pb2.Tool(name="db.query", args=args),
                agent=decisions_pb2.Agent(id="agent-1"),
            ),
            metadata=metadata,
        ).decision
    assert answer.action == decisions_pb2.DECISION_ACTION_DENY
    for field in ("reason", "policy_id", "policy_version", "rule_id", "bundle_hash"):
        assert getattr(answer, field) == rest_answer[field]


def test_grpc_policy_crud_with_yaml(api: FulcrumProcess, tenant: TenantFixture) -> None:
    metadata = (("authorization", f"Bearer {tenant.owner_key}"),)
    with api.channel() as channel:
        stub = policies_pb2_grpc.PolicyServiceStub(channel)
        created = stub.CreatePolicy(
            policies_pb2.CreatePolicyRequest(document=yaml.safe_dump(DROP_TABLE)),
            metadata=metadata,
        ).policy
        assert json.loads(created.document_json)["name"] == "no-drop"
        with pytest.raises(grpc.RpcError) as err:
            stub.CreatePolicy(
                policies_pb2.CreatePolicyRequest(document="rules: [oops"), metadata=metadata
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        stub.ActivatePolicy(
            policies_pb2.ActivatePolicyRequest(policy_id=created.id), metadata=metadata
        )
        listed = stub.ListPolicies(
            policies_pb2.ListPoliciesRequest(status="active"), metadata=metadata
        )
        assert [p.id for p in listed.policies] == [created.id]
        simulated = stub.SimulatePolicy(
            policies_pb2.SimulatePolicyRequest(
                document=yaml.safe_dump(
                    {
                        "name": "no-db",
                        "rules": [
                            {
                                "id": "no-db",
                                "target": {"tools": ["db.*"]},
                                "action": "deny",
                                "reason": "r",
                            }
                        ],
                    }
                ),
                requests=[decisions_pb2.EvaluateRequest(tool=decisions_pb2.Tool(name="db.x"))],
            ),
            metadata=metadata,
        )
        result = simulated.results[0]
        assert result.current.action == decisions_pb2.DECISION_ACTION_ALLOW
        assert result.with_draft.action == decisions_pb2.DECISION_ACTION_DENY
        stub.DeletePolicy(policies_pb2.DeletePolicyRequest(policy_id=created.id), metadata=metadata)
        with pytest.raises(grpc.RpcError) as err:
            stub.GetPolicy(policies_pb2.GetPolicyRequest(policy_id=created.id), metadata=metadata)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.fixture(scope="module")
def second_api(stack: LiveStack) -> Iterator[FulcrumProcess]:
    process = start_api(stack, name="api-policies-2")
    yield process
    process.stop()


def test_policy_change_reaches_a_second_process_within_a_second(
    api: FulcrumProcess, second_api: FulcrumProcess, tenant: TenantFixture
) -> None:
    policy = create_policy(api, tenant.owner_key, DROP_TABLE)
    assert decide(second_api, tenant.owner_key, db_query("select 1"))["action"] == "allow"
    stricter = {
        **DROP_TABLE,
        "rules": [{**DROP_TABLE["rules"][1], "action": "deny", "reason": "database frozen"}],
    }
    with rest(api, tenant.owner_key) as client:
        assert client.put(f"/v1/policies/{policy['id']}", json=stricter).status_code == 200
    changed_at = time.monotonic()
    while (answer := decide(second_api, tenant.owner_key, db_query("select 1")))[
        "action"
    ] != "deny":
        assert time.monotonic() - changed_at < 1.0, "second process kept the old bundle"
        time.sleep(0.02)
    assert answer["reason"] == "database frozen"
    assert answer["policy_version"] == 2


def test_an_evaluation_error_fails_closed(
    api: FulcrumProcess, stack: LiveStack, tenant: TenantFixture
) -> None:
    """Corrupt the stored version behind the API's back: the bundle cannot compile, and
    every decision for the tenant is deny / evaluation_error, never allow, never a 500."""
    policy = create_policy(api, tenant.owner_key, DROP_TABLE)
    assert decide(api, tenant.owner_key, db_query("select 1"))["action"] == "allow"
    with psycopg.connect(stack.superuser_dsn(), autocommit=True) as su:
        su.execute(
            "UPDATE policy_versions SET document = '{\"rules\": 42}' WHERE policy_id = %s",
            (policy["id"],),
        )
        su.execute(
            "UPDATE tenants SET policy_revision = policy_revision + 1 WHERE id = %s", (tenant.id,)
        )
    deadline = time.monotonic() + 10
    while (answer := decide(api, tenant.owner_key, db_query("select 1")))["action"] == "allow":
        assert time.monotonic() < deadline, "corrupt bundle was never reloaded"
        time.sleep(0.1)
    assert (answer["action"], answer["reason"]) == ("deny", "evaluation_error")
