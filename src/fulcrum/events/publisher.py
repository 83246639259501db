"""Publishing events with bounded in-flight and audit-before-answer.

Each event is published with its id as ``Nats-Msg-Id`` and awaited until JetStream has
stored it; events of concurrent requests (and of one batch) are in flight together on one
connection, so the cost is one round trip, not one per event. The number of events in
flight is bounded: past the bound the caller is refused at once (the API answers
RESOURCE_EXHAUSTED) instead of queueing without limit. When NATS is not connected the
caller is refused before anything is sent, so that refused decision is never recorded. A
publish interrupted by a disconnect is retried under the same id until ``retry_budget``
runs out; JetStream's duplicate window stores it once.

Once events were sent, a failure is not proof that nothing was stored: the server may have
stored an event whose acknowledgement was lost, and nats-py flushes publishes it buffered
during a reconnect. ``publish`` then raises :class:`Unconfirmed`, naming every event of
the call, so the caller can record that those decisions were not answered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js.errors import APIError, ServiceUnavailableError

from fulcrum.events.envelope import OutgoingEvent
from fulcrum.kit.errors import FulcrumError, Overloaded, Unavailable
from fulcrum.kit.logging import get_logger
from fulcrum.observability.metrics import EVENT_PUBLISH_INFLIGHT, EVENT_PUBLISH_REFUSED

log = get_logger(__name__)


class EventPathSaturated(Overloaded):
    """Too many events in flight: shed load now rather than queue without bound."""


class Unconfirmed(Exception):
    """Events were sent, but not all were confirmed stored: any of them may be in the stream.

    ``refusal`` is what to answer the caller; ``msg_ids`` are all the events of the call."""

    def __init__(self, refusal: FulcrumError, msg_ids: Sequence[str]) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal
        self.msg_ids = list(msg_ids)


class EventPublisher:
    def __init__(
        self,
        nats: Callable[[], NatsClient | None],
        *,
        max_inflight: int = 2048,
        ack_timeout: float = 2.0,
        retry_budget: float = 10.0,
    ) -> None:
        self._nats = nats
        self._max_inflight = max_inflight
        self._ack_timeout = ack_timeout
        self._retry_budget = retry_budget
        self._inflight = 0

    @property
    def inflight(self) -> int:
        return self._inflight

    async def publish(self, events: Sequence[OutgoingEvent]) -> None:
        """Return once JetStream stored every event; raise when that cannot be promised:
        ``Unavailable`` or ``EventPathSaturated`` before anything was sent, ``Unconfirmed``
        after."""
        client = self._nats()
        if client is None or not client.is_connected:
            EVENT_PUBLISH_REFUSED.labels(reason="disconnected").inc(len(events))
            raise Unavailable("the event path (NATS) is unavailable; the decision was not made")
        if self._inflight + len(events) > self._max_inflight:
            EVENT_PUBLISH_REFUSED.labels(reason="saturated").inc(len(events))
            raise EventPathSaturated(
                "the event path is saturated; retry shortly (the decision was not made)"
            )
        self._inflight += len(events)
        EVENT_PUBLISH_INFLIGHT.set(self._inflight)
        try:
            deadline = time.monotonic() + self._retry_budget
            # Every event runs its course, so none is still being retried once this returns.
            outcomes = await asyncio.gather(
                *(self._store(client, event, deadline) for event in events),
                return_exceptions=True,
            )
        finally:
            self._inflight -= len(events)
            EVENT_PUBLISH_INFLIGHT.set(self._inflight)
        failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if failures:
            refusal = next((f for f in failures if isinstance(f, FulcrumError)), None)
            raise Unconfirmed(
                refusal or Unavailable("the event path failed before confirming the record"),
                [event.msg_id for event in events],
            ) from failures[0]

    async def _store(self, client: NatsClient, event: OutgoingEvent, deadline: float) -> None:
        js = client.jetstream()
        headers = {"Nats-Msg-Id": event.msg_id}
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                EVENT_PUBLISH_REFUSED.labels(reason="timeout").inc()
                raise Unavailable("the event path did not confirm the record in time")
            try:
                await js.publish(
                    event.subject,
                    event.data,
                    timeout=min(self._ack_timeout, remaining),
                    headers=headers,
                )
                return
            except APIError as exc:
                if not isinstance(exc, ServiceUnavailableError):
                    # A definite refusal (e.g. the stream is full): nothing was stored.
                    EVENT_PUBLISH_REFUSED.labels(reason="rejected").inc()
                    raise EventPathSaturated(
                        "the event stream refused the record; retry shortly "
                        "(the decision was not made)"
                    ) from exc
                log.warning("events.publish_retry", error=type(exc).__name__)
                await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            except (TimeoutError, NatsError, OSError) as exc:
                log.warning("events.publish_retry", error=type(exc).__name__)
                await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
