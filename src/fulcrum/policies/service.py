"""Policy management. Every version is immutable; every change is audited with the
before and after versions and bumps the tenant's policy revision when the active set moves."""

from __future__ import annotations

import uuid
from typing import Any

from fulcrum.audit.outbox import record_change
from fulcrum.auth.principal import Principal
from fulcrum.engine.model import Action
from fulcrum.kit.db import Database
from fulcrum.kit.errors import Conflict, InvalidArgument, NotFound
from fulcrum.kit.pagination import Cursor, decode_cursor, page_size, paginate
from fulcrum.kit.validation import parse_uuid
from fulcrum.policies import operations as ops
from fulcrum.policies import repository as repo
from fulcrum.policies.documents import validated_document
from fulcrum.policies.models import ActivePolicySet, Policy, PolicyStatus, PolicyVersion
from fulcrum.policies.notify import PolicyChange, PolicyChangeNotifier


def parse_status(value: str | None) -> PolicyStatus | None:
    if not value:
        return None
    try:
        status = PolicyStatus(value)
    except ValueError:
        status = None
    if status is None or status is PolicyStatus.DELETED:
        raise InvalidArgument("must be one of draft, active, disabled", field="status")
    return status


def _summary(policy: Policy) -> dict[str, Any]:
    return {"version": policy.current_version, "status": policy.status.value, "name": policy.name}


async def set_default_action(conn: repo.Conn, tenant_id: uuid.UUID, action: Action) -> PolicyChange:
    """Change the action the tenant's bundle falls back to, in the caller's transaction
    (tenant settings); the returned change is to be announced once it commits."""
    await repo.set_default_action(conn, action.value)
    return PolicyChange(tenant_id, await repo.bump_revision(conn))


async def active_policies(db: Database, tenant_id: uuid.UUID) -> ActivePolicySet | None:
    """What the tenant's bundle compiles from (the decision path's read), or None when the
    tenant does not exist."""
    async with db.tenant_tx(tenant_id) as conn:
        return await repo.active_set(conn)


async def policy_revisions(
    db: Database, tenant_ids: list[uuid.UUID]
) -> list[tuple[uuid.UUID, int]]:
    """The current policy revision of each tenant, in one read (a narrow database function:
    the API's role reads no tenant row but its transaction's own)."""
    async with db.tx() as conn:
        return await repo.revisions(conn, tenant_ids)


class PolicyService:
    def __init__(self, db: Database, notifier: PolicyChangeNotifier) -> None:
        self._db = db
        self._notifier = notifier

    async def create(self, principal: Principal, raw: str | bytes | dict[str, Any]) -> Policy:
        principal.authorize(ops.CREATE)
        tenant_id = principal.require_tenant()
        doc = validated_document(raw)
        async with self._db.tenant_tx(tenant_id) as conn:
            if await repo.name_taken(conn, doc.name):
                raise Conflict(f"a policy named {doc.name!r} already exists", field="name")
            policy_id = await repo.insert(
                conn,
                tenant_id=tenant_id,
                name=doc.name,
                mode=doc.mode,
                priority=doc.priority,
                document=doc.document,
                author=principal.actor,
            )
            created = await repo.get(conn, policy_id)
            assert created is not None
            await record_change(
                conn,
                tenant_id=tenant_id,
                actor=principal.actor,
                action="policy.create",
                resource_type="policy",
                resource_id=str(policy_id),
                details={"before": None, "after": _summary(created)},
            )
        return created

    async def get(self, principal: Principal, policy_id: str) -> Policy:
        principal.authorize(ops.GET)
        tenant_id = principal.require_tenant()
        pid = parse_uuid(policy_id, "policy_id")
        async with self._db.tenant_tx(tenant_id) as conn:
            policy = await repo.get(conn, pid)
        if policy is None:
            raise NotFound(f"policy {pid} not found")
        return policy

    async def get_version(
        self, principal: Principal, policy_id: str, version: int
    ) -> PolicyVersion:
        principal.authorize(ops.GET_VERSION)
        tenant_id = principal.require_tenant()
        pid = parse_uuid(policy_id, "policy_id")
        if version < 1:
            raise InvalidArgument("must be 1 or more", field="version")
        async with self._db.tenant_tx(tenant_id) as conn:
            found = await repo.get_version(conn, pid, version)
        if found is None:
            raise NotFound(f"policy {pid} version {version} not found")
        return found

    async def list(
        self, principal: Principal, *, size: int | None, token: str | None, status: str | None
    ) -> tuple[list[Policy], str]:
        principal.authorize(ops.LIST)
        tenant_id = principal.require_tenant()
        limit = page_size(size)
        wanted = parse_status(status)
        after = decode_cursor(token)
        if after is not None:
            parse_uuid(after.id, "page_token")
        async with self._db.tenant_tx(tenant_id) as conn:
            policies = await repo.list_page(conn, after, limit + 1, wanted)
        return paginate(policies, limit, lambda p: Cursor(p.created_at, str(p.id)))

    async def update(
        self, principal: Principal, policy_id: str, raw: str | bytes | dict[str, Any]
    ) -> Policy:
        principal.authorize(ops.UPDATE)
        tenant_id = principal.require_tenant()
        pid = parse_uuid(policy_id, "policy_id")
        doc = validated_document(raw)
        change: PolicyChange | None = None
        async with self._db.tenant_tx(tenant_id) as conn:
            before = await self._existing(conn, pid)
            if doc.name != before.name and await repo.name_taken(conn, doc.name, pid):
                raise Conflict(f"a policy named {doc.name!r} already exists", field="name")
            version = before.current_version + 1
            await repo.insert_version(
                conn,
                tenant_id=tenant_id,
                policy_id=pid,
                version=version,
                document=doc.document,
                author=principal.actor,
            )
            await repo.set_current(
                conn, pid, version=version, name=doc.name, mode=doc.mode, priority=doc.priority
            )
            if before.status is PolicyStatus.ACTIVE:
                change = PolicyChange(tenant_id, await repo.bump_revision(conn))
            after = await repo.get(conn, pid)
            assert after is not None
            await record_change(
                conn,
                tenant_id=tenant_id,
                actor=principal.actor,
                action="policy.update",
                resource_type="policy",
                resource_id=str(pid),
                details={"before": _summary(before), "after": _summary(after)},
            )
        if change:
            await self._notifier.notify(change)
        return after

    async def set_status(
        self, principal: Principal, policy_id: str, status: PolicyStatus
    ) -> Policy:
        principal.authorize(ops.SET_STATUS)
        tenant_id = principal.require_tenant()
        pid = parse_uuid(policy_id, "policy_id")
        change: PolicyChange | None = None
        async with self._db.tenant_tx(tenant_id) as conn:
            before = await self._existing(conn, pid)
            if before.status is status:
                return before
            await repo.set_status(conn, pid, status)
            if PolicyStatus.ACTIVE in (before.status, status):
                change = PolicyChange(tenant_id, await repo.bump_revision(conn))
            action = {
                PolicyStatus.ACTIVE: "policy.activate",
                PolicyStatus.DISABLED: "policy.disable",
                PolicyStatus.DELETED: "policy.delete",
            }.get(status, "policy.set_status")
            await record_change(
                conn,
                tenant_id=tenant_id,
                actor=principal.actor,
                action=action,
                resource_type="policy",
                resource_id=str(pid),
                details={
                    "before": _summary(before),
                    "after": {**_summary(before), "status": status.value},
                },
            )
            after = await repo.get(conn, pid) if status is not PolicyStatus.DELETED else None
        if change:
            await self._notifier.notify(change)
        return after or before

    async def _existing(self, conn: repo.Conn, policy_id: uuid.UUID) -> Policy:
        policy = await repo.get(conn, policy_id, for_update=True)
        if policy is None:
            raise NotFound(f"policy {policy_id} not found")
        return policy
