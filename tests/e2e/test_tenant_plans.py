"""Plans and custom limits for operators: a platform admin sets a tenant's plan and custom
ceilings over REST, gRPC and the CLI; the limits take effect on decisions; the tenant can
still only lower them, and cannot touch either itself."""

from __future__ import annotations

import subprocess
import sys
import time

import grpc
import psycopg
import pytest

from fulcrum.auth.limits import PLAN_LIMITS, Plan
from fulcrum.pb.v1 import settings_pb2, tenants_pb2
from tests.support.identity import (
    TenantFixture,
    grpc_clients,
    new_tenant,
    platform_key,
    rest,
)
from tests.support.processes import FulcrumProcess
from tests.support.stack import LiveStack

ENTERPRISE = PLAN_LIMITS[Plan.ENTERPRISE]
DECISION = {"tool": {"name": "db.query"}}


@pytest.fixture(scope="module")
def platform(stack: LiveStack) -> str:
    return platform_key(stack)


@pytest.fixture
def tenant(stack: LiveStack) -> TenantFixture:
    return new_tenant(stack, "plans")


def settings_of(api: FulcrumProcess, tenant: TenantFixture) -> dict[str, object]:
    with rest(api, tenant.owner_key) as client:
        response = client.get("/v1/settings")
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def changes(stack: LiveStack, tenant: TenantFixture, action: str) -> list[tuple[object, ...]]:
    with psycopg.connect(stack.superuser_dsn()) as su:
        return su.execute(
            "SELECT actor, details FROM audit_events WHERE tenant_id = %s AND action = %s",
            (tenant.id, action),
        ).fetchall()


def test_a_platform_admin_sets_the_plan_over_rest(
    api: FulcrumProcess, stack: LiveStack, platform: str, tenant: TenantFixture
) -> None:
    with rest(api, platform) as client:
        response = client.post(f"/v1/tenants/{tenant.id}/plan", json={"plan": "enterprise"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["plan"] == "enterprise"
    assert body["custom_limits"] is False
    assert body["limits"] == {
        "per_second": ENTERPRISE.tenant_rate,
        "burst": ENTERPRISE.tenant_burst,
        "key_per_second": ENTERPRISE.key_rate,
        "key_burst": ENTERPRISE.key_burst,
    }
    settings = settings_of(api, tenant)
    assert settings["plan"] == "enterprise"
    assert settings["rate_limit"] == body["limits"]
    [(actor, details)] = changes(stack, tenant, "tenant.set_plan")
    assert str(actor).startswith("platform:")
    assert details == {"before": {"plan": "standard"}, "after": {"plan": "enterprise"}}


def test_custom_limits_raise_the_ceiling_and_the_tenant_can_only_lower_it(
    api: FulcrumProcess, stack: LiveStack, platform: str, tenant: TenantFixture
) -> None:
    custom = {"per_second": 8000.0, "burst": 20000}
    with rest(api, platform) as client:
        response = client.patch(f"/v1/tenants/{tenant.id}/limits", json=custom)
    assert response.status_code == 200, response.text
    assert response.json()["custom_limits"] is True
    assert response.json()["limits"]["burst"] == 20000
    assert settings_of(api, tenant)["rate_limit"]["burst"] == 20000  # type: ignore[index]
    with rest(api, tenant.owner_key) as client:
        above = client.patch("/v1/settings", json={"rate_limit": {"burst": 20001}})
        assert above.status_code == 400, above.text
        assert above.json()["error"]["field"] == "rate_limit.burst"
        assert above.json()["error"]["message"] == "cannot exceed the tenant's limit of 20000"
        lowered = client.patch("/v1/settings", json={"rate_limit": {"burst": 15000}})
        assert lowered.status_code == 200, lowered.text
        assert lowered.json()["rate_limit"]["burst"] == 15000
    with rest(api, platform) as client:
        reset = client.patch(f"/v1/tenants/{tenant.id}/limits", json={"burst": None})
    assert reset.status_code == 200, reset.text
    assert reset.json()["limits"]["burst"] == PLAN_LIMITS[Plan.STANDARD].tenant_burst
    assert reset.json()["limits"]["per_second"] == 8000.0  # still custom
    # The tenant's override (15,000) never raises the plan's ceiling it falls back to.
    assert settings_of(api, tenant)["rate_limit"]["burst"] == 1000  # type: ignore[index]
    [*_, (_, details)] = changes(stack, tenant, "tenant.set_limits")
    assert details["before"]["burst"] == 20000  # type: ignore[index]
    assert details["after"]["burst"] == 1000  # type: ignore[index]


def test_custom_limits_take_effect_on_decisions(
    api: FulcrumProcess, platform: str, tenant: TenantFixture
) -> None:
    with rest(api, platform) as client:
        response = client.patch(
            f"/v1/tenants/{tenant.id}/limits", json={"per_second": 0.01, "burst": 3}
        )
    assert response.status_code == 200, response.text
    time.sleep(1.2)  # the API's key cache trusts a record for half a second
    with rest(api, tenant.owner_key) as client:
        codes = [client.post("/v1/decisions", json=DECISION).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]


def test_a_platform_admin_sets_plan_and_limits_over_grpc(
    api: FulcrumProcess, platform: str, tenant: TenantFixture
) -> None:
    with grpc_clients(api, platform) as clients:
        planned = clients.tenants.SetTenantPlan(
            tenants_pb2.SetTenantPlanRequest(tenant_id=str(tenant.id), plan="free"),
            metadata=clients.metadata,
            timeout=10,
        )
        assert planned.tenant.plan == "free"
        assert planned.tenant.limits.burst == PLAN_LIMITS[Plan.FREE].tenant_burst
        limited = clients.tenants.SetTenantLimits(
            tenants_pb2.SetTenantLimitsRequest(
                tenant_id=str(tenant.id), limits=settings_pb2.RateLimit(key_burst=77)
            ),
            metadata=clients.metadata,
            timeout=10,
        )
        assert limited.tenant.custom_limits
        assert limited.tenant.limits.key_burst == 77
        back = clients.tenants.SetTenantLimits(
            tenants_pb2.SetTenantLimitsRequest(tenant_id=str(tenant.id), reset=["key_burst"]),
            metadata=clients.metadata,
            timeout=10,
        )
        assert not back.tenant.custom_limits
        assert back.tenant.limits.key_burst == PLAN_LIMITS[Plan.FREE].key_burst


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"plan": "platinum"}, "plan", "must be one of free, standard, enterprise"),
    ],
)
def test_a_bad_plan_is_refused_naming_it(
    api: FulcrumProcess,
    platform: str,
    tenant: TenantFixture,
    body: dict[str, object],
    field: str,
    message: str,
) -> None:
    with rest(api, platform) as client:
        response = client.post(f"/v1/tenants/{tenant.id}/plan", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field
    assert response.json()["error"]["message"] == message


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"burst": 0}, "limits.burst", "must be a whole number of at least 1"),
        ({"per_second": -1}, "limits.per_second", "must not be negative"),
        ({"per_second": 2e6}, "limits.per_second", "must be at most 1000000.0"),
        ({"key_burst": 10**8}, "limits.key_burst", "must be at most 10000000"),
        ({}, "limits", "name at least one limit to set or reset"),
    ],
)
def test_bad_limits_are_refused_naming_them_and_change_nothing(
    api: FulcrumProcess,
    platform: str,
    tenant: TenantFixture,
    body: dict[str, object],
    field: str,
    message: str,
) -> None:
    with rest(api, platform) as client:
        response = client.patch(f"/v1/tenants/{tenant.id}/limits", json=body)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["field"] == field
        assert response.json()["error"]["message"] == message
        assert client.get(f"/v1/tenants/{tenant.id}").json()["custom_limits"] is False


def test_grpc_refuses_an_unknown_limit_to_reset(
    api: FulcrumProcess, platform: str, tenant: TenantFixture
) -> None:
    with grpc_clients(api, platform) as clients, pytest.raises(grpc.RpcError) as err:
        clients.tenants.SetTenantLimits(
            tenants_pb2.SetTenantLimitsRequest(tenant_id=str(tenant.id), reset=["everything"]),
            metadata=clients.metadata,
            timeout=10,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "reset[0]: unknown field"


def test_a_tenant_cannot_set_its_own_plan_or_limits(
    api: FulcrumProcess, tenant: TenantFixture
) -> None:
    with rest(api, tenant.owner_key) as client:
        plan = client.post(f"/v1/tenants/{tenant.id}/plan", json={"plan": "enterprise"})
        limits = client.patch(f"/v1/tenants/{tenant.id}/limits", json={"burst": 10**6})
        unknown = client.patch("/v1/settings", json={"plan": "enterprise"})
    for response in (plan, limits):
        assert response.status_code == 403, response.text
        assert response.json()["error"]["message"] == "missing scope tenants:admin"
    assert unknown.status_code == 400
    assert unknown.json()["error"]["field"] == "plan"
    assert settings_of(api, tenant)["plan"] == "standard"


def test_the_cli_sets_plan_and_limits(stack: LiveStack, tenant: TenantFixture) -> None:
    env = stack.process_env()

    def fulcrum(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "fulcrum.cli", "tenants", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    said = fulcrum("set-plan", tenant.name, "enterprise")
    assert f"tenant {tenant.id} ({tenant.name}): plan enterprise" in said
    assert "limits (the enterprise plan's): 5000/s burst 10000 per tenant" in said
    said = fulcrum("set-limits", tenant.name, "--burst", "12345", "--key-per-second", "99")
    assert "limits (custom): 5000/s burst 12345 per tenant, 99/s burst 5000 per key" in said
    said = fulcrum("set-limits", tenant.name, "--reset", "burst", "--reset", "key_per_second")
    assert "limits (the enterprise plan's)" in said
    refused = subprocess.run(
        [sys.executable, "-m", "fulcrum.cli", "tenants", "set-plan", tenant.name, "gold"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "error: plan: must be one of free, standard, enterprise" in refused.stderr
