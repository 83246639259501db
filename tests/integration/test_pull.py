"""ContinuousPull against the real NATS JetStream of the test stack.

Every test uses its own stream and subjects, so the product's stream is never touched.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo, StorageType, StreamConfig

from fulcrum.events.pull import ContinuousPull
from fulcrum.kit.config import Service
from fulcrum.kit.nats import connect_nats
from tests.support.stack import LiveStack

CONSUMER = "pulltest"


@dataclass
class Stream:
    nc: NatsClient
    js: JetStreamContext
    name: str
    prefix: str

    async def publish(self, count: int) -> None:
        """Core publishes (no per-message round trip), then wait until all are stored."""
        stored = (await self.js.stream_info(self.name)).state.messages
        for i in range(count):
            await self.nc.publish(f"{self.prefix}.event", str(i).encode())
        await self.nc.flush()
        await eventually(lambda: self._stored_at_least(stored + count), f"{count} messages stored")

    async def _stored_at_least(self, count: int) -> bool:
        return (await self.js.stream_info(self.name)).state.messages >= count

    async def add_consumer(self, *, ack_wait: float = 30.0) -> None:
        await self.js.add_consumer(
            self.name,
            ConsumerConfig(
                durable_name=CONSUMER,
                ack_policy=AckPolicy.EXPLICIT,
                max_ack_pending=20_000,
                ack_wait=ack_wait,
            ),
        )

    def pull(self, *, batch: int, expires: float = 5.0) -> ContinuousPull:
        return ContinuousPull(
            self.nc, stream=self.name, consumer=CONSUMER, batch=batch, expires=expires
        )


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def receive(puller: ContinuousPull, count: int, *, within: float = 15) -> list[Msg]:
    """next_batch until ``count`` messages came (or ``within`` seconds passed)."""
    received: list[Msg] = []
    deadline = time.monotonic() + within
    while len(received) < count and time.monotonic() < deadline:
        received += await puller.next_batch(timeout=0.5)
    return received


def numbers(messages: list[Msg]) -> list[int]:
    return [int(msg.data) for msg in messages]


async def buffered_at_least(puller: ContinuousPull, count: int) -> bool:
    return puller.buffered >= count


async def waiting_requests(stream: Stream, count: int) -> bool:
    info: ConsumerInfo = await stream.js.consumer_info(stream.name, CONSUMER)
    return info.num_waiting == count


@pytest.fixture
async def stream(stack: LiveStack) -> AsyncIterator[Stream]:
    # The pull protocol on scratch streams: the operator identity, the only one that may
    # create streams and consumers (the worker's user may pull only its own durable).
    nc = await connect_nats(stack.settings, Service.ADMIN)
    js = nc.jetstream()
    tag = uuid.uuid4().hex[:12]
    name = f"PULLTEST_{tag}"
    prefix = f"pulltest.{tag}"
    await js.add_stream(
        StreamConfig(
            name=name, subjects=[f"{prefix}.>"], storage=StorageType.FILE, max_bytes=64 * 1024**2
        )
    )
    try:
        yield Stream(nc, js, name, prefix)
    finally:
        await js.delete_stream(name)
        await nc.close()


async def test_every_message_arrives_once_in_order_and_acks_settle(stream: Stream) -> None:
    await stream.add_consumer()
    await stream.publish(5000)
    puller = stream.pull(batch=500)
    await puller.start()
    try:
        received: list[Msg] = []
        deadline = time.monotonic() + 30
        while len(received) < 5000 and time.monotonic() < deadline:
            batch = await puller.next_batch(timeout=1.0)
            assert len(batch) <= 500
            for msg in batch:
                await msg.ack()
            received += batch
        assert await puller.next_batch(timeout=0.3) == []
    finally:
        await puller.stop()

    assert numbers(received) == list(range(5000))
    assert [m.metadata.sequence.stream for m in received] == list(range(1, 5001))
    assert all(m.metadata.num_delivered == 1 for m in received)

    async def settled() -> bool:
        info: ConsumerInfo = await stream.js.consumer_info(stream.name, CONSUMER)
        return info.num_ack_pending == 0 and info.num_pending == 0

    await eventually(settled, "the consumer to have nothing pending")


async def test_low_traffic_returns_empty_then_a_single_message_promptly(
    stream: Stream,
) -> None:
    await stream.add_consumer()
    # A request for 100 that the server may hold for 30 s must not hold back one message.
    puller = stream.pull(batch=100, expires=30)
    await puller.start()
    try:
        started = time.monotonic()
        assert await puller.next_batch(timeout=0.5) == []
        assert time.monotonic() - started >= 0.4

        await stream.publish(1)
        started = time.monotonic()
        batch = await puller.next_batch(timeout=5)
        assert numbers(batch) == [0]
        assert time.monotonic() - started < 5
        await batch[0].ack()
    finally:
        await puller.stop()


async def test_unacked_and_still_buffered_messages_are_redelivered(stream: Stream) -> None:
    await stream.add_consumer(ack_wait=1.0)
    await stream.publish(10)
    first = stream.pull(batch=5, expires=2)
    await first.start()
    try:
        # Two batches are delivered: one is returned and not acked, one stays buffered.
        await eventually(lambda: buffered_at_least(first, 10), "two batches to be buffered")
        assert numbers(await first.next_batch(timeout=5)) == [0, 1, 2, 3, 4]
    finally:
        await first.stop()

    second = stream.pull(batch=5, expires=2)
    await second.start()
    try:
        again = await receive(second, 10)
        for msg in again:
            await msg.ack()
    finally:
        await second.stop()
    assert sorted(numbers(again)) == list(range(10))
    assert all(m.metadata.num_delivered >= 2 for m in again)


async def test_client_holds_at_most_two_batches(stream: Stream) -> None:
    await stream.add_consumer()
    await stream.publish(500)
    puller = stream.pull(batch=50)
    await puller.start()
    try:
        # One batch for the caller and one ahead of it, and no more, however long it idles.
        await eventually(lambda: buffered_at_least(puller, 100), "two batches to be buffered")
        await asyncio.sleep(0.5)
        assert puller.buffered == 100
        assert puller.outstanding == 0

        assert numbers(await puller.next_batch(timeout=1)) == list(range(50))
        await eventually(lambda: buffered_at_least(puller, 100), "the next batch to be buffered")
        await asyncio.sleep(0.5)
        assert puller.buffered == 100
    finally:
        await puller.stop()


async def test_expired_requests_are_replaced_without_a_next_batch_call(stream: Stream) -> None:
    await stream.add_consumer()
    puller = stream.pull(batch=10, expires=1)
    await puller.start()
    try:
        # Idle for several expiries: each 408 must be answered with a new request.
        await asyncio.sleep(3.5)
        assert await waiting_requests(stream, 1)
        assert puller.outstanding == 20

        await stream.publish(3)
        assert numbers(await receive(puller, 3)) == [0, 1, 2]
    finally:
        await puller.stop()


async def test_recovers_when_the_consumer_is_deleted_and_recreated(stream: Stream) -> None:
    await stream.add_consumer()
    # Long expiry: only the server's 409 can end the request within this test.
    puller = stream.pull(batch=10, expires=30)
    await puller.start()
    try:
        # The server queues a pull request before it registers it; a consumer deleted in
        # between loses the request without a word (covered by the next test).
        await eventually(lambda: waiting_requests(stream, 1), "the request to be registered")
        await stream.js.delete_consumer(stream.name, CONSUMER)
        await stream.add_consumer()
        await stream.publish(3)
        assert numbers(await receive(puller, 3, within=10)) == [0, 1, 2]
    finally:
        await puller.stop()


async def test_a_request_the_server_never_answers_is_replaced(stream: Stream) -> None:
    """As after a NATS crash, or a consumer deleted before it registered the request."""
    await stream.add_consumer()
    seen: list[str] = []

    async def lose_the_first(msg: Msg) -> None:
        seen.append(msg.reply)
        if len(seen) > 1:
            await stream.nc.publish(
                f"$JS.API.CONSUMER.MSG.NEXT.{stream.name}.{CONSUMER}", msg.data, reply=msg.reply
            )

    # Requests go through a hop that drops the first one and forwards the rest.
    prefix = f"pulltest_lossy.{stream.name}"
    hop = await stream.nc.subscribe(
        f"{prefix}.CONSUMER.MSG.NEXT.{stream.name}.{CONSUMER}", cb=lose_the_first
    )
    puller = ContinuousPull(
        stream.nc, stream=stream.name, consumer=CONSUMER, batch=10, expires=1, api_prefix=prefix
    )
    await puller.start()
    try:
        await stream.publish(3)
        assert numbers(await receive(puller, 3, within=10)) == [0, 1, 2]
        assert len(seen) >= 2
    finally:
        await puller.stop()
        await hop.unsubscribe()


async def test_recovers_after_a_nats_restart(stack: LiveStack, stream: Stream) -> None:
    """A restarted server has forgotten every pull request (a clean shutdown says 409)."""
    await stream.add_consumer()
    puller = stream.pull(batch=10, expires=2)
    await puller.start()
    try:
        assert await puller.next_batch(timeout=0.2) == []
        nats = stack.devstack.nats
        # start() probes with asyncio.run, so not on this test's running loop.
        await asyncio.to_thread(nats.stop)
        await asyncio.to_thread(nats.start)

        async def connected() -> bool:
            return stream.nc.is_connected

        await eventually(connected, "the client to reconnect")
        await stream.publish(3)
        assert numbers(await receive(puller, 3)) == [0, 1, 2]
    finally:
        if not stack.devstack.nats.is_running():
            await asyncio.to_thread(stack.devstack.nats.start)
        await puller.stop()


async def test_a_stream_message_with_a_status_header_is_still_a_message(stream: Stream) -> None:
    """Status replies are told apart by their missing ack subject, not by the header alone:
    an event carrying a "Status" header of its own is delivered like any other."""
    await stream.add_consumer()
    await stream.js.publish(f"{stream.prefix}.event", b"spoof", headers={"Status": "404"})
    puller = stream.pull(batch=10)
    await puller.start()
    try:
        [msg] = await puller.next_batch(timeout=5)
        assert msg.data == b"spoof"
        await msg.ack()
    finally:
        await puller.stop()


async def test_stop_hands_buffered_messages_back_at_once(stream: Stream) -> None:
    await stream.add_consumer(ack_wait=60)
    await stream.publish(30)
    first = stream.pull(batch=10)
    await first.start()
    await eventually(lambda: buffered_at_least(first, 20), "20 messages buffered")
    taken = await first.next_batch(timeout=5)
    for msg in taken:
        await msg.ack()
    await first.stop()  # the 10+ still buffered are nak'd, not held for the 60 s ack_wait
    second = stream.pull(batch=50)
    await second.start()
    try:
        again: list[int] = []
        deadline = time.monotonic() + 10
        while len(again) < 30 - len(taken) and time.monotonic() < deadline:
            for msg in await second.next_batch(timeout=1):
                again.append(int(msg.data))
                await msg.ack()
        assert sorted(again) == sorted(set(range(30)) - {int(m.data) for m in taken})
    finally:
        await second.stop()
