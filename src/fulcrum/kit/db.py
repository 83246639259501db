"""PostgreSQL access: a connection pool per process and tenant-scoped transactions.

Row-level security reads the tenant from the transaction-local setting
``fulcrum.tenant_id``; :meth:`Database.tenant_tx` sets it with
``set_config('fulcrum.tenant_id', $1, true)`` so it vanishes at commit or rollback and a
pooled connection never carries one tenant's identity into another request.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass, field

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import make_conninfo
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from fulcrum.kit.config import Service, Settings
from fulcrum.kit.secrets import Secrets
from fulcrum.kit.tls import ClientTLS

# Transaction-local settings the row-level-security policies read (migrations 0001-0008).
TENANT_GUC = "fulcrum.tenant_id"
API_KEY_GUC = "fulcrum.api_key_id"  # authentication: the one key record it may read
USER_GUC = "fulcrum.external_user_id"  # a signed-in user's own memberships, across tenants
CLERK_ORG_GUC = "fulcrum.clerk_org_id"  # the tenant of a Clerk organisation
# The tenant a transaction is scoped to, as SQL: every RLS policy and every "this tenant's
# row" query uses it. NULL when no tenant is set, so such a transaction sees no rows.
CURRENT_TENANT = f"NULLIF(current_setting('{TENANT_GUC}', true), '')::uuid"


async def set_local(conn: AsyncConnection[TupleRow], name: str, value: str) -> None:
    """Set a transaction-local ``fulcrum.*`` setting: it vanishes at commit or rollback."""
    await conn.execute("SELECT set_config(%s, %s, true)", (name, value))


async def enter_tenant(conn: AsyncConnection[TupleRow], tenant_id: uuid.UUID) -> None:
    """Scope the rest of this transaction to ``tenant_id`` (RLS shows only its rows)."""
    await set_local(conn, TENANT_GUC, str(tenant_id))


def enter_tenant_blocking(conn: psycopg.Connection[TupleRow], tenant_id: uuid.UUID) -> None:
    """:func:`enter_tenant` on a plain (blocking) connection."""
    conn.execute("SELECT set_config(%s, %s, true)", (TENANT_GUC, str(tenant_id)))


@dataclass(frozen=True)
class PlatformProof:
    """What shows the database that a transaction acts for a platform key: the key's id and
    HMAC(pepper, key), which the database compares with the stored hash that no service
    role can read (migration 0007)."""

    key_id: str
    proof: bytes = field(repr=False)


class Operator:
    """Platform administration by an operator: the owner role (certificate fulcrum-admin)."""


OPERATOR = Operator()


class PlatformRefused(Exception):
    """The database did not accept the platform key (unknown, wrong secret or revoked)."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


def conninfo(settings: Settings, service: Service) -> str:
    """libpq connection string for ``service``'s own database role, authenticated by its
    certificate (the API, the worker and operators each have one: docs/SECURITY.md)."""
    params: dict[str, str | int] = {
        "host": settings.database_host,
        "port": settings.database_port,
        "dbname": settings.database_name,
        "user": service.database_role,
        "application_name": f"fulcrum-{service.value}",
        "connect_timeout": 5,
    }
    if settings.tls:
        tls = ClientTLS.for_service(settings, service)
        params |= {
            "sslmode": "verify-full",
            "sslrootcert": str(tls.ca_file),
            "sslcert": str(tls.cert_file),
            "sslkey": str(tls.key_file),
        }
    else:
        params["sslmode"] = "disable"
    password = Secrets(settings, service).source("database_password")
    if password is not None:
        params["password"] = password.get().decode()
    return make_conninfo(**{k: str(v) for k, v in params.items()})


def owner_conninfo(settings: Settings) -> str:
    return conninfo(settings, Service.ADMIN)


class Database:
    """The process's pool of connections as its service's role."""

    def __init__(self, settings: Settings, service: Service) -> None:
        self._pool: AsyncConnectionPool[AsyncConnection[TupleRow]] = AsyncConnectionPool(
            conninfo(settings, service),
            min_size=1,
            max_size=settings.database_pool_size,
            open=False,
            name=f"fulcrum-{service.value}",
            timeout=settings.database_pool_timeout_seconds,
            reconnect_timeout=0,
        )

    async def open(self) -> None:
        await self._pool.open(wait=False)

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def tx(
        self, settings: Mapping[str, str] | None = None, *, pipeline: bool = False
    ) -> AsyncIterator[AsyncConnection[TupleRow]]:
        """A transaction with transaction-local ``fulcrum.*`` settings applied first.

        With ``pipeline``, statements are sent without waiting for each other's results
        (psycopg's pipeline mode): a round trip happens only where a result is fetched
        and at commit, and errors surface there."""
        async with (
            self._pool.connection() as conn,
            conn.pipeline() if pipeline else nullcontext(),
            conn.transaction(),
        ):
            for name, value in (settings or {}).items():
                await set_local(conn, name, value)
            yield conn

    @asynccontextmanager
    async def tenant_tx(
        self, tenant_id: uuid.UUID, *, pipeline: bool = False
    ) -> AsyncIterator[AsyncConnection[TupleRow]]:
        """A transaction in which RLS shows only ``tenant_id``'s rows."""
        async with self.tx({TENANT_GUC: str(tenant_id)}, pipeline=pipeline) as conn:
            yield conn

    @asynccontextmanager
    async def platform_tx(
        self, who: PlatformProof | Operator, tenant_id: uuid.UUID | None = None
    ) -> AsyncIterator[AsyncConnection[TupleRow]]:
        """A transaction the ``platform`` policy admits to every tenant's row, once the
        database has accepted ``who``; optionally also in ``tenant_id``'s RLS scope (to
        write that tenant's members and keys, as tenant creation does)."""
        settings = {TENANT_GUC: str(tenant_id)} if tenant_id is not None else None
        async with self.tx(settings) as conn:
            if isinstance(who, Operator):
                await conn.execute("SELECT fulcrum_operator_begin()")
            else:
                cur = await conn.execute(
                    "SELECT fulcrum_platform_begin(%s, %s)", (who.key_id, who.proof)
                )
                row = await cur.fetchone()
                outcome = str(row[0]) if row else "unknown_key"
                if outcome != "ok":
                    raise PlatformRefused(outcome)
            yield conn

    async def platform_check(self, proof: PlatformProof) -> str:
        """The database's verdict on a platform key: ``ok``, ``unknown_key``, ``bad_secret``
        or ``revoked`` (and, when ok, its ``last_used_at`` is brought up to date)."""
        async with self.tx() as conn:
            cur = await conn.execute(
                "SELECT fulcrum_platform_check(%s, %s)", (proof.key_id, proof.proof)
            )
            row = await cur.fetchone()
        return str(row[0]) if row else "unknown_key"

    async def ping(self) -> None:
        async with self._pool.connection() as conn:
            await conn.execute("SELECT 1")
