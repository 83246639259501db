"""The golden decision cases through gRPC and REST give the engine's answers, field for field.

Each suite's policies are created and activated through the API in a fresh tenant, so the
server assigns the policy ids. The expected answer is the engine's own evaluation of the
same policies under those ids; the golden expectation is also checked, mapped back to the
suite's ids, wherever it does not hinge on the id order (a tie-break of last resort).
Cases that set the time or the trust score are engine-only: the server decides both.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.struct_pb2 import Struct

from fulcrum.audit.decision_records import ACTIONS
from fulcrum.engine.compiler import compile_bundle
from fulcrum.engine.model import Evaluation, PolicySource, Verdict
from fulcrum.pb.v1 import decisions_pb2, decisions_pb2_grpc
from fulcrum.policytest.cases import GoldenSuite, load_cases, request_from_dict
from tests.support.identity import new_tenant, rest
from tests.support.processes import FulcrumProcess
from tests.support.stack import LiveStack

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
SUITES = [suite for path in sorted(GOLDEN.glob("*.yaml")) for suite in load_cases(path)]
ACTION_NAMES = {value: action.value for action, value in ACTIONS.items()}


def reads(suite: GoldenSuite, prefix: str) -> bool:
    return f'"field": "{prefix}' in json.dumps([dict(p.document) for p in suite.policies])


def api_body(suite: GoldenSuite, request: dict[str, Any]) -> dict[str, Any] | None:
    """The request as a client sends it, or None when its answer depends on the time or the
    trust score, which the server decides. A pinned time that no rule reads is dropped."""
    if ("time" in request and reads(suite, "time.")) or (
        "trust" in request and reads(suite, "trust.")
    ):
        return None
    body = json.loads(json.dumps(request))
    body.pop("time", None)
    body.pop("trust", None)
    return body


def grpc_request(body: dict[str, Any]) -> decisions_pb2.EvaluateRequest:
    message = decisions_pb2.EvaluateRequest(
        tool=decisions_pb2.Tool(name=body["tool"]["name"]),
        agent=decisions_pb2.Agent(
            id=body.get("agent", {}).get("id", ""), roles=body.get("agent", {}).get("roles", [])
        ),
        transport=body.get("transport", ""),
        input_text=body.get("input", {}).get("text", ""),
        model_id=body.get("model", {}).get("id", ""),
    )
    if "args" in body["tool"]:
        message.tool.args.update(body["tool"]["args"])
    if body.get("cost", {}).get("estimate") is not None:
        message.cost_estimate = body["cost"]["estimate"]
    if "context" in body:
        context = Struct()
        context.update(body["context"])
        message.context.CopyFrom(context)
    return message


def as_dict(v: Verdict) -> dict[str, Any]:
    return {
        "action": v.action.value,
        "reason": v.reason,
        "policy_id": v.policy_id,
        "policy_version": v.policy_version,
        "rule_id": v.rule_id,
    }


def expected_answer(e: Evaluation) -> dict[str, Any]:
    return {
        **as_dict(e.verdict),
        "bundle_hash": e.bundle_hash,
        "matched": e.matched,
        "shadow": [as_dict(s) for s in e.shadow],
    }


def rest_answer(d: dict[str, Any]) -> dict[str, Any]:
    return {
        k: d[k]
        for k in (
            "action",
            "reason",
            "policy_id",
            "policy_version",
            "rule_id",
            "bundle_hash",
            "matched",
            "shadow",
        )
    }


def grpc_answer(d: decisions_pb2.Decision) -> dict[str, Any]:
    def verdict(v: Any) -> dict[str, Any]:
        return {
            "action": ACTION_NAMES[v.action],
            "reason": v.reason,
            "policy_id": v.policy_id,
            "policy_version": v.policy_version,
            "rule_id": v.rule_id,
        }

    return {
        **verdict(d),
        "bundle_hash": d.bundle_hash,
        "matched": d.matched,
        "shadow": [verdict(s) for s in d.shadow],
    }


def renamed(verdict: Verdict, names: dict[str, str]) -> Verdict:
    return Verdict(
        verdict.action,
        verdict.reason,
        names.get(verdict.policy_id, verdict.policy_id),
        verdict.policy_version,
        verdict.rule_id,
    )


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_golden_suite_over_rest_and_grpc(
    suite: GoldenSuite, stack: LiveStack, api: FulcrumProcess
) -> None:
    tenant = new_tenant(stack, f"golden-{suite.name}")
    server_ids: dict[str, str] = {}
    sources: list[PolicySource] = []
    with rest(api, tenant.owner_key) as client:
        assert (
            client.patch(
                "/v1/settings", json={"default_action": suite.default_action.value}
            ).status_code
            == 200
        )
        for source in suite.policies:
            created = client.post("/v1/policies", json=dict(source.document))
            assert created.status_code == 201, created.text
            policy = client.post(f"/v1/policies/{created.json()['id']}/activate").json()
            server_ids[source.policy_id] = policy["id"]
            sources.append(PolicySource(policy["id"], policy["version"], policy["document"]))
    local = compile_bundle(sources, suite.default_action)
    by_suite_ids = compile_bundle(list(suite.policies), suite.default_action)
    suite_names = {server: mine for mine, server in server_ids.items()}

    cases = [(case, body) for case in suite.cases if (body := api_body(suite, dict(case.request)))]
    metadata = (("authorization", f"Bearer {tenant.owner_key}"),)
    with rest(api, tenant.owner_key) as client, api.channel() as channel:
        stub = decisions_pb2_grpc.DecisionServiceStub(channel)
        for case, body in cases:
            request = request_from_dict(body, now=dt.datetime.now(dt.UTC))
            engine = local.evaluate(request)
            want = expected_answer(engine)
            via_rest = client.post("/v1/decisions", json=body)
            assert via_rest.status_code == 200, (case.name, via_rest.text)
            via_grpc = stub.Evaluate(grpc_request(body), metadata=metadata).decision
            assert rest_answer(via_rest.json()) == want, case.name
            assert grpc_answer(via_grpc) == want, case.name

            assert engine.verdict.action is case.expect.action, case.name
            reference = by_suite_ids.evaluate(request)
            mapped = renamed(engine.verdict, suite_names)
            if mapped == reference.verdict:
                shadow = [renamed(s, suite_names) for s in engine.shadow]
                assert case.expect.mismatches(mapped, shadow) == [], case.name


def test_most_golden_cases_reach_the_api() -> None:
    served = [c for s in SUITES for c in s.cases if api_body(s, dict(c.request))]
    assert len(served) >= 50
