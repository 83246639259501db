"""Typed settings: the one documented place where Fulcrum reads its configuration.

Every setting is an environment variable named ``FULCRUM_<FIELD>`` (upper case).
Secrets are *not* settings: they are read from files by :mod:`fulcrum.kit.secrets`.
No ``.env`` file is ever read.
"""

from __future__ import annotations

import os
from enum import StrEnum
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Fixed role names: the migrations grant to them and a DBA creates them in production.
# One role per service, each with only the privileges that service needs (migration 0007).
OWNER_ROLE = "fulcrum_owner"
API_ROLE = "fulcrum_api"
WORKER_ROLE = "fulcrum_worker"
SERVICE_ROLES = (API_ROLE, WORKER_ROLE)


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Service(StrEnum):
    """Identities that hold a client certificate (its CN is ``fulcrum-<value>``)."""

    API = "api"
    WORKER = "worker"
    ADMIN = "admin"

    @property
    def database_role(self) -> str:
        """The database role this identity's certificate maps to (``pg_ident.conf``)."""
        return {Service.API: API_ROLE, Service.WORKER: WORKER_ROLE, Service.ADMIN: OWNER_ROLE}[self]


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
    log_file: Path | None = Field(
        default=None, description="Write logs to this file, rotated by size, not stdout."
    )
    log_file_max_mb: int = Field(default=50, ge=1)
    log_file_backups: int = Field(default=5, ge=0)

    tls: bool = Field(default=True, description="mTLS to PostgreSQL, Redis and NATS.")
    certs_dir: Path | None = Field(default=None, description="Defaults to <home>/certs.")
    secrets_dir: Path | None = Field(
        default=None,
        description="This process's secret files; defaults to <home>/secrets/<service>, so "
        "each service of the dev stack holds only its own secrets.",
    )

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
    api_processes: int = Field(
        default_factory=lambda: len(os.sched_getaffinity(0)),
        ge=1,
        description="Serving processes of 'fulcrum api' (sharing its ports under a supervisor); "
        "1 serves in the one process, without a supervisor. Default: the usable cores.",
    )
    metrics_port: int = 9464
    worker_health_port: int = 8081

    readiness_timeout_seconds: float = 2.0

    api_tls_cert_file: Path | None = Field(
        default=None,
        description="PEM certificate (chain) of the API's REST and gRPC ports. Required in "
        "production; elsewhere defaults to <certs>/api.crt from 'fulcrum certs init'.",
    )
    api_tls_key_file: Path | None = Field(
        default=None, description="PEM private key of the API ports; default <certs>/api.key."
    )
    api_tls_reload_seconds: float = Field(
        default=10.0, gt=0, description="How often the certificate files are checked for change."
    )
    api_tls_terminated_upstream: bool = Field(
        default=False,
        description="Serve the API ports in plaintext because a TLS-terminating proxy is in "
        "front of them. The only way to serve plaintext in production.",
    )
    api_docs: bool | None = Field(
        default=None, description="Serve /docs and /openapi.json. Default: on except in production."
    )
    grpc_reflection: bool | None = Field(
        default=None, description="Serve gRPC reflection. Default: on except in production."
    )
    access_log_sample: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Share of successful requests the access log keeps; every error is kept. "
        "Default: all of them, except one in a hundred (0.01) in production.",
    )
    cors_allowed_origins: str = Field(
        default="",
        description="Comma-separated browser origins (the dashboard's) allowed to call the "
        "REST API. Empty: no origin is allowed.",
    )
    http_header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="A client must send a request's headers within this."
    )
    http_body_idle_timeout_seconds: float = Field(
        default=15.0, gt=0, description="Longest pause while a request body arrives (then 408)."
    )
    http_max_connections: int = Field(
        default=1000, gt=0, description="Open REST connections per process; beyond, 503."
    )
    grpc_max_concurrent_rpcs: int = Field(
        default=1000, gt=0, description="RPCs in flight per process; beyond, RESOURCE_EXHAUSTED."
    )

    clerk_issuer: str | None = Field(default=None, description="Clerk Frontend API URL (iss).")
    clerk_jwks_url: str | None = Field(default=None, description="Clerk JWKS endpoint.")
    clerk_public_key_file: Path | None = Field(default=None, description="PEM public key.")
    clerk_authorized_parties: str = Field(
        default="", description="Comma-separated origins accepted in the azp claim."
    )
    key_cache_ttl_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How long a verified key is trusted after it was read or last confirmed "
        "by a revision poll (bounds the revocation delay).",
    )
    key_revision_poll_seconds: float = Field(
        default=0.5,
        gt=0,
        description="How often the API reads the credential revisions of the tenants whose "
        "keys it holds (one query for all of them).",
    )
    key_negative_cache_ttl_seconds: float = Field(
        default=10.0, ge=0, description="How long a key id found not to exist is remembered."
    )
    key_lookups_max_inflight: int = Field(
        default=4,
        ge=1,
        description="Key records read from PostgreSQL at once per process (the rest wait), so "
        "a flood of unknown key ids cannot take every pooled connection.",
    )
    auth_failure_burst: int = Field(
        default=50,
        ge=1,
        description="Failed authentications one client address may make at once before it is "
        "throttled (per process).",
    )
    auth_failure_per_second: float = Field(
        default=5.0, ge=0, description="How fast a client address earns back failed attempts."
    )
    auth_failure_max_clients: int = Field(
        default=10_000, ge=1, description="Failing client addresses remembered per process."
    )
    auth_throttle_delay_seconds: float = Field(
        default=0.5,
        ge=0,
        description="How long a throttled client's refusal is held before it is sent.",
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
    audit_public_keys_file: Path | None = Field(
        default=None,
        description="PEM public keys that verify audit checkpoints: the current signing "
        "key's and any retired ones. Defaults to <home>/public/audit_public_keys.pem. Only "
        "the worker holds the private key.",
    )
    dev_jwt_public_key_file: Path | None = Field(
        default=None,
        description="Public key of the development token issuer (never in production); "
        "defaults to <home>/public/dev_jwt_public_key.pem.",
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
    bundle_cache_mb: float = Field(
        default=256,
        gt=0,
        description="Memory bound of the per-process cache of compiled policy bundles (MiB, "
        "estimated); beyond it the least recently used tenants' bundles are evicted.",
    )

    @property
    def bundle_cache_bytes(self) -> int:
        return int(self.bundle_cache_mb * 1024 * 1024)

    @property
    def clerk_configured(self) -> bool:
        return self.clerk_issuer is not None

    @property
    def authorized_parties(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.clerk_authorized_parties.split(",") if p.strip())

    @cached_property
    def resolved_certs_dir(self) -> Path:
        return (self.certs_dir or self.home / "certs").absolute()

    def secrets_dir_of(self, service: Service) -> Path:
        return (self.secrets_dir or self.home / "secrets" / service.value).absolute()

    @cached_property
    def public_dir(self) -> Path:
        """Non-secret key material the dev stack publishes (public keys)."""
        return (self.home / "public").absolute()

    @property
    def resolved_audit_public_keys_file(self) -> Path:
        return self.audit_public_keys_file or self.public_dir / "audit_public_keys.pem"

    @property
    def resolved_dev_jwt_public_key_file(self) -> Path:
        return self.dev_jwt_public_key_file or self.public_dir / "dev_jwt_public_key.pem"

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def docs_enabled(self) -> bool:
        return not self.is_production if self.api_docs is None else self.api_docs

    @property
    def access_log_share(self) -> float:
        if self.access_log_sample is not None:
            return self.access_log_sample
        return 0.01 if self.is_production else 1.0

    @property
    def reflection_enabled(self) -> bool:
        return not self.is_production if self.grpc_reflection is None else self.grpc_reflection

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip() for o in self.cors_allowed_origins.split(",") if o.strip()]

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
