"""The event path and the ledger against real NATS, PostgreSQL, API and worker processes:
nothing answered is lost, nothing refused is recorded, tampering is detected."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import psycopg
import pytest

from fulcrum.devstack.process import read_pid
from fulcrum.pb.v1 import decisions_pb2, decisions_pb2_grpc
from tests.support.identity import TenantFixture, enterprise_plan, new_tenant, rest
from tests.support.processes import FulcrumProcess, start_api, start_worker
from tests.support.stack import LiveStack

FAST_CHECKPOINTS = {"FULCRUM_CHECKPOINT_EVERY_SECONDS": "1"}


def batch(n: int, tool: str = "db.query") -> dict:
    return {"requests": [{"tool": {"name": tool}, "agent": {"id": "agent-7"}}] * n}


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def ledger_decisions(stack: LiveStack, tenant: TenantFixture) -> list[uuid.UUID]:
    with psycopg.connect(stack.superuser_dsn()) as su:
        rows = su.execute(
            "SELECT event_id FROM audit_records WHERE tenant_id = %s AND kind = 'decision'",
            (tenant.id,),
        ).fetchall()
    return [row[0] for row in rows]


def seqs(stack: LiveStack, tenant: TenantFixture) -> list[int]:
    with psycopg.connect(stack.superuser_dsn()) as su:
        rows = su.execute(
            "SELECT seq FROM audit_records WHERE tenant_id = %s ORDER BY seq", (tenant.id,)
        ).fetchall()
    return [row[0] for row in rows]


def verify(api: FulcrumProcess, tenant: TenantFixture) -> dict:
    with rest(api, tenant.owner_key) as client:
        response = client.post("/v1/audit/verify", timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


async def burst(
    api: FulcrumProcess,
    key: str,
    batches: int,
    *,
    size: int = 100,
    concurrency: int = 4,
    during: Callable[[int], None] | None = None,
) -> tuple[set[uuid.UUID], list[int]]:
    """Send ``batches`` batches; return the decision ids answered and the refusal statuses."""
    answered: set[uuid.UUID] = set()
    refused: list[int] = []
    sent = 0
    lock = asyncio.Lock()
    async with api.async_http(key, timeout=60) as client:

        async def sender() -> None:
            nonlocal sent
            while True:
                async with lock:
                    if sent >= batches:
                        return
                    sent += 1
                    number = sent
                if during:
                    await asyncio.to_thread(during, number)
                response = await client.post("/v1/decisions:batch", json=batch(size))
                while response.status_code == 429:
                    # Every decision costs a token; a burst respects the limit and waits.
                    await asyncio.sleep(float(response.headers["retry-after"]))
                    response = await client.post("/v1/decisions:batch", json=batch(size))
                if response.status_code == 200:
                    answered.update(
                        uuid.UUID(d["decision_id"]) for d in response.json()["decisions"]
                    )
                else:
                    refused.append(response.status_code)

        await asyncio.gather(*(sender() for _ in range(concurrency)))
    return answered, refused


@pytest.fixture(scope="module")
def worker(stack: LiveStack) -> Iterator[FulcrumProcess]:
    process = start_worker(stack, **FAST_CHECKPOINTS)
    yield process
    process.stop()


def test_worker_killed_mid_burst_loses_nothing(stack: LiveStack, api: FulcrumProcess) -> None:
    tenant = new_tenant(stack, "kill9")
    enterprise_plan(stack, tenant)
    first = start_worker(stack, name="worker-doomed", **FAST_CHECKPOINTS)

    def kill_at_third(number: int) -> None:
        if number == 30 and first.proc.poll() is None:
            os.kill(first.proc.pid, signal.SIGKILL)

    answered, refused = asyncio.run(burst(api, tenant.owner_key, 100, during=kill_at_third))
    assert first.proc.wait(timeout=10) == -signal.SIGKILL
    assert (len(answered), refused) == (10_000, [])
    second = start_worker(stack, name="worker-second", **FAST_CHECKPOINTS)
    try:
        wait_for(lambda: len(ledger_decisions(stack, tenant)) >= 10_000, 180, "the ledger")
        recorded = ledger_decisions(stack, tenant)
        assert len(recorded) == 10_000 and set(recorded) == answered
        numbers = seqs(stack, tenant)
        assert numbers == list(range(1, len(numbers) + 1))
        result = verify(api, tenant)
        assert result["ok"], result
    finally:
        second.stop()


def test_nats_restart_mid_burst(
    stack: LiveStack, api: FulcrumProcess, worker: FulcrumProcess
) -> None:
    tenant = new_tenant(stack, "natsrestart")
    enterprise_plan(stack, tenant)

    def restart_nats(number: int) -> None:
        # The sender that draws batch 20 restarts NATS (in its own thread) while the others
        # keep sending: an outage of about a second, inside the API's publish retry budget
        # (10 s). Stopping and starting from two senders' threads could overlap, and would
        # tie the outage to how fast refused requests come back.
        if number == 20:
            stack.devstack.nats.stop()
            time.sleep(1.0)
            stack.devstack.nats.start()

    try:
        answered, refused = asyncio.run(
            burst(api, tenant.owner_key, 60, size=50, during=restart_nats)
        )
    finally:
        if not stack.devstack.nats.is_running():
            stack.devstack.nats.start()
    assert answered, "nothing was answered"
    assert set(refused) <= {503}
    wait_for(lambda: set(ledger_decisions(stack, tenant)) >= answered, 120, "the ledger")
    time.sleep(2)  # anything refused but recorded would have arrived by now
    recorded = ledger_decisions(stack, tenant)
    assert len(recorded) == len(set(recorded))
    # A refused decision can be in the ledger only with its void record (an outage longer
    # than the retry budget; see the test below): what is not voided was answered.
    assert set(recorded) - set(ledger_voids(stack, tenant)) == answered
    assert verify(api, tenant)["ok"]


def ledger_voids(stack: LiveStack, tenant: TenantFixture) -> list[uuid.UUID]:
    with psycopg.connect(stack.superuser_dsn()) as su:
        rows = su.execute(
            "SELECT resource_id FROM audit_records WHERE tenant_id = %s AND kind = 'change' "
            "AND action = 'decision.void' AND outcome = 'not_answered'",
            (tenant.id,),
        ).fetchall()
    return [uuid.UUID(row[0]) for row in rows]


def test_a_refused_decision_whose_event_was_stored_is_voided(
    stack: LiveStack, api: FulcrumProcess, worker: FulcrumProcess
) -> None:
    """NATS frozen (SIGSTOP) while a batch is published: the API gives up after its retry
    budget and refuses, but the server, thawed, stores the events it had already received.
    Those decisions reach the ledger although nobody was answered: each must have a void
    record, so that the ledger's decisions minus the voided ones are exactly those answered."""
    quick = start_api(stack, name="api-void", FULCRUM_EVENTS_PUBLISH_RETRY_SECONDS="1")
    try:
        tenant = new_tenant(stack, "void")
        decide(quick, tenant, 5)  # answered normally
        pid = read_pid(stack.devstack.nats.pidfile)
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            with rest(quick, tenant.owner_key) as client:
                response = client.post("/v1/decisions:batch", json=batch(20), timeout=30)
        finally:
            os.kill(pid, signal.SIGCONT)
        assert response.status_code == 503, response.text
        assert "not confirm" in response.json()["error"]["message"]

        wait_for(lambda: len(ledger_voids(stack, tenant)) >= 20, 60, "the void records")
        wait_for(lambda: len(ledger_decisions(stack, tenant)) >= 25, 60, "the thawed events")
        time.sleep(2)  # anything else would have arrived by now
        decisions, voided = ledger_decisions(stack, tenant), ledger_voids(stack, tenant)
        assert len(decisions) == 25 and len(voided) == 20
        assert set(voided) <= set(decisions)  # the voided ones are the refused batch's
        assert len(set(decisions) - set(voided)) == 5  # what remains is what was answered
        metrics = httpx.get(f"http://127.0.0.1:{quick.metrics_port}/metrics", timeout=10).text
        assert "fulcrum_decision_voids_total 20.0" in metrics
        assert verify(quick, tenant)["ok"]
    finally:
        quick.stop()


def decide(api: FulcrumProcess, tenant: TenantFixture, n: int) -> None:
    with rest(api, tenant.owner_key) as client:
        assert client.post("/v1/decisions:batch", json=batch(n)).status_code == 200


def settled(stack: LiveStack, tenant: TenantFixture, decisions: int) -> int:
    """Wait until the decisions and every committed change are chained, and a checkpoint
    pins the newest record."""

    def done() -> bool:
        with psycopg.connect(stack.superuser_dsn()) as su:
            row = su.execute(
                "SELECT (SELECT count(*) FROM audit_records WHERE tenant_id = %s),"
                "       (SELECT count(*) FROM audit_events WHERE tenant_id = %s),"
                "       (SELECT max(seq) FROM audit_records WHERE tenant_id = %s),"
                "       (SELECT max(seq) FROM audit_checkpoints WHERE tenant_id = %s)",
                (tenant.id, tenant.id, tenant.id, tenant.id),
            ).fetchone()
        assert row is not None
        records, changes, newest, pinned = row
        return records == decisions + changes and newest is not None and newest == pinned

    wait_for(done, 60, "records and checkpoint")
    return seqs(stack, tenant)[-1]


def tamper(stack: LiveStack, sql: str, *params: object) -> None:
    """As the database superuser, with the append-only triggers out of the way."""
    with psycopg.connect(stack.superuser_dsn(), autocommit=True) as su:
        su.execute("SET session_replication_role = replica")
        su.execute(sql, params)


def test_changed_field_is_named(
    stack: LiveStack, api: FulcrumProcess, worker: FulcrumProcess
) -> None:
    tenant = new_tenant(stack, "tamper-edit")
    decide(api, tenant, 20)
    settled(stack, tenant, 20)
    assert verify(api, tenant)["ok"]
    tamper(
        stack,
        "UPDATE audit_records SET outcome = 'allow' WHERE tenant_id = %s AND seq = 10",
        tenant.id,
    )
    result = verify(api, tenant)
    assert (result["ok"], result["first_bad_seq"], result["problem"]) == (
        False,
        10,
        "hash_mismatch",
    )


def test_deleted_middle_record_is_a_gap(
    stack: LiveStack, api: FulcrumProcess, worker: FulcrumProcess
) -> None:
    tenant = new_tenant(stack, "tamper-gap")
    decide(api, tenant, 20)
    settled(stack, tenant, 20)
    tamper(stack, "DELETE FROM audit_records WHERE tenant_id = %s AND seq = 7", tenant.id)
    result = verify(api, tenant)
    assert (result["ok"], result["first_bad_seq"], result["problem"]) == (False, 7, "gap")


def test_deleted_newest_records_break_the_checkpoint(
    stack: LiveStack, api: FulcrumProcess, worker: FulcrumProcess, tmp_path: Path
) -> None:
    tenant = new_tenant(stack, "tamper-tail")
    decide(api, tenant, 20)
    newest = settled(stack, tenant, 20)
    tamper(
        stack, "DELETE FROM audit_records WHERE tenant_id = %s AND seq > %s", tenant.id, newest - 3
    )
    result = verify(api, tenant)
    assert (result["ok"], result["first_bad_seq"], result["problem"]) == (
        False,
        newest - 2,
        "checkpoint_mismatch",
    )
    cli = stack.fulcrum("audit", "verify", "--tenant", str(tenant.id))
    assert cli.returncode == 1
    assert f"FAILED at seq {newest - 2}: checkpoint_mismatch" in cli.stdout


def test_the_ledger_refuses_changes_even_from_its_owner(
    stack: LiveStack, api: FulcrumProcess, worker: FulcrumProcess
) -> None:
    tenant = new_tenant(stack, "append-only")
    decide(api, tenant, 3)
    settled(stack, tenant, 3)
    for statement in (
        "UPDATE audit_records SET outcome = 'x'",
        "DELETE FROM audit_records",
        "TRUNCATE audit_records",
        "UPDATE audit_checkpoints SET seq = 1",
    ):
        with psycopg.connect(stack.superuser_dsn(), autocommit=True) as su:
            # The owner is under forced RLS too: name the tenant so the rows are visible.
            su.execute("SET ROLE fulcrum_owner")
            su.execute("SELECT set_config('fulcrum.tenant_id', %s, false)", (str(tenant.id),))
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                su.execute(statement)
    assert len(ledger_decisions(stack, tenant)) == 3


def rss_kib(process: FulcrumProcess) -> int:
    """The API's resident memory: its supervisor's and every serving process's."""
    return sum(_rss_kib(pid) for pid in process.pids())


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_flood_is_shed_with_bounded_memory(stack: LiveStack, worker: FulcrumProcess) -> None:
    small = start_api(stack, name="api-flood", FULCRUM_EVENTS_MAX_INFLIGHT="150")
    try:
        tenant = new_tenant(stack, "flood")
        enterprise_plan(stack, tenant)
        decide(small, tenant, 10)  # warm: bundle compiled, connections open
        before = rss_kib(small)
        answered, refused = asyncio.run(
            burst(small, tenant.owner_key, 400, size=100, concurrency=32)
        )
        grown_mib = (rss_kib(small) - before) / 1024
        with small.channel() as channel:
            stub = decisions_pb2_grpc.DecisionServiceStub(channel)
            request = decisions_pb2.EvaluateBatchRequest(
                requests=[decisions_pb2.EvaluateRequest(tool=decisions_pb2.Tool(name="x"))] * 100
            )
            metadata = (("authorization", f"Bearer {tenant.owner_key}"),)
            futures = [stub.EvaluateBatch.future(request, metadata=metadata) for _ in range(16)]
            codes = set()
            for future in futures:
                try:
                    reply = future.result(timeout=60)
                except grpc.RpcError as err:
                    codes.add(err.code())
                else:
                    codes.add(grpc.StatusCode.OK)
                    answered.update(uuid.UUID(d.decision_id) for d in reply.decisions)
        assert refused and set(refused) == {503}
        assert answered
        assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
        assert grown_mib < 64, f"API grew by {grown_mib:.1f} MiB under the flood"
        metrics = httpx.get(f"http://127.0.0.1:{small.metrics_port}/metrics", timeout=10).text
        assert 'fulcrum_event_publish_refused_total{reason="saturated"}' in metrics
        assert "fulcrum_decisions_unrecorded_total 0.0" in metrics
        # Only answered decisions count; the refused ones were never given.
        counted = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("fulcrum_decisions_total{")
        )
        assert counted == len(answered) + 10
        wait_for(lambda: set(ledger_decisions(stack, tenant)) >= answered, 120, "the ledger")
        assert len(ledger_decisions(stack, tenant)) == len(answered) + 10
    finally:
        small.stop()


def test_two_workers_share_the_stream_without_forking_a_chain(
    stack: LiveStack, api: FulcrumProcess, worker: FulcrumProcess
) -> None:
    second = start_worker(stack, name="worker-parallel", **FAST_CHECKPOINTS)
    try:
        tenants = [new_tenant(stack, f"parallel-{i}") for i in range(3)]

        async def all_bursts() -> list[set[uuid.UUID]]:
            results = await asyncio.gather(
                *(burst(api, t.owner_key, 10, size=100, concurrency=2) for t in tenants)
            )
            return [answered for answered, _ in results]

        answered = asyncio.run(all_bursts())
        for tenant, ids in zip(tenants, answered, strict=True):
            assert len(ids) == 1000
            wait_for(lambda t=tenant: len(ledger_decisions(stack, t)) >= 1000, 120, "ledger")
            assert set(ledger_decisions(stack, tenant)) == ids
            numbers = seqs(stack, tenant)
            assert numbers == list(range(1, len(numbers) + 1))
            assert verify(api, tenant)["ok"]
        metrics = httpx.get(f"{second.base_url}/metrics", timeout=10).text
        assert "fulcrum_worker_records_written_total" in metrics
    finally:
        second.stop()
