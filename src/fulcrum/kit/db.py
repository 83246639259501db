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

from psycopg import AsyncConnection
from psycopg.conninfo import make_conninfo
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from fulcrum.kit.config import APP_ROLE, OWNER_ROLE, Service, Settings
from fulcrum.kit.secrets import Secrets
from fulcrum.kit.tls import ClientTLS

TENANT_GUC = "fulcrum.tenant_id"


def conninfo(settings: Settings, service: Service, *, role: str = APP_ROLE) -> str:
    """libpq connection string for ``role``, authenticated by ``service``'s certificate."""
    params: dict[str, str | int] = {
        "host": settings.database_host,
        "port": settings.database_port,
        "dbname": settings.database_name,
        "user": role,
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
    password = Secrets(settings).source("database_password")
    if password is not None:
        params["password"] = password.get().decode()
    return make_conninfo(**{k: str(v) for k, v in params.items()})


def owner_conninfo(settings: Settings) -> str:
    return conninfo(settings, Service.ADMIN, role=OWNER_ROLE)


class Database:
    """The process's pool of application-role connections."""

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
                await conn.execute("SELECT set_config(%s, %s, true)", (name, value))
            yield conn

    @asynccontextmanager
    async def tenant_tx(
        self, tenant_id: uuid.UUID, *, pipeline: bool = False
    ) -> AsyncIterator[AsyncConnection[TupleRow]]:
        """A transaction in which RLS shows only ``tenant_id``'s rows."""
        async with self.tx({TENANT_GUC: str(tenant_id)}, pipeline=pipeline) as conn:
            yield conn

    async def ping(self) -> None:
        async with self._pool.connection() as conn:
            await conn.execute("SELECT 1")
