"""Writes one tenant's events into its ledger in one transaction.

The chain head row is locked for the transaction, so several workers can write the same
tenant without forking its chain. Events already in the ledger (a redelivery after a crash
between commit and acknowledgement) are skipped by their unique event id, so writing the
same batch twice changes nothing.

Two ways to a commit, both pipelined (psycopg sends statements without waiting for each
other's results):

- Predicted: when this writer knows where the tenant's chain ends (its own last batch),
  it links the batch in Python first, then sends lock, insert and head update together,
  and checks under the lock that the head was the one predicted. PostgreSQL never waits
  for Python in the middle of the transaction. After another worker was seen moving the
  head, the tenant is not predicted for a while (its batches would mostly miss).
- Checked: otherwise (a first batch, another writer moved the head, or some events are
  redeliveries, which the unique event id refuses), it reads the head and the event ids
  already stored under the lock, then links the rest.

Beyond those, psycopg syncs the pipeline at BEGIN and at commit: a few round trips per
batch, not one per statement.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence

import psycopg

from fulcrum.audit import repository as repo
from fulcrum.audit.chain import Link, PreparedEntry, link
from fulcrum.audit.checkpoints import Checkpoint, CheckpointSigner
from fulcrum.kit.db import Database
from fulcrum.observability.metrics import WORKER_WRITTEN

Head = tuple[int, bytes]  # (seq, hash) of a chain's newest record
_PREDICTED_TENANTS = 10_000  # chain heads remembered, most recently written first
_SHARED_SECONDS = 10.0


class _HeadMoved(Exception):
    """The chain head under the lock was not the predicted one."""


class LedgerWriter:
    def __init__(
        self,
        db: Database,
        signer: CheckpointSigner,
        *,
        checkpoint_every_records: int,
        checkpoint_every_seconds: float,
        committed: Callable[[Checkpoint], None] = lambda _: None,
    ) -> None:
        self._db = db
        self._signer = signer
        # Told of each checkpoint once its transaction committed (the anchor publisher).
        self._committed = committed
        self._every_records = checkpoint_every_records
        self._every = dt.timedelta(seconds=checkpoint_every_seconds)
        # Where each tenant's chain will end once the batches linked so far commit.
        self._predicted: OrderedDict[uuid.UUID, Head] = OrderedDict()
        # Tenants another writer was seen writing, until when not to predict their head.
        self._shared: dict[uuid.UUID, float] = {}
        self._unpinned: set[uuid.UUID] = set()
        # Whether decision_rollups is ours to write (not a continuous aggregate): asked once.
        self._rollups: bool | None = None

    async def write(
        self,
        tenant_id: uuid.UUID,
        entries: Sequence[PreparedEntry],
        *,
        executed: asyncio.Event | None = None,
    ) -> int:
        """Chain and store the entries not yet in the ledger; return how many were new.

        Entries come prepared (``audit.chain.prepare``), so linking cannot fail.
        ``executed`` is set once the records are inserted under the head's lock, when only
        the commit remains: a next write started then queues behind this one."""
        if not entries:
            return 0
        if self._rollups is None:
            async with self._db.tx() as conn:
                self._rollups = await repo.rollups_are_written(conn)
        executed = executed or asyncio.Event()
        fresh = await self._write_predicted(tenant_id, entries, executed)
        if fresh is None:
            fresh = await self._store_checked(tenant_id, entries, executed)
        for kind, count in Counter(p.kind.value for p in fresh).items():
            WORKER_WRITTEN.labels(kind=kind).inc(count)
        return len(fresh)

    async def _write_predicted(
        self, tenant_id: uuid.UUID, entries: Sequence[PreparedEntry], executed: asyncio.Event
    ) -> Sequence[PreparedEntry] | None:
        """The entries, stored after the predicted head; None if there is no prediction or
        it did not hold (nothing was stored then)."""
        predicted = self._predicted.get(tenant_id)
        if predicted is None or time.monotonic() < self._shared.get(tenant_id, 0.0):
            return None
        links = link(entries, head_seq=predicted[0], head_hash=predicted[1])
        self._remember(tenant_id, links[-1])  # a concurrent next batch links after these
        try:
            await self._store_predicted(tenant_id, predicted, links, executed)
        except _HeadMoved:
            # Another worker writes this tenant too: its batches interleave with ours, so
            # predictions would mostly miss (each a rolled-back transaction). Check instead.
            self._shared[tenant_id] = time.monotonic() + _SHARED_SECONDS
            return None
        except psycopg.errors.UniqueViolation:  # redelivered events: the checked path skips them
            return None
        except BaseException:
            self._predicted.pop(tenant_id, None)
            raise
        return entries

    async def _store_predicted(
        self, tenant_id: uuid.UUID, predicted: Head, links: list[Link], executed: asyncio.Event
    ) -> None:
        async with self._db.tenant_tx(tenant_id, pipeline=True) as conn:
            head = await repo.lock_head(conn)
            await repo.insert_batch(conn, links, rollups=self._rollups is not False)
            await repo.set_head(conn, links[-1].seq, links[-1].hash)
            last = await repo.last_checkpoint(conn)  # the round trip: all of the above runs
            if await repo.read_head(head) != predicted:
                raise _HeadMoved  # rolls the transaction back, insert included
            executed.set()
            newest = (links[-1].seq, links[-1].hash)
            _, signed = await self._checkpoint_if_due(conn, tenant_id, newest, last)
        self._anchor(signed)

    async def _store_checked(
        self, tenant_id: uuid.UUID, entries: Sequence[PreparedEntry], executed: asyncio.Event
    ) -> list[PreparedEntry]:
        self._predicted.pop(tenant_id, None)
        try:
            async with self._db.tenant_tx(tenant_id, pipeline=True) as conn:
                head = await repo.lock_head(conn)
                seen = await repo.existing_event_ids(conn, [p.event_id for p in entries])
                head_seq, head_hash = await repo.read_head(head)
                fresh: list[PreparedEntry] = []
                for prepared in entries:
                    if prepared.event_id not in seen:
                        seen.add(prepared.event_id)
                        fresh.append(prepared)
                if not fresh:
                    return fresh
                links = link(fresh, head_seq=head_seq, head_hash=head_hash)
                self._remember(tenant_id, links[-1])
                await repo.insert_batch(conn, links, rollups=self._rollups is not False)
                await repo.set_head(conn, links[-1].seq, links[-1].hash)
                last = await repo.last_checkpoint(conn)
                executed.set()
                newest = (links[-1].seq, links[-1].hash)
                _, signed = await self._checkpoint_if_due(conn, tenant_id, newest, last)
        except BaseException:
            self._predicted.pop(tenant_id, None)  # the remembered head never committed
            raise
        self._anchor(signed)
        return fresh

    def _remember(self, tenant_id: uuid.UUID, newest: Link) -> None:
        self._predicted[tenant_id] = (newest.seq, newest.hash)
        self._predicted.move_to_end(tenant_id)
        if len(self._predicted) > _PREDICTED_TENANTS:
            self._predicted.popitem(last=False)
        until = self._shared.get(tenant_id)
        if until is not None and until < time.monotonic():
            del self._shared[tenant_id]

    def unpinned(self) -> set[uuid.UUID]:
        """Tenants this writer wrote whose newest record no checkpoint pins yet."""
        return set(self._unpinned)

    async def checkpoint_if_due(self, tenant_id: uuid.UUID) -> None:
        """Pin the newest record of an idle tenant once ``checkpoint_every_seconds`` passed."""
        async with self._db.tenant_tx(tenant_id) as conn:
            seq, hash_ = await repo.head(conn)
            pinned, signed = True, None
            if seq:
                last = await repo.last_checkpoint(conn)
                pinned, signed = await self._checkpoint_if_due(conn, tenant_id, (seq, hash_), last)
        self._anchor(signed)
        if pinned:
            self._unpinned.discard(tenant_id)

    def _anchor(self, signed: Checkpoint | None) -> None:
        """Called after the checkpoint's transaction committed, never before."""
        if signed is not None:
            self._committed(signed)

    async def _checkpoint_if_due(
        self,
        conn: repo.Conn,
        tenant_id: uuid.UUID,
        newest: Head,
        last: tuple[int, dt.datetime] | None,
    ) -> tuple[bool, Checkpoint | None]:
        """Sign a checkpoint of ``newest`` when due: whether ``newest`` is then pinned, and
        the checkpoint this transaction stored, if it stored one."""
        seq, hash_ = newest
        now = dt.datetime.now(dt.UTC)
        if last is not None and last[0] >= seq:
            return True, None
        if last is None or seq - last[0] >= self._every_records or now - last[1] >= self._every:
            signed = self._signer.sign(tenant_id, seq, hash_, now)
            stored = await repo.insert_checkpoint(conn, signed)
            return True, signed if stored else None
        self._unpinned.add(tenant_id)  # the housekeeper pins it once it is due
        return False, None
