"""Typed settings: the one documented place where Fulcrum reads its configuration.

Every setting is an environment variable named ``FULCRUM_<FIELD>`` (upper case).
Secrets are *not* settings: they are read from files by :mod:`fulcrum.kit.secrets`.
No ``.env`` file is ever read.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Fixed role names: the migrations grant to them and a DBA creates them in production.
OWNER_ROLE = "fulcrum_owner"
APP_ROLE = "fulcrum_app"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Service(StrEnum):
    """Identities that hold a client certificate (its CN is ``fulcrum-<value>``)."""

    API = "api"
    WORKER = "worker"
    ADMIN = "admin"


class Settings(BaseSettings):
    """Non-secret configuration. See ``docs/CONFIGURATION.md`` for every field."""

    model_config = SettingsConfigDict(
        env_prefix="FULCRUM_",
        env_file=None,
        extra="ignore",
        frozen=True,
    )

    env: Environment = Environment.DEVELOPMENT
    home: Path = Field(default=Path(".fulcrum"), description="State directory of the dev stack.")
    log_level: str = "info"

    tls: bool = Field(default=True, description="mTLS to PostgreSQL, Redis and NATS.")
    certs_dir: Path | None = Field(default=None, description="Defaults to <home>/certs.")
    secrets_dir: Path | None = Field(default=None, description="Defaults to <home>/secrets.")

    database_host: str = "127.0.0.1"
    database_port: int = 55432
    database_name: str = "fulcrum"
    database_pool_size: int = 10
    database_pool_timeout_seconds: float = Field(
        default=5.0, description="How long a request waits for a connection before a 503."
    )

    redis_host: str = "127.0.0.1"
    redis_port: int = 56379

    nats_host: str = "127.0.0.1"
    nats_port: int = 54222

    api_host: str = "127.0.0.1"
    grpc_port: int = 50051
    http_port: int = 8080
    metrics_port: int = 9464
    worker_health_port: int = 8081

    readiness_timeout_seconds: float = 2.0

    clerk_issuer: str | None = Field(default=None, description="Clerk Frontend API URL (iss).")
    clerk_jwks_url: str | None = Field(default=None, description="Clerk JWKS endpoint.")
    clerk_public_key_file: Path | None = Field(default=None, description="PEM public key.")
    clerk_authorized_parties: str = Field(
        default="", description="Comma-separated origins accepted in the azp claim."
    )
    key_cache_ttl_seconds: float = Field(
        default=0.5, description="How long a verified key is trusted before re-reading it."
    )
    last_used_flush_seconds: float = 5.0
    audit_best_effort: bool = Field(
        default=False,
        description="Answer decisions even when their event cannot be stored (counted in "
        "fulcrum_decisions_unrecorded_total). Off: audit before answer.",
    )
    events_max_inflight: int = 2048
    events_publish_retry_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long a decision's event is retried through a NATS disconnect "
        "before the decision is refused (and, if the event may be stored, voided).",
    )
    events_stream_max_bytes: int = 4 * 1024**3
    events_stream_max_age_seconds: float = 7 * 24 * 3600
    audit_retired_keys_file: Path | None = Field(
        default=None,
        description="PEM public keys of retired audit signing keys, so checkpoints signed "
        "before a key rotation still verify.",
    )
    audit_anchors_per_tenant: int = Field(
        default=1000,
        ge=1,
        description="Newest checkpoint anchors kept per tenant in the FULCRUM_ANCHORS stream.",
    )
    checkpoint_every_records: int = 1000
    checkpoint_every_seconds: float = 10.0
    decisions_retention_days: int = 30
    bundle_poll_seconds: float = Field(
        default=2.0, description="Fallback poll of policy revisions when a NATS hint is lost."
    )

    @property
    def clerk_configured(self) -> bool:
        return self.clerk_issuer is not None

    @property
    def authorized_parties(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.clerk_authorized_parties.split(",") if p.strip())

    @cached_property
    def resolved_certs_dir(self) -> Path:
        return (self.certs_dir or self.home / "certs").absolute()

    @cached_property
    def resolved_secrets_dir(self) -> Path:
        return (self.secrets_dir or self.home / "secrets").absolute()

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def nats_url(self) -> str:
        scheme = "tls" if self.tls else "nats"
        return f"{scheme}://{self.nats_host}:{self.nats_port}"

    def ca_file(self) -> Path:
        return self.resolved_certs_dir / "ca.crt"

    def cert_file(self, name: str) -> Path:
        return self.resolved_certs_dir / f"{name}.crt"

    def key_file(self, name: str) -> Path:
        return self.resolved_certs_dir / f"{name}.key"


def load_settings() -> Settings:
    return Settings()
