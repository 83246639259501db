"""Wires the services of one API process from its settings and connections."""

from __future__ import annotations

from dataclasses import dataclass

from fulcrum.api_keys.service import ApiKeyService
from fulcrum.audit.checkpoints import CheckpointVerifier
from fulcrum.audit.service import AuditService
from fulcrum.authn.authenticator import Authenticator
from fulcrum.authn.jwt import (
    DEV_AUTHORIZED_PARTY,
    DEV_ISSUER,
    JwksKeySource,
    JwtVerifier,
    KeySource,
    PemKeySource,
)
from fulcrum.decisions.bundles import BundleCache
from fulcrum.decisions.service import DecisionService
from fulcrum.decisions.voids import DecisionVoids
from fulcrum.events.publisher import EventPublisher
from fulcrum.kit.config import Service, Settings
from fulcrum.kit.db import conninfo
from fulcrum.kit.errors import ConfigurationError
from fulcrum.kit.secrets import Secrets
from fulcrum.members.invitations import InvitationService
from fulcrum.members.service import MemberService
from fulcrum.policies.notify import PolicyChangeNotifier
from fulcrum.policies.service import PolicyService
from fulcrum.policies.simulate import SimulationService
from fulcrum.ratelimit.limiter import RateLimiter
from fulcrum.runtime import Resources
from fulcrum.tenants.service import TenantService
from fulcrum.tenants.settings import SettingsService


@dataclass(frozen=True)
class Services:
    authenticator: Authenticator
    tenants: TenantService
    members: MemberService
    invitations: InvitationService
    api_keys: ApiKeyService
    policies: PolicyService
    settings: SettingsService
    bundles: BundleCache
    decisions: DecisionService
    simulations: SimulationService
    rate_limiter: RateLimiter
    audit: AuditService

    def start(self) -> None:
        self.authenticator.start()
        self.bundles.start()

    async def stop(self) -> None:
        await self.bundles.stop()
        await self.authenticator.stop()


def jwt_verifier(settings: Settings) -> JwtVerifier:
    """Clerk when configured; the development issuer otherwise, never in production."""
    if settings.clerk_configured:
        assert settings.clerk_issuer is not None
        keys: KeySource
        if settings.clerk_public_key_file is not None:
            keys = PemKeySource(settings.clerk_public_key_file.read_bytes())
        elif settings.clerk_jwks_url:
            keys = JwksKeySource(settings.clerk_jwks_url)
        else:
            raise ConfigurationError(
                "FULCRUM_CLERK_ISSUER is set but no key: set FULCRUM_CLERK_JWKS_URL or "
                "FULCRUM_CLERK_PUBLIC_KEY_FILE"
            )
        return JwtVerifier(settings.clerk_issuer, settings.authorized_parties, keys)
    if settings.is_production:
        raise ConfigurationError(
            "Clerk is not configured and the development token issuer is refused in "
            "production: set FULCRUM_CLERK_ISSUER and FULCRUM_CLERK_JWKS_URL (or "
            "FULCRUM_CLERK_PUBLIC_KEY_FILE)"
        )
    return dev_verifier(settings)


def dev_verifier(settings: Settings) -> JwtVerifier:
    """The development issuer's verifier, from its public key: only the CLI signs."""
    path = settings.resolved_dev_jwt_public_key_file
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(
            f"the development token issuer's public key {path} is missing: run "
            "'fulcrum dev up' or set FULCRUM_DEV_JWT_PUBLIC_KEY_FILE"
        ) from None
    return JwtVerifier(DEV_ISSUER, frozenset({DEV_AUTHORIZED_PARTY}), PemKeySource(pem))


def build_services(settings: Settings, resources: Resources) -> Services:
    secrets = Secrets(settings, Service.API)
    pepper = secrets.require("key_pepper")
    db = resources.db
    notifier = PolicyChangeNotifier(lambda: resources.nats)
    bundles = BundleCache(
        db,
        lambda: resources.nats,
        max_bytes=settings.bundle_cache_bytes,
        poll_interval=settings.bundle_poll_seconds,
    )
    return Services(
        authenticator=Authenticator(
            db,
            pepper,
            jwt_verifier(settings),
            cache_ttl=settings.key_cache_ttl_seconds,
            revision_poll=settings.key_revision_poll_seconds,
            flush_interval=settings.last_used_flush_seconds,
            negative_ttl=settings.key_negative_cache_ttl_seconds,
            max_lookups=settings.key_lookups_max_inflight,
            failure_rate=settings.auth_failure_per_second,
            failure_burst=settings.auth_failure_burst,
            max_failing_clients=settings.auth_failure_max_clients,
            throttle_delay=settings.auth_throttle_delay_seconds,
        ),
        tenants=TenantService(db, pepper),
        members=MemberService(db),
        invitations=InvitationService(db),
        api_keys=ApiKeyService(db, pepper),
        policies=PolicyService(db, notifier),
        settings=SettingsService(db, notifier),
        bundles=bundles,
        decisions=DecisionService(
            bundles,
            EventPublisher(
                lambda: resources.nats,
                max_inflight=settings.events_max_inflight,
                retry_budget=settings.events_publish_retry_seconds,
            ),
            voids=DecisionVoids(db),
            best_effort=settings.audit_best_effort,
        ),
        simulations=SimulationService(db),
        rate_limiter=RateLimiter.on(resources.redis),
        audit=AuditService(
            db,
            conninfo(settings, resources.service),
            checkpoint_verifier(settings),
            lambda: resources.nats,
        ),
    )


def checkpoint_verifier(settings: Settings) -> CheckpointVerifier:
    """Checkpoints verify against public keys only (current and retired): the private
    signing key exists only where the worker runs."""
    path = settings.resolved_audit_public_keys_file
    try:
        bundle = path.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(
            f"audit public keys file {path} is missing: run 'fulcrum dev up' or set "
            "FULCRUM_AUDIT_PUBLIC_KEYS_FILE"
        ) from None
    marker = b"-----END PUBLIC KEY-----"
    return CheckpointVerifier([part + marker for part in bundle.split(marker) if part.strip()])
