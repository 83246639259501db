"""Writes one tenant's events into its ledger in one transaction.

The chain head row is locked for the transaction, so several workers can write the same
tenant without forking its chain. Events already in the ledger (a redelivery after a crash
between commit and acknowledgement) are skipped by their unique event id, so writing the
same batch twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Sequence

from fulcrum.audit import repository as repo
from fulcrum.audit.chain import chain
from fulcrum.audit.checkpoints import CheckpointSigner
from fulcrum.events.codec import IncomingEvent
from fulcrum.kit.db import Database
from fulcrum.observability.metrics import WORKER_WRITTEN


class LedgerWriter:
    def __init__(
        self,
        db: Database,
        signer: CheckpointSigner,
        *,
        checkpoint_every_records: int,
        checkpoint_every_seconds: float,
    ) -> None:
        self._db = db
        self._signer = signer
        self._every_records = checkpoint_every_records
        self._every = dt.timedelta(seconds=checkpoint_every_seconds)

    async def write(self, tenant_id: uuid.UUID, events: Sequence[IncomingEvent]) -> int:
        """Chain and store the events not yet in the ledger; return how many were new.

        Entries come prepared (``audit.chain.prepare``), so chaining cannot fail."""
        async with self._db.tenant_tx(tenant_id) as conn:
            head_seq, head_hash = await repo.lock_head(conn)
            seen = await repo.existing_event_ids(conn, [e.entry.event_id for e in events])
            fresh: list[IncomingEvent] = []
            for event in events:
                if event.entry.event_id not in seen:
                    seen.add(event.entry.event_id)
                    fresh.append(event)
            if not fresh:
                return 0
            records = chain(
                [e.entry for e in fresh], head_seq=head_seq, head_hash=head_hash, prepared=True
            )
            await repo.insert_records(conn, records)
            await repo.insert_decisions(conn, [e.decision for e in fresh if e.decision])
            await repo.set_head(conn, records[-1].seq, records[-1].hash)
            await self._checkpoint_if_due(conn, tenant_id, records[-1].seq, records[-1].hash)
        for kind, count in Counter(e.entry.kind.value for e in fresh).items():
            WORKER_WRITTEN.labels(kind=kind).inc(count)
        return len(fresh)

    async def checkpoint_if_due(self, tenant_id: uuid.UUID) -> None:
        """Pin the newest record of an idle tenant once ``checkpoint_every_seconds`` passed."""
        async with self._db.tenant_tx(tenant_id) as conn:
            seq, hash_ = await repo.head(conn)
            if seq:
                await self._checkpoint_if_due(conn, tenant_id, seq, hash_)

    async def _checkpoint_if_due(
        self, conn: repo.Conn, tenant_id: uuid.UUID, seq: int, hash_: bytes
    ) -> None:
        now = dt.datetime.now(dt.UTC)
        last = await repo.last_checkpoint(conn)
        if last is not None and last[0] >= seq:
            return
        if last is None or seq - last[0] >= self._every_records or now - last[1] >= self._every:
            await repo.insert_checkpoint(conn, self._signer.sign(tenant_id, seq, hash_, now))
