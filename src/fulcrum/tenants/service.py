"""Creating, listing, suspending and resuming tenants (scope ``tenants:admin``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fulcrum.api_keys.models import IssuedKey
from fulcrum.api_keys.service import issue_key
from fulcrum.audit.outbox import record_change
from fulcrum.auth.limits import Plan
from fulcrum.auth.principal import Principal
from fulcrum.auth.scopes import ROLE_SCOPES, Role
from fulcrum.kit.db import Database, PlatformRefused
from fulcrum.kit.errors import Conflict, InvalidArgument, NotFound, Unauthenticated
from fulcrum.kit.pagination import Cursor, decode_cursor, page_size, paginate
from fulcrum.kit.secrets import EnvSecret, FileSecret
from fulcrum.kit.validation import display_name, parse_uuid
from fulcrum.members.service import add_owner, parse_external_user_id
from fulcrum.tenants import operations as ops
from fulcrum.tenants import repository as repo
from fulcrum.tenants.limits import limits_fields, parse_limits
from fulcrum.tenants.models import Tenant, TenantStatus
from fulcrum.tenants.repository import Conn


async def find_tenant(conn: Conn, tenant: str) -> Tenant | None:
    """A tenant by id or by name, in a platform transaction (the operator's commands)."""
    try:
        return await repo.get(conn, uuid.UUID(tenant))
    except ValueError:
        return await repo.by_name(conn, tenant)


class TenantService:
    def __init__(self, db: Database, pepper: FileSecret | EnvSecret) -> None:
        self._db = db
        self._pepper = pepper

    @asynccontextmanager
    async def _platform(
        self, principal: Principal, tenant_id: uuid.UUID | None = None
    ) -> AsyncIterator[Conn]:
        """A transaction the database admits as platform administration, on the strength of
        the principal's platform key (checked again by the database) or operator role."""
        try:
            async with self._db.platform_tx(principal.require_platform(), tenant_id) as conn:
                yield conn
        except PlatformRefused:
            raise Unauthenticated("invalid credentials") from None

    async def create(
        self, principal: Principal, *, name: str, owner_user_id: str | None = None
    ) -> tuple[Tenant, IssuedKey]:
        """Create a tenant with its first owner key (and owner member, when given)."""
        principal.authorize(ops.CREATE)
        name = display_name(name)
        owner = parse_external_user_id(owner_user_id, "owner_user_id") if owner_user_id else None
        tenant_id = uuid.uuid4()
        async with self._platform(principal, tenant_id) as conn:
            tenant = await repo.insert(conn, tenant_id, name)
            if tenant is None:
                raise Conflict(f"a tenant named {name!r} already exists", field="name")
            issued = await issue_key(
                conn,
                self._pepper.get(),
                tenant_id=tenant_id,
                name="owner",
                scopes=ROLE_SCOPES[Role.OWNER],
                created_by=principal.actor,
                expires_at=None,
                owner_member_id=None,
                service=True,  # the tenant's own key: it outlives any one member
            )
            if owner:
                await add_owner(conn, tenant_id, owner)
            await record_change(
                conn,
                tenant_id=tenant_id,
                actor=principal.actor,
                action="tenant.create",
                resource_type="tenant",
                resource_id=str(tenant_id),
                details={"after": {"name": name, "owner_key_id": issued.key.id, "owner": owner}},
            )
        return tenant, issued

    async def get(self, principal: Principal, tenant_id: str) -> Tenant:
        principal.authorize(ops.GET)
        tid = parse_uuid(tenant_id, "tenant_id")
        async with self._platform(principal) as conn:
            tenant = await repo.get(conn, tid)
        if tenant is None:
            raise NotFound(f"tenant {tid} not found")
        return tenant

    async def list(
        self, principal: Principal, *, size: int | None, token: str | None
    ) -> tuple[list[Tenant], str]:
        principal.authorize(ops.LIST)
        limit = page_size(size)
        after = decode_cursor(token)
        if after is not None:
            parse_uuid(after.id, "page_token")
        async with self._platform(principal) as conn:
            tenants = await repo.list_page(conn, after, limit + 1)
        return paginate(tenants, limit, lambda m: Cursor(m.created_at, str(m.id)))

    async def set_status(
        self, principal: Principal, tenant_id: str, status: TenantStatus
    ) -> Tenant:
        principal.authorize(ops.SET_STATUS)
        tid = parse_uuid(tenant_id, "tenant_id")
        async with self._platform(principal, tid) as conn:
            before = await repo.get(conn, tid)
            if before is None:
                raise NotFound(f"tenant {tid} not found")
            tenant = await repo.set_status(conn, tid, status)
            assert tenant is not None
            await record_change(
                conn,
                tenant_id=tid,
                actor=principal.actor,
                action=f"tenant.{'suspend' if status is TenantStatus.SUSPENDED else 'resume'}",
                resource_type="tenant",
                resource_id=str(tid),
                details={
                    "before": {"status": before.status.value},
                    "after": {"status": status.value},
                },
            )
        return tenant

    async def set_plan(self, principal: Principal, tenant_id: str, plan: str) -> Tenant:
        """Put the tenant on ``plan``; its ceilings follow unless custom ones are set."""
        principal.authorize(ops.SET_PLAN)
        tid = parse_uuid(tenant_id, "tenant_id")
        wanted = parse_plan(plan)
        async with self._platform(principal, tid) as conn:
            before = await repo.get(conn, tid)
            if before is None:
                raise NotFound(f"tenant {tid} not found")
            tenant = await repo.set_plan(conn, tid, wanted.value)
            assert tenant is not None
            await record_change(
                conn,
                tenant_id=tid,
                actor=principal.actor,
                action="tenant.set_plan",
                resource_type="tenant",
                resource_id=str(tid),
                details={"before": {"plan": before.plan}, "after": {"plan": tenant.plan}},
            )
        return tenant

    async def set_limits(
        self, principal: Principal, tenant_id: str, limits: dict[str, float | None]
    ) -> Tenant:
        """Give the tenant custom ceilings (a value of None gives one back to the plan);
        the tenant's own overrides can only lower them."""
        principal.authorize(ops.SET_LIMITS)
        tid = parse_uuid(tenant_id, "tenant_id")
        if not limits:
            raise InvalidArgument("name at least one limit to set or reset", field="limits")
        ceilings = parse_limits(
            limits,
            field="limits",
            ceiling=None,
            too_high=lambda most: f"must be at most {most}",
        )
        async with self._platform(principal, tid) as conn:
            before = await repo.get(conn, tid)
            if before is None:
                raise NotFound(f"tenant {tid} not found")
            tenant = await repo.set_ceilings(conn, tid, ceilings)
            assert tenant is not None
            await record_change(
                conn,
                tenant_id=tid,
                actor=principal.actor,
                action="tenant.set_limits",
                resource_type="tenant",
                resource_id=str(tid),
                details={
                    "before": limits_fields(before.ceiling),
                    "after": limits_fields(tenant.ceiling),
                },
            )
        return tenant


def parse_plan(value: str) -> Plan:
    try:
        return Plan(value)
    except ValueError:
        allowed = ", ".join(p.value for p in Plan)
        raise InvalidArgument(f"must be one of {allowed}", field="plan") from None
