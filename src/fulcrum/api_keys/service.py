"""API key management. Nobody grants a scope they do not hold; every change is audited.

A key belongs to the member who made it (a key made with a key belongs to that key's
owner) and stops working when the member is removed or demoted below the key's scopes.
Keys meant to outlive a person are tenant service keys, made explicitly by an owner."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable

from fulcrum.api_keys import operations as ops
from fulcrum.api_keys import repository as repo
from fulcrum.api_keys.models import ApiKey, IssuedKey
from fulcrum.audit.outbox import record_change, record_changes
from fulcrum.auth.api_keys import KeyKind, hash_key, new_key
from fulcrum.auth.principal import Principal, PrincipalKind
from fulcrum.auth.scopes import Scope, parse_tenant_scopes
from fulcrum.kit.db import Database
from fulcrum.kit.errors import Conflict, InvalidArgument, NotFound, PermissionDenied
from fulcrum.kit.pagination import Cursor, decode_cursor, page_size, paginate
from fulcrum.kit.secrets import EnvSecret, FileSecret
from fulcrum.kit.tracing import current_trace_id, new_trace
from fulcrum.kit.validation import display_name, future_time

_KEY_ID = re.compile(r"^[0-9a-f]{20}$")
MAX_ROTATION_OVERLAP = dt.timedelta(days=30)


def parse_key_id(value: str, field: str = "api_key_id") -> str:
    if not isinstance(value, str) or not _KEY_ID.match(value):
        raise InvalidArgument("must be a 20-character hexadecimal key id", field=field)
    return value


def ensure_grantable(principal: Principal, scopes: Iterable[Scope]) -> None:
    missing = sorted(set(scopes) - principal.scopes)
    if missing:
        raise PermissionDenied(f"cannot grant scope {missing[0]}: the caller does not hold it")


async def issue_platform_key(conn: repo.Conn, pepper: bytes, name: str) -> str:
    """Mint a platform key (the operator's command); its secret, shown once."""
    fresh = new_key(KeyKind.PLATFORM)
    await repo.insert_platform_key(
        conn, fresh.key_id, display_name(name), hash_key(pepper, fresh.full)
    )
    return fresh.full


async def issue_key(
    conn: repo.Conn,
    pepper: bytes,
    *,
    tenant_id: uuid.UUID,
    name: str,
    scopes: Iterable[Scope],
    created_by: str,
    expires_at: dt.datetime | None,
    owner_member_id: uuid.UUID | None,
    service: bool,
    rotated_from: str | None = None,
) -> IssuedKey:
    fresh = new_key(KeyKind.TENANT)
    key = await repo.insert(
        conn,
        tenant_id=tenant_id,
        key_id=fresh.key_id,
        name=name,
        key_hash=hash_key(pepper, fresh.full),
        scopes=scopes,
        created_by=created_by,
        expires_at=expires_at,
        owner_member_id=owner_member_id,
        service=service,
        rotated_from=rotated_from,
    )
    return IssuedKey(key, fresh.full)


def key_owner(principal: Principal, *, service: bool) -> uuid.UUID | None:
    """The member a new key belongs to: the caller's (a key's owner for a key), or none for a
    service key. Only holders of ``ownership:manage`` make service keys on purpose; a key
    made with a service key is a service key as well, since no member stands behind it."""
    if service:
        if Scope.OWNERSHIP_MANAGE not in principal.scopes:
            raise PermissionDenied(
                "only an owner (scope ownership:manage) can create a service key"
            )
        return None
    if principal.member_id is None and principal.kind is not PrincipalKind.API_KEY:
        raise PermissionDenied("this caller cannot own an API key")
    return principal.member_id


async def revoke_member_keys(
    conn: repo.Conn,
    *,
    tenant_id: uuid.UUID,
    actor: str,
    member_id: uuid.UUID,
    allowed: frozenset[Scope],
    reason: str,
) -> None:
    """In the caller's transaction: revoke the member's keys holding any scope outside
    ``allowed`` (nothing, for a removed member), with one audit record per key."""
    revoked = await repo.revoke_owned(conn, member_id, allowed)
    if revoked:
        trace_id = current_trace_id.get() or new_trace().trace_id
        await record_changes(
            conn,
            tenant_id=tenant_id,
            actor=actor,
            action="api_key.revoke",
            resource_type="api_key",
            targets=[(trace_id, key.id) for key in revoked],
            details={"reason": reason, "owner_member_id": str(member_id)},
        )


def _describe(key: ApiKey) -> dict[str, object]:
    return {
        "name": key.name,
        "scopes": sorted(key.scopes),
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        "owner_member_id": str(key.owner_member_id) if key.owner_member_id else None,
        "service": key.service,
    }


class ApiKeyService:
    def __init__(self, db: Database, pepper: FileSecret | EnvSecret) -> None:
        self._db = db
        self._pepper = pepper

    async def create(
        self,
        principal: Principal,
        *,
        name: str,
        scopes: list[str],
        expires_at: dt.datetime | None,
        service: bool = False,
    ) -> IssuedKey:
        principal.authorize(ops.CREATE)
        tenant_id = principal.require_tenant()
        name = display_name(name)
        requested = parse_tenant_scopes(scopes)
        expires_at = future_time(expires_at, "expire_time")
        ensure_grantable(principal, requested)
        owner = key_owner(principal, service=service)
        async with self._db.tenant_tx(tenant_id) as conn:
            issued = await issue_key(
                conn,
                self._pepper.get(),
                tenant_id=tenant_id,
                name=name,
                scopes=requested,
                created_by=principal.actor,
                expires_at=expires_at,
                owner_member_id=owner,
                service=owner is None,
            )
            await record_change(
                conn,
                tenant_id=tenant_id,
                actor=principal.actor,
                action="api_key.create",
                resource_type="api_key",
                resource_id=issued.key.id,
                details={"after": _describe(issued.key)},
            )
        return issued

    async def get(self, principal: Principal, key_id: str) -> ApiKey:
        principal.authorize(ops.GET)
        tenant_id = principal.require_tenant()
        key_id = parse_key_id(key_id)
        async with self._db.tenant_tx(tenant_id) as conn:
            key = await repo.get(conn, key_id)
        if key is None:
            raise NotFound(f"api key {key_id} not found")
        return key

    async def list(
        self, principal: Principal, *, size: int | None, token: str | None
    ) -> tuple[list[ApiKey], str]:
        principal.authorize(ops.LIST)
        tenant_id = principal.require_tenant()
        limit = page_size(size)
        after = decode_cursor(token)
        if after is not None:
            parse_key_id(after.id, "page_token")
        async with self._db.tenant_tx(tenant_id) as conn:
            keys = await repo.list_page(conn, after, limit + 1)
        return paginate(keys, limit, lambda k: Cursor(k.created_at, k.id))

    async def revoke(self, principal: Principal, key_id: str) -> ApiKey:
        principal.authorize(ops.REVOKE)
        tenant_id = principal.require_tenant()
        key_id = parse_key_id(key_id)
        async with self._db.tenant_tx(tenant_id) as conn:
            before = await repo.get(conn, key_id, for_update=True)
            if before is None:
                raise NotFound(f"api key {key_id} not found")
            ensure_grantable(principal, before.scopes)
            after = await repo.revoke(conn, key_id)
            await record_change(
                conn,
                tenant_id=tenant_id,
                actor=principal.actor,
                action="api_key.revoke",
                resource_type="api_key",
                resource_id=key_id,
                details={"before": _describe(before), "after": _describe(after)},
            )
        return after

    async def rotate(
        self, principal: Principal, key_id: str, *, old_valid_until: dt.datetime | None
    ) -> tuple[IssuedKey, ApiKey]:
        principal.authorize(ops.ROTATE)
        tenant_id = principal.require_tenant()
        key_id = parse_key_id(key_id)
        now = dt.datetime.now(dt.UTC)
        if old_valid_until is None:
            old_valid_until = now
        elif old_valid_until.tzinfo is None:
            raise InvalidArgument("must include a time zone", field="old_key_valid_until")
        elif old_valid_until > now + MAX_ROTATION_OVERLAP:
            raise InvalidArgument("must be within 30 days", field="old_key_valid_until")
        old_valid_until = max(old_valid_until, now)
        async with self._db.tenant_tx(tenant_id) as conn:
            old = await repo.get(conn, key_id, for_update=True)
            if old is None:
                raise NotFound(f"api key {key_id} not found")
            if old.revoked_at is not None:
                raise Conflict(f"api key {key_id} is revoked and cannot be rotated")
            if old.expires_at is not None and old.expires_at <= now:
                raise Conflict(f"api key {key_id} has expired and cannot be rotated")
            ensure_grantable(principal, old.scopes)
            issued = await issue_key(
                conn,
                self._pepper.get(),
                tenant_id=tenant_id,
                name=old.name,
                scopes=old.scopes,
                created_by=principal.actor,
                expires_at=old.expires_at,
                # The new key is the same credential renewed: it keeps the old one's owner.
                owner_member_id=old.owner_member_id,
                service=old.service,
                rotated_from=old.id,
            )
            previous = await repo.expire_at(conn, key_id, old_valid_until)
            await record_change(
                conn,
                tenant_id=tenant_id,
                actor=principal.actor,
                action="api_key.rotate",
                resource_type="api_key",
                resource_id=key_id,
                details={
                    "before": _describe(old),
                    "after": _describe(previous),
                    "new_key_id": issued.key.id,
                },
            )
        return issued, previous
