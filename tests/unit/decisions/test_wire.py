"""A decision's wire forms agree: the REST body is what its documented model says, the
protobuf answer carries the same fields, and the ledger's event reads back as the same
verdict. Every golden case, with explanations."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import pytest
from google.protobuf.json_format import MessageToDict

from fulcrum.audit.decision_records import ACTION_OF
from fulcrum.audit.intake import decode
from fulcrum.decisions.models import Decision, DecisionInput
from fulcrum.decisions.wire import decision_body, decision_event, decision_message_of
from fulcrum.engine.compiler import compile_bundle
from fulcrum.pb.v1 import events_pb2
from fulcrum.policytest.cases import GoldenCase, GoldenSuite, load_cases, request_from_dict
from fulcrum.transports.rest.decisions import DecisionOut

GOLDEN = Path(__file__).parents[2] / "golden"
CASES = [
    pytest.param(suite, case, id=f"{suite.name}: {case.name}")
    for suite in load_cases(GOLDEN)
    for case in suite.cases
]
TENANT = uuid.UUID("00000000-0000-4000-8000-000000000001")


def decided(suite: GoldenSuite, case: GoldenCase) -> tuple[DecisionInput, Decision]:
    request = request_from_dict(case.request)
    evaluation = compile_bundle(suite.policies, suite.default_action).evaluate(
        request, explain=True
    )
    decision = Decision(uuid.uuid4(), "ab" * 16, evaluation, 1234, dt.datetime.now(dt.UTC))
    return DecisionInput(request, explain=True), decision


@pytest.mark.parametrize(("suite", "case"), CASES)
def test_the_rest_body_is_its_documented_model(suite: GoldenSuite, case: GoldenCase) -> None:
    _, decision = decided(suite, case)
    body = decision_body(decision)
    assert DecisionOut.model_validate(body).model_dump(mode="json") == json.loads(json.dumps(body))


@pytest.mark.parametrize(("suite", "case"), CASES)
def test_protobuf_and_rest_carry_the_same_fields(suite: GoldenSuite, case: GoldenCase) -> None:
    _, decision = decided(suite, case)
    body = decision_body(decision)
    message = MessageToDict(
        decision_message_of(decision),
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
    assert ACTION_OF[decision_message_of(decision).action].value == body["action"]
    for name in ("reason", "policy_id", "rule_id", "bundle_hash", "matched", "decision_id"):
        assert message[name] == body[name], name
    assert int(message["policy_version"]) == body["policy_version"]
    assert [s["rule_id"] for s in message["shadow"]] == [s["rule_id"] for s in body["shadow"]]
    explained = [(t["rule_id"], t.get("matched", False)) for t in message["explanation"]]
    assert explained == [(t["rule_id"], t["matched"]) for t in body["explanation"] or ()]


@pytest.mark.parametrize(("suite", "case"), CASES)
def test_the_event_records_the_answer(suite: GoldenSuite, case: GoldenCase) -> None:
    item, decision = decided(suite, case)
    event = decision_event(TENANT, "key:k", item, decision)
    entry = decode(event.data)
    body = decision_body(decision)
    assert entry.outcome == body["action"]
    assert entry.event_id == decision.decision_id
    for name in ("reason", "policy_id", "policy_version", "rule_id", "bundle_hash", "matched"):
        assert entry.details[name] == body[name], name
    assert [s["action"] for s in entry.details["shadow"]] == [s["action"] for s in body["shadow"]]
    assert events_pb2.Event.FromString(event.data).decision.decision_id == body["decision_id"]
