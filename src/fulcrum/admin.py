"""Operator commands run from the CLI with the admin certificate: bootstrap a tenant,
mint a platform key, sign a development token, verify and export the ledger."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import uuid
from pathlib import Path

from fulcrum.api_keys.models import IssuedKey
from fulcrum.api_keys.service import issue_platform_key
from fulcrum.audit.anchors import anchor_stream_config, read_anchors
from fulcrum.audit.bundle import export_bundle
from fulcrum.audit.verify_chain import AnchorLog, VerificationResult
from fulcrum.audit.verify_stored import verify_tenant
from fulcrum.auth.principal import Principal, PrincipalKind
from fulcrum.auth.scopes import PLATFORM_SCOPES, parse_role
from fulcrum.authn.jwt import DevIssuer
from fulcrum.container import checkpoint_verifier
from fulcrum.events.streams import ensure_stream, stream_config
from fulcrum.kit.config import Service, Settings
from fulcrum.kit.db import OPERATOR, Database, conninfo
from fulcrum.kit.errors import ConfigurationError, NotFound, Unavailable
from fulcrum.kit.nats import connect_nats
from fulcrum.kit.secrets import Secrets
from fulcrum.members.service import enroll, parse_external_user_id
from fulcrum.tenants.models import Tenant
from fulcrum.tenants.service import TenantService, find_tenant
from fulcrum.worker.consumer import CONSUMER, MAX_ACK_PENDING, consumer_config, ensure_consumer

_NATS_SECONDS = 5.0  # how long the CLI tries to reach NATS for the anchors


def operator() -> Principal:
    return Principal(
        kind=PrincipalKind.PLATFORM,
        scopes=PLATFORM_SCOPES,
        actor=f"cli:{getpass.getuser()}",
        platform=OPERATOR,
    )


async def setup_events(settings: Settings) -> list[str]:
    """Create or update the JetStream streams and the worker's durable consumer, as the
    operator: the only NATS identity allowed to manage streams."""
    nats = await connect_nats(settings, Service.ADMIN, retry=False)
    try:
        js = nats.jetstream()
        config = stream_config(
            max_bytes=settings.events_stream_max_bytes,
            max_age_seconds=settings.events_stream_max_age_seconds,
        )
        anchors = anchor_stream_config(per_tenant=settings.audit_anchors_per_tenant)
        await ensure_stream(js, config)
        await ensure_stream(js, anchors)
        await ensure_consumer(js, consumer_config(MAX_ACK_PENDING))
        return [f"stream {config.name}", f"stream {anchors.name}", f"consumer {CONSUMER}"]
    finally:
        await nats.close()


async def _with_db(settings: Settings) -> Database:
    db = Database(settings, Service.ADMIN)
    await db.open()
    return db


async def create_tenant(
    settings: Settings, name: str, owner_user_id: str | None
) -> tuple[Tenant, IssuedKey]:
    db = await _with_db(settings)
    try:
        pepper = Secrets(settings, Service.ADMIN).require("key_pepper")
        return await TenantService(db, pepper).create(
            operator(), name=name, owner_user_id=owner_user_id
        )
    finally:
        await db.close()


async def set_tenant_plan(settings: Settings, tenant: str, plan: str) -> Tenant:
    db = await _with_db(settings)
    try:
        found = await _find_tenant(db, tenant)
        pepper = Secrets(settings, Service.ADMIN).require("key_pepper")
        return await TenantService(db, pepper).set_plan(operator(), str(found.id), plan)
    finally:
        await db.close()


async def set_tenant_limits(
    settings: Settings, tenant: str, limits: dict[str, float | None]
) -> Tenant:
    db = await _with_db(settings)
    try:
        found = await _find_tenant(db, tenant)
        pepper = Secrets(settings, Service.ADMIN).require("key_pepper")
        return await TenantService(db, pepper).set_limits(operator(), str(found.id), limits)
    finally:
        await db.close()


async def create_platform_key(settings: Settings, name: str) -> str:
    db = await _with_db(settings)
    try:
        pepper = Secrets(settings, Service.ADMIN).require("key_pepper").get()
        async with db.tx() as conn:
            return await issue_platform_key(conn, pepper, name)
    finally:
        await db.close()


async def _find_tenant(db: Database, tenant: str) -> Tenant:
    async with db.platform_tx(OPERATOR) as conn:
        found = await find_tenant(conn, tenant)
    if found is None:
        raise NotFound(f"tenant {tenant!r} not found")
    return found


async def dev_token(settings: Settings, tenant: str, role: str, user: str | None) -> str:
    """Make ``user`` a member of ``tenant`` with ``role`` and sign a token for them."""
    if settings.is_production or settings.clerk_configured:
        raise ConfigurationError(
            "development tokens exist only when Clerk is not configured, outside production"
        )
    wanted = parse_role(role)
    user_id = parse_external_user_id(user or f"dev_{wanted.value}")
    issuer = DevIssuer(Secrets(settings, Service.ADMIN).require("dev_jwt_signing_key").get())
    db = await _with_db(settings)
    try:
        found = await _find_tenant(db, tenant)
        async with db.tenant_tx(found.id) as conn:
            await enroll(conn, found.id, user_id, wanted, actor=operator().actor)
    finally:
        await db.close()
    return issuer.sign(user_id)


async def _tenant_anchors(settings: Settings, tenant_id: uuid.UUID) -> AnchorLog:
    """The tenant's anchors (NATS, bounded: the CLI must not hang when it is down)."""
    try:
        # Bounded here: nats-py retries a refused first connection forever.
        nc = await asyncio.wait_for(
            connect_nats(settings, Service.ADMIN, retry=False, quiet=True), _NATS_SECONDS
        )
    except Exception as exc:
        return AnchorLog(unavailable=f"NATS is unreachable ({type(exc).__name__})")
    try:
        return await read_anchors(nc, tenant_id)
    finally:
        with contextlib.suppress(Exception):
            await nc.close()


async def _tenant_and_anchors(settings: Settings, tenant: str) -> tuple[Tenant, AnchorLog]:
    """The tenant, then its anchors: read before its ledger (see audit.verify_stored)."""
    db = await _with_db(settings)
    try:
        found = await _find_tenant(db, tenant)
    finally:
        await db.close()
    return found, await _tenant_anchors(settings, found.id)


async def verify_ledger(
    settings: Settings, tenant: str, from_seq: int, to_seq: int | None
) -> VerificationResult:
    found, anchors = await _tenant_and_anchors(settings, tenant)
    return await asyncio.to_thread(
        verify_tenant,
        conninfo(settings, Service.ADMIN),
        found.id,
        checkpoint_verifier(settings),
        anchors=anchors,
        from_seq=from_seq,
        to_seq=to_seq,
    )


async def export_ledger(
    settings: Settings, tenant: str, path: Path, from_seq: int, to_seq: int | None
) -> int:
    """Write the range's offline bundle to ``path``; return how many records it holds."""
    found, anchors = await _tenant_and_anchors(settings, tenant)
    if anchors.unavailable is not None:
        # A bundle without its anchors would prove less than it seems to: refuse.
        raise Unavailable(f"anchors cannot be read: {anchors.unavailable}")
    verifier = checkpoint_verifier(settings)

    def write() -> int:
        with path.open("w", encoding="utf-8") as out:
            return export_bundle(
                conninfo(settings, Service.ADMIN),
                found.id,
                verifier,
                anchors,
                out,
                from_seq=from_seq,
                to_seq=to_seq,
            )

    return await asyncio.to_thread(write)
