"""The durable pull consumer: JetStream -> ledger, acknowledged only after commit."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import replace

import psycopg
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from fulcrum.audit.chain import prepare
from fulcrum.events.codec import IncomingEvent, UndecodableEvent, decode
from fulcrum.events.streams import STREAM, SUBJECTS
from fulcrum.kit.logging import get_logger
from fulcrum.observability.metrics import WORKER_LAG, WORKER_PENDING, WORKER_SET_ASIDE
from fulcrum.worker.writer import LedgerWriter

log = get_logger(__name__)

CONSUMER = "fulcrum-ledger"


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


class LedgerConsumer:
    def __init__(
        self,
        js: JetStreamContext,
        writer: LedgerWriter,
        *,
        batch: int = 1000,
        max_ack_pending: int = 20_000,
    ) -> None:
        self._js = js
        self._writer = writer
        self._batch = batch
        self._max_ack_pending = max_ack_pending

    async def run(self, stop: asyncio.Event) -> None:
        sub = await self._js.pull_subscribe(
            SUBJECTS[0],
            durable=CONSUMER,
            stream=STREAM,
            config=consumer_config(self._max_ack_pending),
        )
        while not stop.is_set():
            try:
                messages = await sub.fetch(self._batch, timeout=1.0)
            except NatsTimeout:
                WORKER_PENDING.set(0)
                WORKER_LAG.set(0)
                continue
            except Exception as exc:
                log.warning("worker.fetch_failed", error=type(exc).__name__)
                await asyncio.sleep(0.5)
                continue
            await self.handle(messages)

    async def handle(self, messages: list[Msg]) -> None:
        by_tenant: dict[uuid.UUID, list[tuple[Msg, IncomingEvent]]] = defaultdict(list)
        for msg in messages:
            try:
                event = decode(msg.data)
                event = replace(event, entry=prepare(event.entry))
            except (UndecodableEvent, ValueError) as exc:
                log.error("worker.event_set_aside", reason=str(exc), subject=msg.subject)
                WORKER_SET_ASIDE.inc()
                await msg.term()
                continue
            by_tenant[event.entry.tenant_id].append((msg, event))
        for tenant_id, items in by_tenant.items():
            await self._write_tenant(tenant_id, items)
        self._report(messages, by_tenant)

    async def _write_tenant(
        self, tenant_id: uuid.UUID, items: list[tuple[Msg, IncomingEvent]]
    ) -> None:
        try:
            await self._writer.write(tenant_id, [event for _, event in items])
        except psycopg.errors.ForeignKeyViolation:
            log.error("worker.unknown_tenant", tenant_id=str(tenant_id), events=len(items))
            WORKER_SET_ASIDE.inc(len(items))
            await asyncio.gather(*(msg.term() for msg, _ in items))
            return
        except Exception as exc:
            # Not written: hand the events back for redelivery (the ledger dedupes).
            log.warning("worker.write_failed", tenant_id=str(tenant_id), error=type(exc).__name__)
            await asyncio.gather(*(msg.nak(delay=1.0) for msg, _ in items))
            return
        await asyncio.gather(*(msg.ack() for msg, _ in items))

    def _report(
        self, messages: list[Msg], batch: dict[uuid.UUID, list[tuple[Msg, IncomingEvent]]]
    ) -> None:
        pending = messages[-1].metadata.num_pending if messages else 0
        WORKER_PENDING.set(pending)
        times = [event.entry.occurred_at for items in batch.values() for _, event in items]
        if pending and times:
            WORKER_LAG.set((dt.datetime.now(dt.UTC) - min(times)).total_seconds())
        else:
            WORKER_LAG.set(0)
