"""The durable pull consumer: JetStream -> ledger, acknowledged only after commit.

Two tasks overlap the work of consecutive batches: the reader pulls, decodes and prepares
batch n+1 (Python) while the writer's transaction for batch n runs in PostgreSQL; a queue
of one batch between them bounds memory and applies back-pressure to the pulls.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import psycopg
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from fulcrum.audit.chain import PreparedEntry
from fulcrum.audit.intake import prepare_event
from fulcrum.audit.writer import LedgerWriter
from fulcrum.events.envelope import UndecodableEvent
from fulcrum.events.pull import ContinuousPull
from fulcrum.events.streams import STREAM, SUBJECTS
from fulcrum.kit.logging import get_logger
from fulcrum.observability.metrics import WORKER_LAG, WORKER_PENDING, WORKER_SET_ASIDE

log = get_logger(__name__)

CONSUMER = "fulcrum-ledger"
_YIELD_EVERY = 50  # messages decoded between two turns of the event loop
_IN_FLIGHT = 2  # transactions at once: one committing, the next running its statements
_RESTART_SECONDS = 1.0
MAX_ACK_PENDING = 20_000


def consumer_config(max_ack_pending: int) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=CONSUMER,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=30.0,
        # Back-pressure: at most this many events handed out and not yet written.
        max_ack_pending=max_ack_pending,
        filter_subject=SUBJECTS[0],
    )


async def ensure_consumer(js: JetStreamContext, config: ConsumerConfig) -> None:
    """Create the durable consumer unless it exists (several workers share it). An
    operator's command (``fulcrum events setup``): the worker may not create consumers."""
    try:
        await js.consumer_info(STREAM, CONSUMER)
    except NotFoundError:
        await js.add_consumer(STREAM, config)


class ConsumerMissing(Exception):
    """The durable consumer does not exist: an operator has not run ``fulcrum events setup``."""


@dataclass
class Batch:
    """Pulled messages, decoded and prepared, grouped by tenant (one transaction each)."""

    by_tenant: dict[uuid.UUID, list[tuple[Msg, PreparedEntry]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    pending: int = 0  # messages left in the consumer when the last one was delivered
    oldest: dt.datetime | None = None


class LedgerConsumer:
    def __init__(
        self,
        nc: NatsClient,
        writer: LedgerWriter,
        *,
        batch: int = 1000,
    ) -> None:
        self._nc = nc
        self._writer = writer
        self._batch = batch

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop``; a failure (NATS or PostgreSQL gone mid-way) is logged and
        consuming starts again, so the worker never sits idle while it looks healthy."""
        while not stop.is_set():
            try:
                await self._consume(stop)
            except Exception as exc:
                log.error("worker.consumer_failed", error=type(exc).__name__, detail=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), _RESTART_SECONDS)

    async def _consume(self, stop: asyncio.Event) -> None:
        try:
            await self._nc.jetstream().consumer_info(STREAM, CONSUMER)
        except NotFoundError:
            raise ConsumerMissing(
                f"the durable consumer {CONSUMER} does not exist: run 'fulcrum events setup'"
            ) from None
        puller = ContinuousPull(self._nc, stream=STREAM, consumer=CONSUMER, batch=self._batch)
        await puller.start()
        ready: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize=1)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._read(puller, ready, stop))
                tasks.create_task(self._drain(ready))
        finally:
            await puller.stop()

    async def _read(
        self, puller: ContinuousPull, ready: asyncio.Queue[Batch | None], stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            messages = await puller.next_batch(timeout=1.0)
            if messages:
                await ready.put(await self._decode(messages))
            else:
                WORKER_PENDING.set(0)
                WORKER_LAG.set(0)
        await ready.put(None)  # the writer finishes the batch it has, then stops

    async def _drain(self, ready: asyncio.Queue[Batch | None]) -> None:
        in_flight: deque[asyncio.Task[None]] = deque()
        while (batch := await ready.get()) is not None:
            for tenant_id, items in batch.by_tenant.items():
                while len(in_flight) >= _IN_FLIGHT:
                    await in_flight.popleft()
                in_flight.append(await self._start_write(tenant_id, items))
            self._report(batch)
        for task in in_flight:
            await task

    async def _start_write(
        self, tenant_id: uuid.UUID, items: list[tuple[Msg, PreparedEntry]]
    ) -> asyncio.Task[None]:
        """Start writing a tenant's events; return once its transaction holds the tenant's
        chain head and has run its statements (or ended), so that the next transaction is
        sent while this one commits and acknowledges: it waits on the head's lock inside
        PostgreSQL and proceeds the moment this one commits, in the order they started."""
        executed = asyncio.Event()
        task = asyncio.create_task(self._write_tenant(tenant_id, items, executed))
        waiter = asyncio.create_task(executed.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        return task

    async def _decode(self, messages: list[Msg]) -> Batch:
        """Decode and prepare; events that can never be stored are set aside (terminated)."""
        batch = Batch(pending=messages[-1].metadata.num_pending)
        for index, msg in enumerate(messages, start=1):
            if index % _YIELD_EVERY == 0:
                # Let the writer's transaction take its next step: a whole batch decoded
                # without a pause would hold PostgreSQL's answers for its full duration.
                await asyncio.sleep(0)
            try:
                prepared = prepare_event(msg.data)
            except (UndecodableEvent, ValueError) as exc:
                log.error("worker.event_set_aside", reason=str(exc), subject=msg.subject)
                WORKER_SET_ASIDE.inc()
                await _settle([msg], Msg.term)
                continue
            batch.by_tenant[prepared.tenant_id].append((msg, prepared))
            if batch.oldest is None or prepared.occurred_at < batch.oldest:
                batch.oldest = prepared.occurred_at
        return batch

    def _report(self, batch: Batch) -> None:
        WORKER_PENDING.set(batch.pending)
        if batch.pending and batch.oldest is not None:
            WORKER_LAG.set((dt.datetime.now(dt.UTC) - batch.oldest).total_seconds())
        else:
            WORKER_LAG.set(0)

    async def _write_tenant(
        self,
        tenant_id: uuid.UUID,
        items: list[tuple[Msg, PreparedEntry]],
        executed: asyncio.Event,
    ) -> None:
        try:
            await self._writer.write(
                tenant_id, [prepared for _, prepared in items], executed=executed
            )
        except psycopg.errors.ForeignKeyViolation:
            log.error("worker.unknown_tenant", tenant_id=str(tenant_id), events=len(items))
            WORKER_SET_ASIDE.inc(len(items))
            await _settle([msg for msg, _ in items], Msg.term)
            return
        except Exception as exc:
            # Not written: hand the events back for redelivery (the ledger dedupes).
            log.warning("worker.write_failed", tenant_id=str(tenant_id), error=type(exc).__name__)
            await _settle([msg for msg, _ in items], _nak_soon)
            return
        await _settle([msg for msg, _ in items], Msg.ack)


async def _nak_soon(msg: Msg) -> None:
    await msg.nak(delay=1.0)


async def _settle(messages: list[Msg], how: Callable[[Msg], Awaitable[None]]) -> None:
    """Ack, nak or term each message. If NATS is gone, the rest are left to JetStream, which
    redelivers them after ack_wait (and the ledger skips what it already holds)."""
    for msg in messages:
        try:
            await how(msg)
        except NatsError as exc:
            log.warning("worker.settle_failed", error=type(exc).__name__, left=len(messages))
            return
