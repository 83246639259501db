"""The worker's intake: the decision template gives exactly the bytes of the general path,
which are RFC 8785's, for any decision event; what it cannot handle goes the general way."""

from __future__ import annotations

import datetime as dt
import random
import uuid

import pytest
import rfc8785

from fulcrum.audit import intake
from fulcrum.audit.chain import PreparedEntry, link, prepare
from fulcrum.audit.intake import decode, prepare_event
from fulcrum.audit.records import GENESIS_HASH, RecordKind, chained_fields
from fulcrum.events.envelope import UndecodableEvent
from fulcrum.events.streams import SCHEMA_VERSION
from fulcrum.pb.v1 import decisions_pb2, events_pb2
from tests.unit.audit.generated import text

ACTIONS = [
    decisions_pb2.DECISION_ACTION_ALLOW,
    decisions_pb2.DECISION_ACTION_WARN,
    decisions_pb2.DECISION_ACTION_ESCALATE,
    decisions_pb2.DECISION_ACTION_REQUIRE_APPROVAL,
    decisions_pb2.DECISION_ACTION_DENY,
]
COSTS = [0.02, 20.0, 1e-4, 9.99e-5, 1e-7, 123456.789, 2.0**52, 1e15 + 0.5, -0.0, 0.0, 7.0]


def verdict(rng: random.Random) -> decisions_pb2.Verdict:
    return decisions_pb2.Verdict(
        action=rng.choice(ACTIONS),
        reason=text(rng),
        policy_id=text(rng),
        policy_version=rng.randint(-(2**31), 2**31 - 1),
        rule_id=text(rng),
    )


def decision_event(rng: random.Random) -> events_pb2.DecisionEvent:
    event = events_pb2.DecisionEvent(
        tenant_id=str(uuid.UUID(int=rng.getrandbits(128))),
        decision_id=str(uuid.UUID(int=rng.getrandbits(128))),
        trace_id=text(rng),
        actor=text(rng),
        agent_id=text(rng),
        tool_name=text(rng),
        transport=text(rng),
        model_id=text(rng),
        action=rng.choice(ACTIONS),
        reason=text(rng),
        policy_id=text(rng),
        policy_version=rng.randint(-(2**31), 2**31 - 1),
        rule_id=text(rng),
        bundle_hash=text(rng),
        matched=rng.random() < 0.5,
        shadow=[verdict(rng) for _ in range(rng.randint(0, 3))],
        evaluation_time_ns=rng.choice([0, 1, 12_345, 2**53 - 1, -(2**53 - 1)]),
    )
    event.time.seconds = rng.randint(0, 253402300799)  # 1970 to 9999
    event.time.nanos = rng.randint(0, 999_999_999)
    if rng.random() < 0.7:
        event.cost_estimate = rng.choice(COSTS)
    return event


def envelope(event: events_pb2.DecisionEvent) -> bytes:
    return events_pb2.Event(schema_version=SCHEMA_VERSION, decision=event).SerializeToString()


def canonical(prepared: PreparedEntry, seq: int = 7) -> bytes:
    [linked] = link([prepared], head_seq=seq - 1, head_hash=bytes(32) if seq > 1 else GENESIS_HASH)
    return linked.canonical


def template_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the decisions the template encoded (rather than the general path)."""
    calls: list[int] = []
    original = intake.fast_prepared

    def counted(d: events_pb2.DecisionEvent) -> PreparedEntry:
        prepared = original(d)
        calls.append(1)
        return prepared

    monkeypatch.setattr(intake, "fast_prepared", counted)
    return calls


@pytest.mark.parametrize("seed", range(10))
def test_the_template_writes_the_general_paths_bytes_which_are_rfc_8785s(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    calls = template_calls(monkeypatch)
    for _ in range(200):
        data = envelope(decision_event(rng))
        fast = prepare_event(data)
        entry = decode(data)
        general = prepare(entry)

        assert (fast.tenant_id, fast.event_id, fast.kind, fast.occurred_at) == (
            entry.tenant_id,
            entry.event_id,
            RecordKind.DECISION,
            entry.occurred_at,
        )
        assert canonical(fast) == canonical(general)
        assert canonical(fast) == rfc8785.dumps(chained_fields(entry, 7))
    assert len(calls) > 150  # most took the template; tiny costs fell back


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda e: setattr(e, "reason", "nul\x00inside"), "reason"),
        (lambda e: setattr(e, "actor", "nul\x00inside"), "actor"),
        (lambda e: e.shadow.add(action=ACTIONS[0], rule_id="nul\x00inside"), "rule_id"),
        (lambda e: setattr(e, "evaluation_time_ns", 2**53), "evaluation_time_ns"),
        (lambda e: setattr(e, "cost_estimate", float("inf")), "details are not JSON"),
        (lambda e: setattr(e, "cost_estimate", 1e16), "cost_estimate"),
    ],
    ids=["nul-reason", "nul-actor", "nul-shadow", "huge-int", "infinite-cost", "huge-cost"],
)
def test_what_cannot_be_stored_is_refused_by_the_general_path_saying_why(
    change: object, reason: str
) -> None:
    event = decision_event(random.Random(1))
    assert callable(change)
    change(event)
    with pytest.raises(ValueError, match=f"event {event.decision_id}: .*{reason}"):
        prepare_event(envelope(event))


def test_a_tiny_cost_falls_back_and_still_matches_the_reference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = template_calls(monkeypatch)
    event = decision_event(random.Random(2))
    event.cost_estimate = 1e-7  # RFC 8785 writes 1e-7; Python's repr agrees only by luck
    data = envelope(event)
    assert canonical(prepare_event(data)) == rfc8785.dumps(chained_fields(decode(data), 7))
    assert calls == []


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (
            events_pb2.DecisionEvent(
                tenant_id="not-a-uuid", decision_id=str(uuid.uuid4()), action=ACTIONS[0]
            ),
            "badly formed hexadecimal UUID string",
        ),
        (
            events_pb2.DecisionEvent(
                tenant_id=str(uuid.uuid4()), decision_id="x", action=ACTIONS[0]
            ),
            "badly formed hexadecimal UUID string",
        ),
        (
            events_pb2.DecisionEvent(
                tenant_id=str(uuid.uuid4()), decision_id=str(uuid.uuid4()), action=99
            ),
            "unknown decision action 99",
        ),
    ],
    ids=["bad-tenant", "bad-decision-id", "unknown-action"],
)
def test_invalid_decisions_are_undecodable(event: events_pb2.DecisionEvent, reason: str) -> None:
    with pytest.raises(UndecodableEvent, match=f"invalid event: {reason}"):
        prepare_event(envelope(event))


def test_change_events_take_the_general_path() -> None:
    change = events_pb2.ChangeEvent(
        tenant_id=str(uuid.uuid4()),
        change_id=str(uuid.uuid4()),
        trace_id="t",
        actor="user:alice",
        action="policy.update",
        resource_type="policy",
        resource_id="pol_1",
        outcome="success",
    )
    change.time.FromDatetime(dt.datetime(2026, 11, 29, tzinfo=dt.UTC))
    change.details.update({"version": {"from": 1, "to": 2}})
    data = events_pb2.Event(schema_version=SCHEMA_VERSION, change=change).SerializeToString()
    prepared = prepare_event(data)
    assert prepared.kind is RecordKind.CHANGE
    assert canonical(prepared) == rfc8785.dumps(chained_fields(decode(data), 7))
