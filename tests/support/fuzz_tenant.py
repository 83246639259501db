"""A fresh tenant for a fuzzer: one resource of each kind to aim at, and the check made
after every call (no server error; a refused call left the tenant's rows as they were)."""

from __future__ import annotations

from tests.support.identity import TenantFixture, new_tenant
from tests.support.processes import FulcrumProcess
from tests.support.stack import LiveStack
from tests.support.tenant_rows import TenantRows


class FuzzTenant:
    def __init__(self, stack: LiveStack, api: FulcrumProcess, rows: TenantRows) -> None:
        self.tenant: TenantFixture = new_tenant(stack, "fuzz")
        self._rows = rows
        self.ids = self._resources(api)
        self._last = rows.snapshot(self.tenant.id)

    def _resources(self, api: FulcrumProcess) -> dict[str, str]:
        """Ids that exist, by the name path parameters and request fields give them."""
        with api.http(self.tenant.owner_key) as client:
            policy = client.post(
                "/v1/policies",
                json={"name": "p", "rules": [{"id": "r", "action": "deny", "reason": "no"}]},
            )
            member = client.post("/v1/members", json={"external_user_id": "u1", "role": "viewer"})
            key = client.post("/v1/api-keys", json={"name": "k", "scopes": ["keys:read"]})
        return {
            "policy_id": policy.json()["id"],
            "version": "1",
            "member_id": member.json()["id"],
            # Adding a user invites them: the member is an invitation until accepted.
            "invitation_id": member.json()["id"],
            "api_key_id": key.json()["api_key"]["id"],
            "tenant_id": str(self.tenant.id),
            "seq": "1",
        }

    def check(self, failed: bool, refused: bool, said: str) -> None:
        assert not failed, said
        now = self._rows.snapshot(self.tenant.id)
        if refused:
            assert now == self._last, f"a refused call changed the tenant's rows:\n{said}"
        self._last = now
