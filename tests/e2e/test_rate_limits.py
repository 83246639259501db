"""Rate limits against real Redis and real API processes: exact, visible, resilient."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from fulcrum.pb.v1 import decisions_pb2, decisions_pb2_grpc, settings_pb2, settings_pb2_grpc
from tests.support.identity import TenantFixture, new_tenant, rest
from tests.support.processes import FulcrumProcess, start_api
from tests.support.stack import LiveStack

CACHE_SECONDS = 1.0  # the key cache carries the limits; a revision poll (0.5 s) refreshes them


@pytest.fixture(scope="module")
def second_api(stack: LiveStack) -> Iterator[FulcrumProcess]:
    process = start_api(stack, name="api-ratelimit-2")
    yield process
    process.stop()


def limit_tenant(api: FulcrumProcess, tenant: TenantFixture, **rate_limit: float) -> None:
    with rest(api, tenant.owner_key) as client:
        response = client.patch("/v1/settings", json={"rate_limit": rate_limit})
    assert response.status_code == 200, response.text
    time.sleep(CACHE_SECONDS)


def metric(api: FulcrumProcess, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{api.metrics_port}/metrics", timeout=10).text
    match = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_exactly_the_burst_is_allowed_across_two_processes(
    stack: LiveStack, api: FulcrumProcess, second_api: FulcrumProcess
) -> None:
    tenant = new_tenant(stack, "exact")
    limit_tenant(api, tenant, per_second=0, burst=100)

    async def hammer() -> list[int]:
        statuses: list[int] = []
        async with (
            api.async_http(tenant.owner_key, timeout=30) as first,
            second_api.async_http(tenant.owner_key, timeout=30) as second,
        ):

            async def worker(i: int) -> None:
                client = (first, second)[i % 2]
                for _ in range(4):
                    response = await client.get("/v1/settings")
                    statuses.append(response.status_code)

            await asyncio.gather(*(worker(i) for i in range(64)))
        return statuses

    statuses = asyncio.run(hammer())
    assert len(statuses) == 256
    assert statuses.count(200) == 100
    assert statuses.count(429) == 156


def test_headers_on_allowed_and_refused_calls(stack: LiveStack, api: FulcrumProcess) -> None:
    tenant = new_tenant(stack, "headers")
    limit_tenant(api, tenant, per_second=1, burst=3)
    with rest(api, tenant.owner_key) as client:
        answers = [client.get("/v1/settings") for _ in range(4)]
    remaining = [int(r.headers["ratelimit-remaining"]) for r in answers[:3]]
    assert remaining == [2, 1, 0]
    for response in answers[:3]:
        assert response.status_code == 200
        assert response.headers["ratelimit-limit"] == "3"
        assert 1 <= int(response.headers["ratelimit-reset"]) <= 3
        assert "retry-after" not in response.headers
    refused = answers[3]
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "resource_exhausted"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused.headers["retry-after"] == "1"


def test_grpc_carries_limits_in_metadata_and_retry_info(
    stack: LiveStack, api: FulcrumProcess
) -> None:
    tenant = new_tenant(stack, "grpc-limits")
    limit_tenant(api, tenant, per_second=0.5, burst=2)
    metadata = (("authorization", f"Bearer {tenant.owner_key}"),)
    with api.channel() as channel:
        stub = settings_pb2_grpc.SettingsServiceStub(channel)
        for expected in ("1", "0"):
            _, call = stub.GetSettings.with_call(
                settings_pb2.GetSettingsRequest(), metadata=metadata
            )
            trailing = dict(call.trailing_metadata())
            assert trailing["ratelimit-limit"] == "2"
            assert trailing["ratelimit-remaining"] == expected
        with pytest.raises(grpc.RpcError) as err:
            stub.GetSettings(settings_pb2.GetSettingsRequest(), metadata=metadata)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(err.value)
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    assert retry.retry_delay.seconds == 2
    assert dict(err.value.trailing_metadata())["retry-after"] == "2"


def test_limits_cannot_exceed_the_plan(stack: LiveStack, api: FulcrumProcess) -> None:
    tenant = new_tenant(stack, "ceiling")
    with rest(api, tenant.owner_key) as client:
        response = client.patch("/v1/settings", json={"rate_limit": {"burst": 10**9}})
        assert response.status_code == 400
        assert response.json()["error"]["field"] == "rate_limit.burst"
        assert client.get("/v1/settings").json()["rate_limit"]["burst"] == 1000


def test_redis_down_limits_locally_and_recovers_without_restart(
    stack: LiveStack, api: FulcrumProcess
) -> None:
    tenant = new_tenant(stack, "degraded")
    limit_tenant(api, tenant, per_second=0, burst=40)
    stack.devstack.redis.stop()
    try:
        with rest(api, tenant.owner_key) as client:
            statuses = [client.get("/v1/settings").status_code for _ in range(30)]
        # The local bucket is a quarter of the shared one: 10 of 40, never unlimited.
        assert statuses.count(200) == 10
        assert statuses.count(429) == 20
        assert metric(api, "fulcrum_rate_limit_degraded") == 1.0
    finally:
        stack.devstack.redis.start()
    other = new_tenant(stack, "recovered")
    limit_tenant(api, other, per_second=0, burst=5)
    deadline = time.monotonic() + 10
    # A process tries Redis again on its next request: one connection each time, so that the
    # requests reach every serving process (the gauge is their highest).
    while metric(api, "fulcrum_rate_limit_degraded") != 0.0:
        with rest(api, other.owner_key) as client:
            client.get("/v1/settings")
        assert time.monotonic() < deadline, "never returned to shared limiting"
        time.sleep(0.2)
    # Shared limiting again: the Redis bucket of 5 decides.
    time.sleep(CACHE_SECONDS)
    fresh = new_tenant(stack, "shared")
    limit_tenant(api, fresh, per_second=0, burst=5)
    with rest(api, fresh.owner_key) as client:
        statuses = [client.get("/v1/settings").status_code for _ in range(8)]
    assert statuses.count(200) == 5


def batch(n: int) -> dict[str, list[dict[str, dict[str, str]]]]:
    return {"requests": [{"tool": {"name": "db.query"}}] * n}


def test_every_decision_of_a_rest_batch_costs_a_token(
    stack: LiveStack, api: FulcrumProcess
) -> None:
    """The attack: one call of 100 decisions was charged one token (118x the limit)."""
    tenant = new_tenant(stack, "batch-rest")
    limit_tenant(api, tenant, per_second=0, burst=250)
    with rest(api, tenant.owner_key) as client:
        first = client.post("/v1/decisions:batch", json=batch(100))
        assert first.status_code == 200, first.text
        assert first.headers["ratelimit-remaining"] == "150"
        assert client.post("/v1/decisions:batch", json=batch(100)).status_code == 200
        refused = client.post("/v1/decisions:batch", json=batch(100))
        assert refused.status_code == 429
        message = refused.json()["error"]["message"]
        assert "100 requested" in message and "50 available" in message
        assert refused.headers["ratelimit-remaining"] == "50"
        assert "retry-after" in refused.headers
        # All or none: the refused batch took nothing, so exactly 50 decisions remain.
        rest_of_it = client.post("/v1/decisions:batch", json=batch(50))
        assert rest_of_it.status_code == 200, rest_of_it.text
        assert rest_of_it.headers["ratelimit-remaining"] == "0"
        assert client.post("/v1/decisions", json=batch(1)["requests"][0]).status_code == 429


def test_a_batch_larger_than_the_burst_is_told_to_shrink(
    stack: LiveStack, api: FulcrumProcess
) -> None:
    tenant = new_tenant(stack, "batch-burst")
    limit_tenant(api, tenant, per_second=10, burst=40)
    with rest(api, tenant.owner_key) as client:
        refused = client.post("/v1/decisions:batch", json=batch(41))
        assert refused.status_code == 429
        assert "send smaller batches" in refused.json()["error"]["message"]
        # Waiting would never help, so no Retry-After invites a retry of the same batch.
        assert "retry-after" not in refused.headers
        fits = client.post("/v1/decisions:batch", json=batch(40))
        assert fits.status_code == 200, fits.text


def test_every_decision_of_a_grpc_batch_costs_a_token(
    stack: LiveStack, api: FulcrumProcess
) -> None:
    tenant = new_tenant(stack, "batch-grpc")
    limit_tenant(api, tenant, per_second=10, burst=150)
    metadata = (("authorization", f"Bearer {tenant.owner_key}"),)
    item = decisions_pb2.EvaluateRequest(tool=decisions_pb2.Tool(name="db.query"))
    with api.channel() as channel:
        stub = decisions_pb2_grpc.DecisionServiceStub(channel)
        # Too large a batch is refused before it is charged.
        with pytest.raises(grpc.RpcError) as too_many:
            stub.EvaluateBatch(
                decisions_pb2.EvaluateBatchRequest(requests=[item] * 101), metadata=metadata
            )
        assert too_many.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        reply, call = stub.EvaluateBatch.with_call(
            decisions_pb2.EvaluateBatchRequest(requests=[item] * 100), metadata=metadata
        )
        assert len(reply.decisions) == 100
        assert 50 <= int(dict(call.trailing_metadata())["ratelimit-remaining"]) <= 51
        with pytest.raises(grpc.RpcError) as err:
            stub.EvaluateBatch(
                decisions_pb2.EvaluateBatchRequest(requests=[item] * 100), metadata=metadata
            )
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "100 requested" in (err.value.details() or "")
    status = rpc_status.from_call(err.value)
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    # About 50 tokens are missing at 10 per second.
    assert 4 <= retry.retry_delay.seconds <= 5
    assert dict(err.value.trailing_metadata())["retry-after"] == str(retry.retry_delay.seconds)
