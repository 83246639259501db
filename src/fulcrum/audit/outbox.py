"""The outbox of administrative changes: written with the change, relayed into the ledger.

A change's record is written to the append-only ``audit_events`` table in the same
transaction as the change it describes, so a change without its record (or a record
without its change) cannot exist. The worker's housekeeping then publishes each one not yet
in the ledger as a ``fulcrum.v1.ChangeEvent`` (its id as Nats-Msg-Id), which the consumer
chains like a decision: a change is never lost, even when NATS was down when it was made.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.client import Client as NatsClient

from fulcrum.audit import repository as repo
from fulcrum.events.envelope import OutgoingEvent, change_message
from fulcrum.kit.db import Database
from fulcrum.kit.tracing import current_trace_id, new_trace
from fulcrum.pb.v1 import events_pb2

REPUBLISH_AFTER_SECONDS = 30.0


async def record_change(
    conn: repo.Conn,
    *,
    tenant_id: uuid.UUID,
    actor: str,
    action: str,
    resource_type: str,
    resource_id: str,
    details: dict[str, Any] | None = None,
) -> None:
    trace_id = current_trace_id.get() or new_trace().trace_id
    await record_changes(
        conn,
        tenant_id=tenant_id,
        actor=actor,
        action=action,
        resource_type=resource_type,
        targets=[(trace_id, resource_id)],
        details=details,
    )


async def record_changes(
    conn: repo.Conn,
    *,
    tenant_id: uuid.UUID,
    actor: str,
    action: str,
    resource_type: str,
    targets: Sequence[tuple[str, str]],
    outcome: str = "success",
    details: dict[str, Any] | None = None,
) -> None:
    """One change per ``(trace id, resource id)`` of ``targets``, in one statement; the
    worker is told on commit."""
    await repo.insert_changes(
        conn,
        tenant_id=tenant_id,
        actor=actor,
        action=action,
        resource_type=resource_type,
        targets=targets,
        outcome=outcome,
        details=details or {},
    )
    await repo.notify_changes(conn, tenant_id)


def change_event(
    *,
    tenant_id: uuid.UUID,
    change_id: uuid.UUID,
    time: dt.datetime,
    trace_id: str,
    actor: str,
    action: str,
    resource_type: str,
    resource_id: str,
    outcome: str,
    details: Mapping[str, Any],
) -> OutgoingEvent:
    struct = Struct()
    struct.update(dict(details))
    at = Timestamp()
    at.FromDatetime(time)
    return change_message(
        events_pb2.ChangeEvent(
            tenant_id=str(tenant_id),
            change_id=str(change_id),
            time=at,
            trace_id=trace_id,
            actor=actor,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            outcome=outcome,
            details=struct,
        )
    )


class ChangeRelay:
    """Publishes a tenant's changes not yet in the ledger. A change published in the last
    ``REPUBLISH_AFTER_SECONDS`` is not published again (it is on its way to the ledger)."""

    def __init__(self, db: Database, nats: NatsClient) -> None:
        self._db = db
        self._nats = nats
        self._published: dict[uuid.UUID, float] = {}

    def forget_old(self, now: float) -> None:
        self._published = {
            k: t for k, t in self._published.items() if now - t < REPUBLISH_AFTER_SECONDS
        }

    async def relay(self, tenant_id: uuid.UUID) -> bool:
        """Publish the tenant's changes not yet in the ledger; whether there were any."""
        async with self._db.tenant_tx(tenant_id) as conn:
            rows = await repo.unrelayed_changes(conn)
        events = [
            change_event(
                tenant_id=tenant_id,
                change_id=row[0],
                time=row[1],
                trace_id=row[2],
                actor=row[3],
                action=row[4],
                resource_type=row[5],
                resource_id=row[6],
                outcome=row[7],
                details=row[8],
            )
            for row in rows
            if row[0] not in self._published
        ]
        if not events:
            return bool(rows)
        js = self._nats.jetstream()
        await asyncio.gather(
            *(
                js.publish(e.subject, e.data, headers={"Nats-Msg-Id": e.msg_id}, timeout=5)
                for e in events
            )
        )
        stamp = time.monotonic()
        for row in rows:
            self._published[row[0]] = stamp
        return True
