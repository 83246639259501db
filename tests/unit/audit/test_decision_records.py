"""Decision events as the API publishes them read back as the ledger entries they stand for."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from fulcrum.audit.chain import prepare
from fulcrum.audit.intake import decode
from fulcrum.audit.records import RecordKind
from fulcrum.decisions.models import Decision, DecisionInput
from fulcrum.decisions.wire import decision_event
from fulcrum.engine.model import Action, DecisionRequest, Evaluation, Verdict
from fulcrum.events.envelope import UndecodableEvent
from fulcrum.events.streams import SCHEMA_VERSION
from fulcrum.pb.v1 import events_pb2

TENANT = uuid.UUID("5f0c6a2e-3b1d-4c8e-9a7f-2d4e6b8c0a13")
DECIDED_AT = dt.datetime(2026, 11, 29, 3, 4, 5, 678901, tzinfo=dt.UTC)


def published(*, cost: float | None = 20.0, decided_at: dt.datetime = DECIDED_AT) -> bytes:
    request = DecisionRequest(
        tool_name="db.query",
        agent_id="agent-7",
        agent_roles=("reader",),
        tool_args={"query": "SELECT 1"},
        transport="mcp",
        model_id="gpt-4o",
        cost_estimate=cost,
    )
    decision = Decision(
        decision_id=uuid.UUID("0193a3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b"),
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        evaluation=Evaluation(
            Verdict(Action.DENY, "writes need a dba", "pol_1", 3, "no-writes"),
            "ab" * 32,
            shadow=(Verdict(Action.WARN, "shadow says warn", "pol_2", 1, "r2"),),
            matched=True,
        ),
        evaluation_ns=4321,
        decided_at=decided_at,
    )
    return decision_event(TENANT, "key:k1", DecisionInput(request), decision).data


def test_a_decision_event_reads_back_as_its_ledger_entry() -> None:
    entry = decode(published())

    assert entry.tenant_id == TENANT
    assert entry.event_id == uuid.UUID("0193a3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b")
    assert entry.kind is RecordKind.DECISION
    assert entry.occurred_at == DECIDED_AT  # to the microsecond, in UTC
    assert (entry.action, entry.outcome) == ("decision.deny", "deny")
    assert (entry.resource_type, entry.resource_id, entry.tool_name) == (
        "tool",
        "db.query",
        "db.query",
    )
    assert (entry.actor, entry.agent_id) == ("key:k1", "agent-7")
    assert entry.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert entry.details == {
        "reason": "writes need a dba",
        "policy_id": "pol_1",
        "policy_version": 3,
        "rule_id": "no-writes",
        "bundle_hash": "ab" * 32,
        "matched": True,
        "transport": "mcp",
        "model_id": "gpt-4o",
        "evaluation_time_ns": 4321,
        "shadow": [
            {
                "action": "warn",
                "reason": "shadow says warn",
                "policy_id": "pol_2",
                "policy_version": 1,
                "rule_id": "r2",
            }
        ],
        "cost_estimate": 20.0,
    }


def test_without_a_cost_estimate_the_detail_is_absent() -> None:
    assert "cost_estimate" not in decode(published(cost=None)).details


@pytest.mark.parametrize(
    "decided_at",
    [
        dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(2038, 1, 19, 3, 14, 8, 1, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
    ],
)
def test_times_keep_every_microsecond(decided_at: dt.datetime) -> None:
    assert decode(published(decided_at=decided_at)).occurred_at == decided_at


def test_decoded_decisions_are_fit_to_chain() -> None:
    prepared = prepare(decode(published()))
    assert prepared.before_seq.startswith(b'{"action":"decision.deny"')


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xfe not protobuf", "not a fulcrum.v1.Event"),
        (events_pb2.Event(schema_version=SCHEMA_VERSION + 1).SerializeToString(), "version"),
        (events_pb2.Event(schema_version=SCHEMA_VERSION).SerializeToString(), "no body"),
        (
            events_pb2.Event(
                schema_version=SCHEMA_VERSION,
                decision=events_pb2.DecisionEvent(tenant_id="not-a-uuid"),
            ).SerializeToString(),
            "invalid event",
        ),
    ],
    ids=["garbage", "unknown-version", "no-body", "bad-tenant-id"],
)
def test_events_the_worker_cannot_read_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(UndecodableEvent, match=reason):
        decode(data)


def test_a_time_beyond_any_calendar_is_refused() -> None:
    event = events_pb2.Event.FromString(published())
    event.decision.time.seconds = 2**62
    with pytest.raises(UndecodableEvent, match="invalid event"):
        decode(event.SerializeToString())


def test_a_time_with_nanos_out_of_range_is_refused() -> None:
    event = events_pb2.Event.FromString(published())
    event.decision.time.nanos = 1_000_000_000
    with pytest.raises(UndecodableEvent, match="nanos"):
        decode(event.SerializeToString())
