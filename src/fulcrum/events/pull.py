"""A continuous pull consumer for a durable JetStream consumer, on core NATS subscriptions.

Why not ``PullSubscription.fetch()``: nats-py hands each fetched message over through
``Subscription.next_msg``, which costs an asyncio task, a ``wait_for`` timer and a uuid4
per message (about 33 µs of client CPU, measured). Here the replies arrive through one
callback subscription (about 10 µs a message) and ``next_batch`` arms at most one timer
per batch. The ledger worker must ingest 20,000 events/s on two cores, so this matters.

The wire protocol is the one ``fetch`` speaks: a pull request is a publish to
``$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`` with ``{"batch", "expires"}`` and a
reply subject; the server answers on that subject with stream messages (ack, nak, term
and metadata work as usual) or a status message ending the request.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.js.api import Header, StatusCode
from nats.js.client import JetStreamContext

from fulcrum.kit.logging import get_logger

log = get_logger(__name__)

# A request the server lost (a NATS restart forgets pull requests and never answers them)
# is given up on this long after it should have expired on the server.
_DEADLINE_GRACE = 1.0

_REQUEST_ENDED = (StatusCode.REQUEST_TIMEOUT, StatusCode.NO_MESSAGES)


class ContinuousPull:
    """Keeps a pull request in flight so messages are already buffered when asked for.

    One request at a time, for what fits: whenever at most ``batch`` messages are
    buffered and no request is live, it asks for ``2 * batch - buffered``. So at most
    ``2 * batch`` messages are buffered or requested (the server only sends what was
    requested), and the next batch is on its way while the caller works on this one.

    Why one request and not several: the server hands messages to a consumer's waiting
    requests round robin, and a stream message arrives on its own subject, not on the
    request's reply subject, so with several requests in flight nobody can tell which
    of them is complete (a complete request gets no reply of its own). A single request
    loses nothing: while it is unfilled, every message available is going to it anyway.

    Each request still has its own reply subject, so a late status for a request already
    given up on (its client deadline passed, say after a reconnect) ends nothing. Data
    messages that such a request still receives are buffered all the same: they were
    delivered, and dropping them would only hold them back until ``ack_wait`` runs out.
    They count against the live request, which then ends early: the bound can be
    exceeded by what such a request receives, but nothing is lost or stalled.

    Messages are acknowledged by the caller. Messages still buffered at ``stop`` are
    never acknowledged, so JetStream redelivers them after ``ack_wait``.
    """

    def __init__(
        self,
        nc: NatsClient,
        *,
        stream: str,
        consumer: str,
        batch: int,
        expires: float = 5.0,
        api_prefix: str = "$JS.API",
    ) -> None:
        if batch < 1 or expires <= 0:
            raise ValueError("batch must be at least 1 and expires positive")
        self._nc = nc
        self._batch = batch
        self._expires = expires
        self._expires_ns = int(expires * 1_000_000_000)
        self._next_subject = f"{api_prefix}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._inbox = nc.new_inbox()
        self._sub: Subscription | None = None
        self._sent = 0
        # The live request: its reply subject, messages still to come, client deadline.
        self._live: str | None = None
        self._remaining = 0
        self._deadline = 0.0
        self._reconnects = nc.stats["reconnects"]  # a change means requests were lost
        self._buffer: deque[Msg] = deque()
        self._ready = asyncio.Event()  # set while the buffer is not empty

    @property
    def buffered(self) -> int:
        """Messages delivered to this client and not yet returned by ``next_batch``."""
        return len(self._buffer)

    @property
    def outstanding(self) -> int:
        """Messages requested from the server and not yet delivered."""
        return self._remaining if self._live is not None else 0

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(
            f"{self._inbox}.*",
            cb=self._on_message,
            # Well above what is ever requested, so nats-py never drops a reply as a slow
            # consumer; the real bound is the 2 * batch requested.
            pending_msgs_limit=4 * self._batch + 1000,
            pending_bytes_limit=256 * 1024 * 1024,
        )
        await self._top_up()

    async def stop(self) -> None:
        """Stop pulling; what was delivered and never returned is handed back at once
        (nak) rather than held until ``ack_wait`` runs out."""
        sub, self._sub = self._sub, None
        if sub is not None:
            await sub.unsubscribe()
        self._live = None
        buffered, self._buffer = self._buffer, deque()
        self._ready.clear()
        for msg in buffered:
            try:
                await msg.nak()
            except NatsError:
                break  # NATS is gone: JetStream redelivers after ack_wait anyway

    # The timeout is not a cancellation deadline (asyncio.timeout) but how long to wait
    # for a first message before answering with an empty batch.
    async def next_batch(self, timeout: float) -> list[Msg]:  # noqa: ASYNC109
        """Up to ``batch`` messages once at least one is there; ``[]`` after ``timeout``.

        Returns what is buffered without waiting for a batch to fill: low latency at
        low traffic, full batches under load.
        """
        if self._sub is None:
            raise RuntimeError("ContinuousPull.next_batch before start")
        # Also how a request lost to a NATS restart, or refused, is replaced.
        await self._top_up()
        if not self._buffer:
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return []
        messages = [self._buffer.popleft() for _ in range(min(self._batch, len(self._buffer)))]
        if not self._buffer:
            self._ready.clear()
        await self._top_up()
        return messages

    async def _on_message(self, msg: Msg) -> None:
        # Stream messages carry their $JS.ACK reply subject; only status messages have none
        # (a stream message's own "Status" header must not pass for one).
        status = None if msg.reply else JetStreamContext.is_status_msg(msg)
        if status is None:
            self._buffer.append(msg)
            self._ready.set()
            if self._live is not None:
                self._remaining -= 1
                if self._remaining == 0:
                    # A complete request gets no status message: this is its end.
                    self._live = None
                    await self._top_up()
            return
        if status == StatusCode.CONTROL_MESSAGE:
            return
        ended = msg.subject == self._live
        if ended:
            self._live = None
        if status in _REQUEST_ENDED:
            if ended:
                # Replace it now, so a caller's long next_batch timeout does not leave
                # the consumer without a request.
                await self._top_up()
        else:
            # 409 (consumer deleted, leadership change, a limit exceeded) or 503 (no
            # JetStream). Not replaced from here, as that could loop as fast as the
            # server refuses; the next next_batch call retries.
            log.warning(
                "pull.request_refused",
                status=status,
                description=msg.headers.get(Header.DESCRIPTION, "") if msg.headers else "",
                subject=self._next_subject,
            )

    async def _top_up(self) -> None:
        if self._sub is None:
            return
        now = asyncio.get_running_loop().time()
        reconnects = self._nc.stats["reconnects"]
        if self._live is not None and (now > self._deadline or reconnects != self._reconnects):
            # Expired on the server long ago, or lost with the connection it was sent on.
            self._live = None
        self._reconnects = reconnects
        if self._live is not None or len(self._buffer) > self._batch:
            return
        self._sent += 1
        reply = f"{self._inbox}.{self._sent}"
        wanted = 2 * self._batch - len(self._buffer)
        # Live before the publish, which may yield, so a concurrent top up sees it.
        self._live, self._remaining = reply, wanted
        self._deadline = now + self._expires + _DEADLINE_GRACE
        payload = json.dumps({"batch": wanted, "expires": self._expires_ns}).encode()
        try:
            await self._nc.publish(self._next_subject, payload, reply=reply)
        except NatsError as exc:
            if self._live == reply:
                self._live = None
            log.warning("pull.request_failed", error=type(exc).__name__, detail=str(exc))
