"""PostgreSQL stops and starts under a stream of keep-alive requests: every request gets an
answer (2xx, or 503 naming the dependency), the connection stays usable after an error
answer, and no traceback is logged for a failure the API knows."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.security.test_perimeter import read_response
from tests.support.identity import TenantFixture, new_tenant
from tests.support.processes import FulcrumProcess, start_api
from tests.support.stack import LiveStack


@pytest.fixture(scope="module")
def faulty(stack: LiveStack) -> Iterator[FulcrumProcess]:
    process = start_api(
        stack,
        name="api-faults",
        FULCRUM_DATABASE_POOL_TIMEOUT_SECONDS="1",
        FULCRUM_KEY_CACHE_TTL_SECONDS="0.1",
    )
    yield process
    process.stop()


def request_bytes(key: str) -> bytes:
    return (
        f"GET /v1/api-keys HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\r\n"
    ).encode()


@pytest.fixture(scope="module")
def cached_keys(stack: LiveStack) -> Iterator[FulcrumProcess]:
    """Keys stay cached through the outage, so the route's own query is what fails."""
    process = start_api(
        stack,
        name="api-faults-cached",
        FULCRUM_DATABASE_POOL_TIMEOUT_SECONDS="1",
        FULCRUM_KEY_CACHE_TTL_SECONDS="120",
    )
    yield process
    process.stop()


@pytest.mark.parametrize("failing", ["authentication", "route"])
def test_the_connection_is_usable_after_an_error_answer(
    stack: LiveStack, request: pytest.FixtureRequest, failing: str
) -> None:
    api: FulcrumProcess = request.getfixturevalue(
        "faulty" if failing == "authentication" else "cached_keys"
    )
    tenant = new_tenant(stack, "keepalive")
    with api.raw_socket(timeout=15) as sock:
        sock.sendall(request_bytes(tenant.owner_key))
        assert read_response(sock)[0] == 200
        stack.devstack.postgres.stop()
        try:
            time.sleep(0.2)  # past the 0.1 s key cache of the "authentication" case
            sock.sendall(request_bytes(tenant.owner_key))
            status, _, body = read_response(sock)
            assert status == 503, body
            assert b"postgresql" in body
            sock.sendall(request_bytes(tenant.owner_key))
            assert read_response(sock)[0] == 503
        finally:
            stack.devstack.postgres.start()
        deadline = time.monotonic() + 20
        while True:
            sock.sendall(request_bytes(tenant.owner_key))
            status = read_response(sock)[0]
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status == 200
    assert "Traceback" not in api.log_text()


def test_every_request_is_answered_through_a_postgresql_restart(
    stack: LiveStack, faulty: FulcrumProcess
) -> None:
    tenant: TenantFixture = new_tenant(stack, "pgrestart")
    answers: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        with faulty.http(tenant.owner_key, timeout=15) as client:
            while not stop.is_set():
                try:
                    response = client.get("/v1/api-keys")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                answers.append(response.status_code)
                if response.status_code == 503:
                    assert "postgresql" in response.json()["error"]["message"]

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        stack.devstack.postgres.stop()
        deadline = time.monotonic() + 15
        while answers.count(503) < 10 and time.monotonic() < deadline:
            time.sleep(0.1)
        stack.devstack.postgres.start()
        recovered = len(answers)
        deadline = time.monotonic() + 20
        while answers[recovered:].count(200) < 10 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    print(f"answers: {len(answers)}, 503s: {answers.count(503)}, failures: {len(failures)}")
    assert not failures, failures[:5]
    assert set(answers) <= {200, 503}
    assert answers.count(503) >= 10 and answers[recovered:].count(200) >= 10
    log = faulty.log_text()
    assert "Traceback" not in log
    assert "Exception in ASGI application" not in log
