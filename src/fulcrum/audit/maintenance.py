"""The ledger's upkeep, as the worker's housekeeping asks for it: which tenants have a
ledger, each one's newest checkpoint, the decision partitions, and the notifications of
committed changes."""

from __future__ import annotations

import uuid

from fulcrum.audit import repository as repo
from fulcrum.audit.checkpoints import Checkpoint
from fulcrum.kit.db import Database


async def ledger_tenants(db: Database) -> list[uuid.UUID]:
    async with db.tx() as conn:
        return await repo.ledger_tenants(conn)


async def newest_checkpoint(db: Database, tenant_id: uuid.UUID) -> Checkpoint | None:
    async with db.tenant_tx(tenant_id) as conn:
        return await repo.newest_checkpoint(conn)


async def maintain_partitions(db: Database, retention_days: int) -> None:
    async with db.tx() as conn:
        await repo.maintain_partitions(conn, retention_days)


async def listen_for_changes(conn: repo.Conn) -> None:
    """Have PostgreSQL notify ``conn`` (autocommit, the listener's own) of each tenant
    whose changes commit."""
    await repo.listen_for_changes(conn)
