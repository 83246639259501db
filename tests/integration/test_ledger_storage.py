"""LedgerWriter against real PostgreSQL: what is stored verifies, and the decision time
series is the exact projection of the ledger's decision records.

The ledger row is parsed by PostgreSQL from the very canonical JSON the worker hashed; these
tests write awkward details (non-ASCII keys, control characters, tiny and integral floats,
tuples, integer keys) and check that verification, reading ``jsonb`` back, agrees.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from fulcrum.admin import create_tenant
from fulcrum.audit import repository as repo
from fulcrum.audit.chain import PreparedEntry, link, prepare
from fulcrum.audit.checkpoints import CheckpointSigner
from fulcrum.audit.intake import decode
from fulcrum.audit.records import GENESIS_HASH, LedgerEntry, RecordKind
from fulcrum.audit.verify_chain import AnchorLog
from fulcrum.audit.verify_stored import verify_tenant
from fulcrum.audit.writer import LedgerWriter
from fulcrum.container import checkpoint_verifier
from fulcrum.decisions.models import Decision, DecisionInput
from fulcrum.decisions.wire import decision_event
from fulcrum.engine.model import Action, DecisionRequest, Evaluation, Verdict
from fulcrum.kit.config import Service
from fulcrum.kit.db import Database, conninfo
from fulcrum.kit.secrets import Secrets
from tests.support.stack import LiveStack
from tests.unit.audit.generated import document, text

T0 = dt.datetime(2026, 11, 29, 10, 0, 0, tzinfo=dt.UTC)
ACTIONS = [Action.ALLOW, Action.DENY, Action.WARN, Action.REQUIRE_APPROVAL]

AWKWARD_DETAILS: list[dict[Any, Any]] = [
    {"whole_float": 1.0, "int": 1, "negative_zero": -0.0, "tiny": 1.5e-7, "pi": 3.141592653589793},
    {"edge": 2**53 - 1, "edge_float": float(2**53 - 1), "below": -(2**53 - 1), "big": 1e15},
    {"tuple": (1, (2, 3)), "nested": {"list": [{"a": None}, [], {}]}, "flags": [True, False]},
    {7: "int key", 2.5: "float key", True: "bool key", None: "null key"},
    {"text": 'naïve 日本語 😀 e\u0301 \u2028 \u200b "quoted" \\ \x7f \x1f </script>'},
    {"é": 1, "€": 2, "😀": 3, "z": 4, "a\u00ff": 5},
]


def decision(tenant_id: uuid.UUID, n: int) -> LedgerEntry:
    """A decision record exactly as the worker decodes it from the API's event."""
    action = ACTIONS[n % len(ACTIONS)]
    request = DecisionRequest(
        tool_name=f"tool.{n % 3}",
        agent_id=f"agent-{n % 5}",
        agent_roles=("reader",),
        tool_args={},
        transport="grpc",
        model_id="m",
        cost_estimate=[None, 20.0, 0.25][n % 3],
    )
    outcome = Decision(
        decision_id=uuid.uuid4(),
        trace_id=f"{n:032x}",
        evaluation=Evaluation(
            Verdict(action, f"reason {n}", f"pol_{n % 2}", n % 4 + 1, f"rule-{n % 3}"),
            "cd" * 32,
            matched=n % 2 == 0,
        ),
        evaluation_ns=1000 + n,
        # Two minutes' worth, so the roll-ups have more than one row per action.
        decided_at=T0 + dt.timedelta(seconds=n * 7, microseconds=n),
    )
    return decode(decision_event(tenant_id, "key:k", DecisionInput(request), outcome).data)


def change(tenant_id: uuid.UUID, n: int, details: dict[Any, Any]) -> LedgerEntry:
    return LedgerEntry(
        tenant_id=tenant_id,
        event_id=uuid.uuid4(),
        kind=RecordKind.CHANGE,
        occurred_at=T0 + dt.timedelta(seconds=n),
        trace_id=f"{n:032x}",
        actor="user:ünïcode@example.com",
        action="policy.update",
        resource_type="policy",
        resource_id=f"pol_{n}",
        outcome="success",
        details=details,
    )


@pytest.fixture
async def worker_db(stack: LiveStack) -> AsyncIterator[Database]:
    db = Database(stack.settings, Service.WORKER)
    await db.open()
    yield db
    await db.close()


@pytest.fixture
def writer(stack: LiveStack, worker_db: Database) -> LedgerWriter:
    signer = CheckpointSigner(
        Secrets(stack.settings, Service.WORKER).require("audit_signing_key").get()
    )
    return LedgerWriter(
        worker_db, signer, checkpoint_every_records=50, checkpoint_every_seconds=3600
    )


async def new_tenant_id(stack: LiveStack) -> uuid.UUID:
    tenant, _ = await create_tenant(stack.settings, f"ledger-storage-{uuid.uuid4().hex[:8]}", None)
    return tenant.id


def verified(stack: LiveStack, tenant_id: uuid.UUID) -> tuple[bool, int, str]:
    result = verify_tenant(
        conninfo(stack.settings, Service.ADMIN),
        tenant_id,
        checkpoint_verifier(stack.settings),
        anchors=AnchorLog(),  # the database alone: this test anchors nothing
    )
    return result.ok, result.checked, result.detail


def rows(stack: LiveStack, sql: str, tenant_id: uuid.UUID) -> list[tuple[Any, ...]]:
    with psycopg.connect(stack.superuser_dsn()) as su:
        return su.execute(sql, {"t": tenant_id}).fetchall()


async def test_awkward_details_are_stored_as_hashed_and_verify(
    stack: LiveStack, writer: LedgerWriter
) -> None:
    tenant_id = await new_tenant_id(stack)
    rng = random.Random(11)
    entries = [change(tenant_id, n, d) for n, d in enumerate(AWKWARD_DETAILS)]
    entries += [
        dataclasses.replace(change(tenant_id, 100 + n, {"doc": document(rng)}), actor=text(rng))
        for n in range(60)
    ]
    prepared: list[PreparedEntry] = []
    for entry in entries:
        try:
            prepared.append(prepare(entry))
        except ValueError:
            continue  # generated values beyond what JSON numbers hash stably: set aside
    assert len(prepared) > 40

    assert await writer.write(tenant_id, prepared[:30]) == 30
    assert await writer.write(tenant_id, prepared[30:]) == len(prepared) - 30

    ok, checked, detail = verified(stack, tenant_id)
    assert ok, detail
    assert checked == len(prepared)
    stored = rows(
        stack, "SELECT seq FROM audit_records WHERE tenant_id = %(t)s ORDER BY seq", tenant_id
    )
    assert [seq for (seq,) in stored] == list(range(1, len(prepared) + 1))


async def test_the_decision_series_and_rollups_project_the_decision_records(
    stack: LiveStack, writer: LedgerWriter
) -> None:
    tenant_id = await new_tenant_id(stack)
    decisions = [decision(tenant_id, n) for n in range(40)]
    batch = [prepare(e) for e in decisions[:25]]
    batch.insert(3, prepare(change(tenant_id, 1, {"note": "changes are not in the series"})))
    assert await writer.write(tenant_id, batch) == 26
    assert await writer.write(tenant_id, [prepare(e) for e in decisions[25:]]) == 15

    series = rows(
        stack,
        "SELECT decision_id, decided_at, agent_id, tool_name, action, policy_id, policy_version,"
        " rule_id, matched, evaluation_ns, trace_id FROM decisions WHERE tenant_id = %(t)s",
        tenant_id,
    )
    expected = {
        (
            e.event_id,
            e.occurred_at,
            e.agent_id,
            e.tool_name,
            e.outcome,
            e.details["policy_id"],
            e.details["policy_version"],
            e.details["rule_id"],
            e.details["matched"],
            e.details["evaluation_time_ns"],
            e.trace_id,
        )
        for e in decisions
    }
    assert set(series) == expected
    assert len(series) == len(decisions)

    rollups = rows(
        stack,
        "SELECT minute, action, decisions FROM decision_rollups WHERE tenant_id = %(t)s",
        tenant_id,
    )
    minutes = Counter(
        (e.occurred_at.replace(second=0, microsecond=0), e.outcome) for e in decisions
    )
    assert {(m, a): n for m, a, n in rollups} == minutes
    assert len({m for m, _ in minutes}) > 1  # the batches straddle minutes

    ok, checked, detail = verified(stack, tenant_id)
    assert (ok, checked) == (True, 41), detail


async def test_a_redelivered_batch_changes_nothing(stack: LiveStack, writer: LedgerWriter) -> None:
    tenant_id = await new_tenant_id(stack)
    decisions = [prepare(decision(tenant_id, n)) for n in range(20)]
    assert await writer.write(tenant_id, decisions[:12]) == 12
    # A crash between commit and acknowledgement: the same events come again, with new ones.
    assert await writer.write(tenant_id, decisions) == 8
    assert await writer.write(tenant_id, decisions) == 0

    counts = rows(
        stack,
        "SELECT (SELECT count(*) FROM audit_records WHERE tenant_id = %(t)s),"
        " (SELECT count(*) FROM decisions WHERE tenant_id = %(t)s),"
        " (SELECT sum(decisions) FROM decision_rollups WHERE tenant_id = %(t)s)",
        tenant_id,
    )
    assert counts == [(20, 20, 20)]
    ok, checked, detail = verified(stack, tenant_id)
    assert (ok, checked) == (True, 20), detail


async def test_writers_that_interleave_on_one_tenant_keep_one_chain(
    stack: LiveStack, worker_db: Database, writer: LedgerWriter
) -> None:
    """Two workers (each predicting the head from its own last batch) take turns: each
    prediction the other made wrong is caught under the lock, and nothing forks or gaps."""
    other = LedgerWriter(
        worker_db,
        CheckpointSigner(
            Secrets(stack.settings, Service.WORKER).require("audit_signing_key").get()
        ),
        checkpoint_every_records=50,
        checkpoint_every_seconds=3600,
    )
    tenant_id = await new_tenant_id(stack)
    batches = [[prepare(decision(tenant_id, 10 * b + n)) for n in range(10)] for b in range(8)]
    for index, batch in enumerate(batches):
        assert await (writer if index % 2 == 0 else other).write(tenant_id, batch) == 10
    # Concurrently as well: the head's lock orders them.
    more = [[prepare(decision(tenant_id, 100 + 10 * b + n)) for n in range(10)] for b in range(6)]
    written = await asyncio.gather(
        *(
            (writer if index % 2 == 0 else other).write(tenant_id, batch)
            for index, batch in enumerate(more)
        )
    )
    assert written == [10] * 6

    ok, checked, detail = verified(stack, tenant_id)
    assert (ok, checked) == (True, 140), detail


async def test_events_of_an_unknown_tenant_are_refused_and_nothing_is_stored(
    stack: LiveStack, writer: LedgerWriter
) -> None:
    unknown = uuid.uuid4()
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        await writer.write(unknown, [prepare(decision(unknown, n)) for n in range(3)])
    assert rows(stack, "SELECT count(*) FROM audit_records WHERE tenant_id = %(t)s", unknown) == [
        (0,)
    ]


async def test_the_statement_for_a_continuous_aggregate_leaves_rollups_to_the_database(
    stack: LiveStack, worker_db: Database
) -> None:
    """Natively the worker writes the roll-ups; where TimescaleDB keeps them (a continuous
    aggregate, not installable here) the same batch is stored without touching them."""
    async with worker_db.tx() as conn:
        assert await repo.rollups_are_written(conn)
    tenant_id = await new_tenant_id(stack)
    links = link(
        [prepare(decision(tenant_id, n)) for n in range(5)], head_seq=0, head_hash=GENESIS_HASH
    )
    async with worker_db.tenant_tx(tenant_id) as conn:
        await repo.insert_batch(conn, links, rollups=False)
    counts = rows(
        stack,
        "SELECT (SELECT count(*) FROM audit_records WHERE tenant_id = %(t)s),"
        " (SELECT count(*) FROM decisions WHERE tenant_id = %(t)s),"
        " (SELECT count(*) FROM decision_rollups WHERE tenant_id = %(t)s)",
        tenant_id,
    )
    assert counts == [(5, 5, 0)]


def worker_signer(stack: LiveStack) -> CheckpointSigner:
    return CheckpointSigner(
        Secrets(stack.settings, Service.WORKER).require("audit_signing_key").get()
    )
