"""The audit trail's query, fetch, export and verify, over REST and gRPC, against a real
API and worker: what the ledger holds, filtered, paged and streamed as a reader sees it."""

from __future__ import annotations

import itertools
import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import httpx
import psycopg
import pytest

from fulcrum.pb.v1 import audit_pb2, audit_pb2_grpc
from tests.support.identity import TenantFixture, enterprise_plan, new_tenant, rest
from tests.support.processes import FulcrumProcess, start_api, start_worker
from tests.support.stack import LiveStack

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
DECISIONS = 2_500  # more than one export page (2,000)


@pytest.fixture(scope="module")
def worker(stack: LiveStack) -> Iterator[FulcrumProcess]:
    process = start_worker(stack, name="worker-audit")
    yield process
    process.stop()


def settled_size(stack: LiveStack, tenant: TenantFixture) -> int | None:
    """The ledger's size once every decision and committed change is in it, else None."""
    with psycopg.connect(stack.superuser_dsn()) as su:
        row = su.execute(
            "SELECT (SELECT count(*) FROM audit_records WHERE tenant_id = %(t)s),"
            " (SELECT count(*) FROM audit_events WHERE tenant_id = %(t)s)",
            {"t": tenant.id},
        ).fetchone()
    assert row is not None
    records, changes = int(row[0]), int(row[1])
    return records if records == DECISIONS + changes else None


@pytest.fixture(scope="module")
def trail(stack: LiveStack, api: FulcrumProcess, worker: FulcrumProcess) -> TenantFixture:
    """A tenant whose ledger holds 2,500 decisions over three tools and five agents (one
    with a known trace id) and an API key creation."""
    tenant = new_tenant(stack, "audit")
    enterprise_plan(stack, tenant)  # 2,500 decisions cost 2,500 tokens
    with rest(api, tenant.owner_key) as client:
        created = client.post("/v1/api-keys", json={"name": "reader", "scopes": ["audit:read"]})
        assert created.status_code == 201, created.text
        for b in range(DECISIONS // 100):
            requests: list[dict[str, Any]] = [
                {"tool": {"name": f"tool.{n % 3}"}, "agent": {"id": f"agent-{n % 5}"}}
                for n in range(b * 100, (b + 1) * 100)
            ]
            if b == 0:
                requests[0]["traceparent"] = f"00-{TRACE}-00f067aa0ba902b7-01"
            response = client.post("/v1/decisions:batch", json={"requests": requests})
            assert response.status_code == 200, response.text
    deadline = time.monotonic() + 120
    while settled_size(stack, tenant) is None:
        assert time.monotonic() < deadline, "the ledger did not fill"
        time.sleep(0.25)
    return tenant


@pytest.fixture(scope="module")
def size(stack: LiveStack, trail: TenantFixture) -> int:
    settled = settled_size(stack, trail)
    assert settled is not None
    return settled


def all_pages(client: httpx.Client, **filters: Any) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    token = ""
    while True:
        response = client.get(
            "/v1/audit/records", params={**filters, "page_size": 200, "page_token": token}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        records += body["records"]
        token = body["next_page_token"]
        if not token:
            return records


def test_paging_walks_the_whole_trail_once_in_order(
    api: FulcrumProcess, trail: TenantFixture, size: int
) -> None:
    with rest(api, trail.owner_key) as client:
        records = all_pages(client)
    assert [r["seq"] for r in records] == list(range(1, size + 1))
    assert len({r["event_id"] for r in records}) == size
    for previous, record in itertools.pairwise(records):
        assert record["prev_hash"] == previous["hash"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"tool_name": "tool.1"}, lambda r: r["tool_name"] == "tool.1"),
        ({"agent_id": "agent-3"}, lambda r: r["agent_id"] == "agent-3"),
        (
            {"agent_id": "agent-3", "tool_name": "tool.1"},
            lambda r: r["agent_id"] == "agent-3" and r["tool_name"] == "tool.1",
        ),
        ({"action": "api_key.create"}, lambda r: r["action"] == "api_key.create"),
        ({"trace_id": TRACE}, lambda r: r["trace_id"] == TRACE),
    ],
    ids=["tool", "agent", "agent-and-tool", "change-action", "trace-id"],
)
def test_filters_return_exactly_the_matching_records(
    api: FulcrumProcess, trail: TenantFixture, filters: dict[str, str], expected: Any
) -> None:
    with rest(api, trail.owner_key) as client:
        everything = all_pages(client)
        matching = all_pages(client, **filters)
    assert matching, "the filter matched nothing"
    assert [r["seq"] for r in matching] == [r["seq"] for r in everything if expected(r)]


def test_a_decision_outcome_and_an_actor_filter(api: FulcrumProcess, trail: TenantFixture) -> None:
    with rest(api, trail.owner_key) as client:
        everything = all_pages(client)
        actor = next(r["actor"] for r in everything if r["kind"] == "decision")
        outcome = next(r["outcome"] for r in everything if r["kind"] == "decision")
        by_outcome = all_pages(client, action=outcome)
        by_actor = all_pages(client, actor=actor)
    assert [r["seq"] for r in by_outcome] == [
        r["seq"] for r in everything if r["kind"] == "decision" and r["outcome"] == outcome
    ]
    assert [r["seq"] for r in by_actor] == [r["seq"] for r in everything if r["actor"] == actor]


def test_a_time_range_bounds_the_records(api: FulcrumProcess, trail: TenantFixture) -> None:
    with rest(api, trail.owner_key) as client:
        everything = all_pages(client)
        middle = everything[len(everything) // 2]["occurred_at"]
        before = all_pages(client, end_time=middle)
        after = all_pages(client, start_time=middle)
    assert before and after
    assert all(r["occurred_at"] < middle for r in before)
    assert all(r["occurred_at"] >= middle for r in after)
    assert len(before) + len(after) == len(everything)


def test_one_record_is_fetched_by_seq_and_a_missing_one_is_404(
    api: FulcrumProcess, trail: TenantFixture
) -> None:
    with rest(api, trail.owner_key) as client:
        first = client.get("/v1/audit/records", params={"page_size": 5}).json()["records"][3]
        fetched = client.get(f"/v1/audit/records/{first['seq']}")
        missing = client.get("/v1/audit/records/999999")
    assert fetched.status_code == 200
    assert fetched.json() == first
    assert missing.status_code == 404


def export_lines(api: FulcrumProcess, key: str, **params: int) -> list[dict[str, Any]]:
    with rest(api, key) as client, client.stream("GET", "/v1/audit/export", params=params) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in r.iter_lines() if line]


def test_export_streams_a_range_as_json_lines(
    api: FulcrumProcess, trail: TenantFixture, size: int
) -> None:
    everything = export_lines(api, trail.owner_key)
    assert [r["seq"] for r in everything] == list(range(1, size + 1))
    part = export_lines(api, trail.owner_key, from_seq=1990, to_seq=2010)  # across a page
    assert part == everything[1989:2010]


def test_grpc_lists_fetches_exports_and_verifies_as_rest_does(
    api: FulcrumProcess, trail: TenantFixture, size: int
) -> None:
    rest_export = export_lines(api, trail.owner_key, from_seq=10, to_seq=30)
    metadata = (("authorization", f"Bearer {trail.owner_key}"),)
    with api.channel() as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)
        listed = stub.ListAuditRecords(
            audit_pb2.ListAuditRecordsRequest(page_size=50, tool_name="tool.2"), metadata=metadata
        )
        one = stub.GetAuditRecord(audit_pb2.GetAuditRecordRequest(seq=12), metadata=metadata)
        streamed = [
            reply.record
            for reply in stub.ExportAuditRecords(
                audit_pb2.ExportAuditRecordsRequest(from_seq=10, to_seq=30), metadata=metadata
            )
        ]
        verified = stub.VerifyAuditLedger(audit_pb2.VerifyAuditLedgerRequest(), metadata=metadata)
        with pytest.raises(grpc.RpcError) as missing:
            stub.GetAuditRecord(audit_pb2.GetAuditRecordRequest(seq=999999), metadata=metadata)
    assert listed.records and all(r.tool_name == "tool.2" for r in listed.records)
    assert listed.next_page_token
    assert one.record.seq == 12
    assert [r.seq for r in streamed] == [r["seq"] for r in rest_export]
    assert [r.hash for r in streamed] == [r["hash"] for r in rest_export]
    assert [json.loads(r.details_json) for r in streamed] == [r["details"] for r in rest_export]
    assert verified.ok and verified.checked == size
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_reading_the_trail_needs_audit_read(api: FulcrumProcess, trail: TenantFixture) -> None:
    with rest(api, trail.owner_key) as client:
        issued = client.post(
            "/v1/api-keys", json={"name": "agent", "scopes": ["decisions:evaluate"]}
        )
    assert issued.status_code == 201, issued.text
    key = issued.json()["secret"]
    with rest(api, key) as client:
        for path in ("/v1/audit/records", "/v1/audit/records/1", "/v1/audit/export"):
            assert client.get(path).status_code == 403, path
        assert client.post("/v1/audit/verify").status_code == 403
    with api.channel() as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)
        with pytest.raises(grpc.RpcError) as denied:
            stub.ListAuditRecords(
                audit_pb2.ListAuditRecordsRequest(), metadata=(("authorization", f"Bearer {key}"),)
            )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


def stalled_export(api: FulcrumProcess, key: str) -> socket.socket:
    """An export whose client reads its first bytes and then nothing more, with a tiny
    receive buffer, so the server soon cannot send and waits."""
    sock = api.raw_socket(receive_buffer=4096)
    sock.sendall(
        f"GET /v1/audit/export HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {key}\r\n\r\n".encode()
    )
    assert sock.recv(1024).startswith(b"HTTP/1.1 200")
    return sock


def test_stalled_exports_do_not_starve_other_requests(
    stack: LiveStack, api: FulcrumProcess, worker: FulcrumProcess
) -> None:
    """Three exports of a large ledger (megabytes more than the socket buffers hold) whose
    clients stop reading, against an API with two pooled connections: while they wait to
    send, the exports hold no connection, so other requests are still served."""
    tenant = new_tenant(stack, "export")
    enterprise_plan(stack, tenant)
    big = 12_000

    def decide(b: int) -> None:
        with rest(api, tenant.owner_key) as client:
            while True:  # each decision costs a token: wait for them when the burst is spent
                response = client.post(
                    "/v1/decisions:batch",
                    json={"requests": [{"tool": {"name": "export.tool"}}] * 100},
                    timeout=60,
                )
                if response.status_code != 429:
                    break
                time.sleep(float(response.headers["retry-after"]))
            assert response.status_code == 200, response.text

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(decide, range(big // 100)))
    deadline = time.monotonic() + 120
    while ledger_decisions(stack, tenant) < big:
        assert time.monotonic() < deadline, "the ledger did not fill"
        time.sleep(0.25)

    small = start_api(stack, name="api-export", FULCRUM_DATABASE_POOL_SIZE="2")
    stalled: list[socket.socket] = []
    try:
        stalled = [stalled_export(small, tenant.owner_key) for _ in range(3)]
        time.sleep(1)  # the exports run until the buffers are full, then wait

        def listed(_: int) -> int:
            with rest(small, tenant.owner_key) as client:
                return client.get("/v1/audit/records", params={"page_size": 10}).status_code

        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(listed, range(4)))
        assert codes == [200] * 4
    finally:
        for sock in stalled:
            sock.close()
        small.stop()


def ledger_decisions(stack: LiveStack, tenant: TenantFixture) -> int:
    with psycopg.connect(stack.superuser_dsn()) as su:
        row = su.execute(
            "SELECT count(*) FROM audit_records WHERE tenant_id = %s AND kind = 'decision'",
            (tenant.id,),
        ).fetchone()
    assert row is not None
    return int(row[0])
