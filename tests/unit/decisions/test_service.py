"""DecisionService through its seams: a bundle cache, an event publisher and a void recorder
stand-in, with real bundles compiled by the engine. It fails closed, records before it
answers, and refuses what it may not decide."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from prometheus_client import REGISTRY

from fulcrum.auth.principal import Principal, PrincipalKind
from fulcrum.auth.scopes import Scope
from fulcrum.decisions.models import DecisionInput
from fulcrum.decisions.service import DecisionService
from fulcrum.engine.compiler import Bundle, compile_bundle
from fulcrum.engine.model import EVALUATION_ERROR, Action, DecisionRequest, Evaluation, PolicySource
from fulcrum.events.envelope import OutgoingEvent
from fulcrum.events.publisher import Unconfirmed
from fulcrum.kit.errors import FulcrumError, InvalidArgument, PermissionDenied, Unavailable
from fulcrum.kit.validation import MAX_BATCH
from fulcrum.pb.v1 import events_pb2
from tests.unit.engine.policies import policy, rule

TENANT = uuid.UUID("5f0c6a2e-3b1d-4c8e-9a7f-2d4e6b8c0a13")
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"

AGENT = Principal(
    kind=PrincipalKind.API_KEY,
    scopes=frozenset({Scope.DECISIONS_EVALUATE}),
    actor="key:k1",
    tenant_id=TENANT,
    key_id="k1",
)

NO_DELETES = [
    PolicySource(
        "pol_1",
        3,
        policy(
            rule(
                "no-deletes",
                action="deny",
                reason="deletes need a human",
                target={"tools": ["db.delete"]},
            )
        ),
    )
]


def real_bundle() -> Bundle:
    return compile_bundle(NO_DELETES, Action.ALLOW)


def ask(tool: str, trace_id: str | None = TRACE) -> DecisionInput:
    return DecisionInput(DecisionRequest(tool_name=tool, agent_id="agent-7"), trace_id=trace_id)


@dataclass
class Bundles:
    """The bundle cache seam: a bundle, or the error loading it raised."""

    bundle: object = None
    error: Exception | None = None
    asked: list[uuid.UUID] = field(default_factory=list)

    async def get(self, tenant_id: uuid.UUID) -> object:
        self.asked.append(tenant_id)
        if self.error is not None:
            raise self.error
        return self.bundle


@dataclass
class Publisher:
    """The event path seam: keeps what it is given, or raises ``error``."""

    error: BaseException | None = None
    calls: list[list[OutgoingEvent]] = field(default_factory=list)

    async def publish(self, events: Sequence[OutgoingEvent]) -> None:
        self.calls.append(list(events))
        if self.error is not None:
            raise self.error


@dataclass
class Voids:
    records: list[dict[str, object]] = field(default_factory=list)

    async def record(
        self,
        tenant_id: uuid.UUID,
        *,
        actor: str,
        trace_ids: Sequence[str],
        decision_ids: Sequence[uuid.UUID],
        reason: str,
    ) -> None:
        self.records.append(
            {
                "tenant_id": tenant_id,
                "actor": actor,
                "trace_ids": list(trace_ids),
                "decision_ids": list(decision_ids),
                "reason": reason,
            }
        )


class ExplodingBundle:
    """A bundle whose evaluate raises (the engine promises it never does: this guards that)."""

    def __init__(self, bundle: Bundle) -> None:
        self.hash = bundle.hash

    def evaluate(self, request: DecisionRequest, *, explain: bool = False) -> Evaluation:
        raise RuntimeError("boom")


def service(
    bundles: Bundles,
    publisher: Publisher | None = None,
    voids: Voids | None = None,
    *,
    best_effort: bool = False,
) -> DecisionService:
    return DecisionService(bundles, publisher, voids=voids, best_effort=best_effort)  # type: ignore[arg-type]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def unconfirmed(refusal: FulcrumError) -> Unconfirmed:
    return Unconfirmed(refusal, ["m1"])


def decision_of(event: OutgoingEvent) -> events_pb2.DecisionEvent:
    return events_pb2.Event.FromString(event.data).decision


# Deciding


async def test_a_rule_decides_and_the_default_applies_otherwise() -> None:
    bundles = Bundles(real_bundle())
    denied, allowed = await service(bundles).evaluate_batch(
        AGENT, [ask("db.delete"), ask("db.read")]
    )
    assert bundles.asked == [TENANT]  # one bundle read for the whole batch, the caller's tenant
    assert denied.evaluation.verdict.action is Action.DENY
    assert denied.evaluation.verdict.rule_id == "no-deletes"
    assert denied.evaluation.verdict.policy_id == "pol_1"
    assert denied.evaluation.matched
    assert allowed.evaluation.verdict.action is Action.ALLOW
    assert not allowed.evaluation.matched
    assert denied.decision_id != allowed.decision_id
    assert denied.trace_id == TRACE


async def test_a_request_without_a_trace_gets_one() -> None:
    decision = await service(Bundles(real_bundle())).evaluate(AGENT, ask("db.read", None))
    assert len(decision.trace_id) == 32
    int(decision.trace_id, 16)


# Fail closed


@pytest.mark.parametrize(
    "error", [RuntimeError("database down"), InvalidArgument("bad document"), TimeoutError()]
)
async def test_a_bundle_that_cannot_be_loaded_denies(error: Exception) -> None:
    publisher = Publisher()
    decisions = await service(Bundles(error=error), publisher).evaluate_batch(
        AGENT, [ask("db.read"), ask("db.delete")]
    )
    for decision in decisions:
        assert decision.evaluation.verdict.action is Action.DENY
        assert decision.evaluation.verdict.reason == EVALUATION_ERROR
        assert decision.evaluation.bundle_hash == ""
        assert not decision.evaluation.matched
    # The denials are recorded like any other decision.
    (events,) = publisher.calls
    assert [decision_of(e).reason for e in events] == [EVALUATION_ERROR] * 2


async def test_a_bundle_whose_evaluate_raises_denies_and_keeps_its_hash() -> None:
    bundle = real_bundle()
    decision = await service(Bundles(ExplodingBundle(bundle))).evaluate(AGENT, ask("db.read"))
    assert decision.evaluation.verdict.action is Action.DENY
    assert decision.evaluation.verdict.reason == EVALUATION_ERROR
    assert decision.evaluation.bundle_hash == bundle.hash
    assert bundle.hash  # a real content hash, not the empty one of a missing bundle


# Audit before answer


async def test_each_decision_is_published_before_it_is_answered() -> None:
    publisher = Publisher()
    decisions = await service(Bundles(real_bundle()), publisher).evaluate_batch(
        AGENT, [ask("db.delete"), ask("db.read", "0af7651916cd43dd8448eb211c80319c")]
    )
    (events,) = publisher.calls  # one publish for the batch
    assert [e.msg_id for e in events] == [str(d.decision_id) for d in decisions]
    published = [decision_of(e) for e in events]
    assert [(p.decision_id, p.trace_id) for p in published] == [
        (str(d.decision_id), d.trace_id) for d in decisions
    ]
    assert {(p.tenant_id, p.actor, p.agent_id) for p in published} == {
        (str(TENANT), "key:k1", "agent-7")
    }
    assert [(p.tool_name, p.rule_id) for p in published] == [
        ("db.delete", "no-deletes"),
        ("db.read", ""),
    ]
    assert events[0].subject != "" and str(TENANT) in events[0].subject


async def test_unconfirmed_records_refuse_the_call_and_void_the_decisions() -> None:
    refusal = Unavailable("the event path did not confirm the record in time")
    publisher, voids = Publisher(error=unconfirmed(refusal)), Voids()
    answered = sample("fulcrum_decisions_total", action="deny")
    with pytest.raises(Unavailable) as raised:
        await service(Bundles(real_bundle()), publisher, voids).evaluate_batch(
            AGENT, [ask("db.delete"), ask("db.read", "0af7651916cd43dd8448eb211c80319c")]
        )
    assert raised.value is refusal
    (events,) = publisher.calls
    (void,) = voids.records
    assert void["tenant_id"] == TENANT
    assert void["actor"] == "key:k1"
    assert [str(i) for i in void["decision_ids"]] == [e.msg_id for e in events]  # type: ignore[attr-defined]
    assert void["trace_ids"] == [TRACE, "0af7651916cd43dd8448eb211c80319c"]
    assert void["reason"] == str(refusal)
    # A refused decision was not given: it is not counted as answered.
    assert sample("fulcrum_decisions_total", action="deny") == answered


async def test_a_refusal_before_sending_raises_and_voids_nothing() -> None:
    voids = Voids()
    with pytest.raises(Unavailable):
        await service(
            Bundles(real_bundle()), Publisher(error=Unavailable("NATS is down")), voids
        ).evaluate(AGENT, ask("db.read"))
    assert voids.records == []  # nothing was sent, so nothing can be in the ledger


@pytest.mark.parametrize(
    "error",
    [unconfirmed(Unavailable("not confirmed")), Unavailable("the event path is unavailable")],
    ids=["unconfirmed", "refused"],
)
async def test_best_effort_answers_and_counts_the_unrecorded(error: BaseException) -> None:
    voids = Voids()
    before = sample("fulcrum_decisions_unrecorded_total")
    decisions = await service(
        Bundles(real_bundle()), Publisher(error=error), voids, best_effort=True
    ).evaluate_batch(AGENT, [ask("db.delete"), ask("db.read"), ask("db.write")])
    assert [d.evaluation.verdict.action for d in decisions] == [
        Action.DENY,
        Action.ALLOW,
        Action.ALLOW,
    ]
    assert sample("fulcrum_decisions_unrecorded_total") == before + 3
    assert voids.records == []  # answered, so not void


async def test_recorded_decisions_are_not_counted_as_unrecorded() -> None:
    before = sample("fulcrum_decisions_unrecorded_total")
    await service(Bundles(real_bundle()), Publisher(), best_effort=True).evaluate(
        AGENT, ask("db.read")
    )
    assert sample("fulcrum_decisions_unrecorded_total") == before


async def test_without_a_publisher_the_decision_is_answered() -> None:
    answered = sample("fulcrum_decisions_total", action="deny")
    decision = await service(Bundles(real_bundle()), None).evaluate(AGENT, ask("db.delete"))
    assert decision.evaluation.verdict.action is Action.DENY
    assert sample("fulcrum_decisions_total", action="deny") == answered + 1


# Refusals


@pytest.mark.parametrize("count", [0, MAX_BATCH + 1])
async def test_batch_size_limits_name_the_requests_field(count: int) -> None:
    bundles, publisher = Bundles(real_bundle()), Publisher()
    with pytest.raises(InvalidArgument) as raised:
        await service(bundles, publisher).evaluate_batch(AGENT, [ask("db.read")] * count)
    assert raised.value.field == "requests"
    assert bundles.asked == [] and publisher.calls == []


async def test_a_full_batch_is_decided() -> None:
    publisher = Publisher()
    decisions = await service(Bundles(real_bundle()), publisher).evaluate_batch(
        AGENT, [ask("db.read")] * MAX_BATCH
    )
    assert len(decisions) == MAX_BATCH
    assert len({d.decision_id for d in decisions}) == MAX_BATCH
    assert len(publisher.calls[0]) == MAX_BATCH


@pytest.mark.parametrize(
    "scopes",
    [frozenset(), frozenset({Scope.POLICIES_READ, Scope.AUDIT_READ})],
    ids=["none", "others"],
)
async def test_deciding_needs_the_evaluate_scope(scopes: frozenset[Scope]) -> None:
    bundles, publisher = Bundles(real_bundle()), Publisher()
    reader = Principal(kind=PrincipalKind.API_KEY, scopes=scopes, actor="key:k2", tenant_id=TENANT)
    with pytest.raises(PermissionDenied, match="decisions:evaluate"):
        await service(bundles, publisher).evaluate(reader, ask("db.read"))
    assert bundles.asked == [] and publisher.calls == []


async def test_deciding_needs_a_tenant() -> None:
    platform = Principal(
        kind=PrincipalKind.PLATFORM,
        scopes=frozenset({Scope.DECISIONS_EVALUATE}),
        actor="platform:p1",
    )
    with pytest.raises(PermissionDenied):
        await service(Bundles(real_bundle())).evaluate(platform, ask("db.read"))
