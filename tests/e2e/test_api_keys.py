"""API keys end to end: secret once, revocation on every server within a second, rotation,
expiry, last-used tracking, and authentication-failure metrics."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from fulcrum.pb.v1 import api_keys_pb2
from tests.support.identity import TenantFixture, grpc_clients, member_token, new_tenant, rest
from tests.support.processes import FulcrumProcess, start_api
from tests.support.stack import LiveStack


@pytest.fixture(scope="module")
def tenant(stack: LiveStack) -> TenantFixture:
    return new_tenant(stack, "keys")


@pytest.fixture(scope="module")
def second_api(stack: LiveStack) -> Iterator[FulcrumProcess]:
    process = start_api(stack, name="api-2")
    yield process
    process.stop()


def create_key(api: FulcrumProcess, tenant: TenantFixture, **body: object) -> dict:
    payload = {"name": "k", "scopes": ["keys:read"], **body}
    with rest(api, tenant.owner_key) as client:
        response = client.post("/v1/api-keys", json=payload)
    assert response.status_code == 201, response.text
    return response.json()


def status_with(api: FulcrumProcess, key: str) -> int:
    with rest(api, key) as client:
        return client.get("/v1/api-keys").status_code


def test_secret_is_shown_once_and_never_read_back(
    api: FulcrumProcess, tenant: TenantFixture
) -> None:
    created = create_key(api, tenant)
    secret, key_id = created["secret"], created["api_key"]["id"]
    assert re.fullmatch(r"fk_[0-9a-f]{20}_[A-Za-z0-9_\-]{43}", secret)
    assert secret.startswith(f"fk_{key_id}_")
    with rest(api, tenant.owner_key) as client:
        listed = client.get("/v1/api-keys").text
        fetched = client.get(f"/v1/api-keys/{key_id}").text
    for text in (listed, fetched):
        assert secret not in text
        assert secret.split("_")[-1] not in text
        assert "hash" not in text


def test_revocation_reaches_a_separate_api_process_within_a_second(
    api: FulcrumProcess, second_api: FulcrumProcess, tenant: TenantFixture
) -> None:
    created = create_key(api, tenant)
    key, key_id = created["secret"], created["api_key"]["id"]
    assert status_with(second_api, key) == 200  # now cached by the second process
    with rest(api, tenant.owner_key) as client:
        assert client.post(f"/v1/api-keys/{key_id}/revoke").status_code == 200
    revoked_at = time.monotonic()
    while status_with(second_api, key) != 401:
        assert time.monotonic() - revoked_at < 1.0, "revoked key still accepted after 1s"
        time.sleep(0.02)
    assert time.monotonic() - revoked_at < 1.0
    assert status_with(api, key) == 401


def key_lookups(api: FulcrumProcess) -> float:
    text = httpx.get(f"http://127.0.0.1:{api.metrics_port}/metrics", timeout=10).text
    return sum(
        float(value)
        for value in re.findall(
            r'^fulcrum_auth_key_lookups_total\{[^}]*kind="tenant"[^}]*\} (\S+)$', text, re.M
        )
    )


def test_a_busy_key_is_read_once_not_once_per_cache_period(
    second_api: FulcrumProcess, tenant: TenantFixture
) -> None:
    """The cache is confirmed by polling tenant revisions, not by reading each key again."""
    created = create_key(second_api, tenant)
    key = created["secret"]
    # One connection, so one serving process: the cache is each process's own.
    with rest(second_api, key) as client:
        assert client.get("/v1/api-keys").status_code == 200
        before = key_lookups(second_api)
        deadline = time.monotonic() + 3.0  # three key-cache periods
        while time.monotonic() < deadline:
            assert client.get("/v1/api-keys").status_code == 200
            time.sleep(0.05)
    assert key_lookups(second_api) - before == 0


def test_a_change_made_outside_the_api_drops_the_key_within_a_second(
    stack: LiveStack, api: FulcrumProcess, second_api: FulcrumProcess, tenant: TenantFixture
) -> None:
    """The revision moves in the database (a trigger), whatever path made the change."""
    created = create_key(api, tenant)
    key, key_id = created["secret"], created["api_key"]["id"]
    assert status_with(second_api, key) == 200
    with psycopg.connect(stack.superuser_dsn(), autocommit=True) as su:
        su.execute("SELECT fulcrum_operator_begin()")
        su.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", (key_id,))
    changed_at = time.monotonic()
    while status_with(second_api, key) != 401:
        assert time.monotonic() - changed_at < 1.0, "key still accepted after 1s"
        time.sleep(0.02)
    # Writing last_used_at (every request does, in batches) moves nothing.
    with psycopg.connect(stack.superuser_dsn(), autocommit=True) as su:
        before = su.execute(
            "SELECT credential_revision FROM tenants WHERE id = %s", (tenant.id,)
        ).fetchone()
        su.execute("UPDATE api_keys SET last_used_at = now() WHERE tenant_id = %s", (tenant.id,))
        after = su.execute(
            "SELECT credential_revision FROM tenants WHERE id = %s", (tenant.id,)
        ).fetchone()
    assert before == after


def test_rotation_keeps_the_old_key_until_the_chosen_time(
    api: FulcrumProcess, tenant: TenantFixture
) -> None:
    created = create_key(api, tenant, scopes=["keys:read", "audit:read"])
    old_key, old_id = created["secret"], created["api_key"]["id"]
    until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    with rest(api, tenant.owner_key) as client:
        response = client.post(
            f"/v1/api-keys/{old_id}/rotate", json={"old_key_valid_until": until.isoformat()}
        )
    assert response.status_code == 200, response.text
    rotated = response.json()
    new_key = rotated["secret"]
    assert rotated["api_key"]["rotated_from"] == old_id
    assert rotated["api_key"]["scopes"] == ["audit:read", "keys:read"]
    assert status_with(api, new_key) == 200
    assert status_with(api, old_key) == 200  # still inside the overlap window
    while dt.datetime.now(dt.UTC) < until + dt.timedelta(seconds=1):
        time.sleep(0.1)
    assert status_with(api, old_key) == 401
    assert status_with(api, new_key) == 200


def test_expired_key_is_refused(api: FulcrumProcess, tenant: TenantFixture) -> None:
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    created = create_key(api, tenant, expires_at=expires.isoformat())
    assert status_with(api, created["secret"]) == 200
    time.sleep(1.6)
    assert status_with(api, created["secret"]) == 401


def test_last_used_is_batched_not_written_per_request(
    stack: LiveStack, tenant: TenantFixture
) -> None:
    lazy = start_api(stack, name="api-lazy", FULCRUM_LAST_USED_FLUSH_SECONDS="3600")
    try:
        created = create_key(lazy, tenant)
        for _ in range(5):
            assert status_with(lazy, created["secret"]) == 200
        assert last_used(stack, created["api_key"]["id"]) is None  # no write per request
    finally:
        lazy.stop()  # a graceful stop flushes the batch
    assert last_used(stack, created["api_key"]["id"]) is not None


def last_used(stack: LiveStack, key_id: str) -> dt.datetime | None:
    with psycopg.connect(stack.superuser_dsn()) as su:
        row = su.execute("SELECT last_used_at FROM api_keys WHERE id = %s", (key_id,)).fetchone()
    assert row is not None
    return row[0]


def test_failures_share_one_message_and_are_counted_by_reason(
    api: FulcrumProcess, tenant: TenantFixture
) -> None:
    unknown = "fk_" + "0" * 20 + "_" + "A" * 43
    wrong_secret = tenant.owner_key[:-4] + "AAAA"
    bodies = set()
    for header in (
        None,
        "Basic abc",
        "Bearer not-a-key",
        f"Bearer {unknown}",
        f"Bearer {wrong_secret}",
    ):
        headers = {"authorization": header} if header else {}
        response = api.http(headers=headers).get("/v1/api-keys")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        bodies.add(response.text)
    assert bodies == {'{"error":{"code":"unauthenticated","message":"invalid credentials"}}'}
    metrics = httpx.get(f"http://127.0.0.1:{api.metrics_port}/metrics", timeout=10).text
    for reason in ("missing", "malformed", "unknown_key", "bad_secret"):
        match = re.search(rf'fulcrum_auth_failures_total{{reason="{reason}"}} (\d+)', metrics)
        assert match and float(match.group(1)) >= 1, reason


# --- owners and service keys ------------------------------------------------------------


def _member_id(stack: LiveStack, tenant: TenantFixture, user: str) -> str:
    with psycopg.connect(stack.superuser_dsn()) as su:
        row = su.execute(
            "SELECT id::text FROM members WHERE tenant_id = %s AND external_user_id = %s",
            (tenant.id, user),
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_keys_show_their_owner_and_service_flag(api: FulcrumProcess, stack: LiveStack) -> None:
    tenant = new_tenant(stack, "owned")
    admin = member_token(stack, tenant, "admin", "user_key_admin")
    with rest(api, admin) as client:
        made = client.post("/v1/api-keys", json={"name": "a", "scopes": ["keys:read"]})
        assert made.status_code == 201, made.text
        refused = client.post(
            "/v1/api-keys", json={"name": "svc", "scopes": ["keys:read"], "service": True}
        )
    assert refused.status_code == 403
    assert "ownership:manage" in refused.json()["error"]["message"]
    admin_member = _member_id(stack, tenant, "user_key_admin")
    assert (made.json()["api_key"]["owner"], made.json()["api_key"]["service"]) == (
        admin_member,
        False,
    )
    first = tenant.owner_key.split("_")[1]
    with rest(api, tenant.owner_key) as client:
        owner_key = client.get(f"/v1/api-keys/{first}").json()
    assert (owner_key["owner"], owner_key["service"]) == (None, True)
    with grpc_clients(api, tenant.owner_key) as clients:
        got = clients.api_keys.GetApiKey(
            api_keys_pb2.GetApiKeyRequest(api_key_id=made.json()["api_key"]["id"]),
            metadata=clients.metadata,
        )
        service = clients.api_keys.CreateApiKey(
            api_keys_pb2.CreateApiKeyRequest(name="svc", scopes=["keys:read"], service=True),
            metadata=clients.metadata,
        )
    assert (got.api_key.owner, got.api_key.service) == (admin_member, False)
    assert (service.api_key.owner, service.api_key.service) == ("", True)


def test_an_owners_service_key_outlives_them(api: FulcrumProcess, stack: LiveStack) -> None:
    tenant = new_tenant(stack, "outlive")
    leaving = member_token(stack, tenant, "owner", "user_leaving_owner")
    body = {"name": "ci", "scopes": ["keys:read", "keys:manage"]}
    with rest(api, leaving) as client:
        service = client.post("/v1/api-keys", json={**body, "service": True}).json()
        personal = client.post("/v1/api-keys", json=body).json()
    assert service["api_key"]["service"] is True
    assert personal["api_key"]["service"] is False
    leaver = _member_id(stack, tenant, "user_leaving_owner")
    with rest(api, tenant.owner_key) as client:
        assert client.delete(f"/v1/members/{leaver}").status_code == 204
    deadline = time.monotonic() + 1.5
    while status_with(api, personal["secret"]) != 401:
        assert time.monotonic() < deadline, "the removed owner's own key still works"
        time.sleep(0.05)
    assert status_with(api, service["secret"]) == 200
    with psycopg.connect(stack.superuser_dsn()) as su:
        rows = su.execute(
            "SELECT resource_id, details->>'reason', revoked_at IS NOT NULL FROM audit_events "
            "JOIN api_keys ON api_keys.id = audit_events.resource_id "
            "WHERE audit_events.tenant_id = %s AND action = 'api_key.revoke'",
            (tenant.id,),
        ).fetchall()
    assert rows == [(personal["api_key"]["id"], "owner removed", True)]
