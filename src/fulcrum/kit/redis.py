"""Redis clients with the service's client certificate and its own ACL user.

Redis sits on the request path (rate limits), so a failing Redis must fail fast: short
timeouts and a single quick retry, after which callers fall back (see fulcrum.ratelimit).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import NoScriptError, ResponseError

from fulcrum.kit.config import Service, Settings
from fulcrum.kit.secrets import Secrets
from fulcrum.kit.tls import ClientTLS


def redis_user(service: Service) -> str:
    """The Redis ACL user of ``service`` (the devstack's ACL and the clients agree on it)."""
    return f"fulcrum-{service.value}"


def redis_auth(settings: Settings, service: Service) -> dict[str, str]:
    """Username and password for ``service``, when its ``redis_password`` secret exists."""
    secret = Secrets(settings, service).source("redis_password")
    if secret is None:
        return {}
    return {"username": redis_user(service), "password": secret.get().decode()}


def redis_client(
    settings: Settings, service: Service, *, timeout: float = 0.5, max_connections: int = 8
) -> aioredis.Redis:
    """A client whose pool holds at most ``max_connections``; a command finding all of
    them busy fails at once, as an unreachable Redis does (the rate limiter then limits
    locally for a moment). Bounded because each new TLS connection builds its own SSL
    context, loading the system's CA store on the event loop (tens of milliseconds): a
    burst of requests must not open one connection each. The API needs about one at a
    time: the rate limiter sends the checks of concurrent requests together
    (:class:`CoalescedScript`), one batch after another. (A blocking pool would wait
    instead, at the cost of a task per command.)"""
    options: dict[str, Any] = {
        "host": settings.redis_host,
        "port": settings.redis_port,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
        **redis_auth(settings, service),
    }
    connection: type[aioredis.Connection] = aioredis.Connection
    if settings.tls:
        tls = ClientTLS.for_service(settings, service)
        connection = aioredis.SSLConnection
        options |= {
            "ssl_ca_certs": str(tls.ca_file),
            "ssl_certfile": str(tls.cert_file),
            "ssl_keyfile": str(tls.key_file),
            "ssl_cert_reqs": "required",
        }
    pool = aioredis.ConnectionPool(
        connection_class=connection, max_connections=max_connections, **options
    )
    return aioredis.Redis.from_pool(pool)


class CoalescedScript:
    """A Lua script called by many concurrent callers, sent as one pipeline per round trip.

    Each call joins the batch that is waiting; one task sends the whole batch as a pipeline
    of EVALSHA commands (no MULTI: each script is atomic by itself, and Redis runs them in
    order, so the results are exactly those of separate calls) and hands each caller its
    own result. While a batch is in flight the next one gathers, so under load a round trip
    carries every call that arrived during the previous one, and an idle caller waits for
    nobody. A script Redis lost (a restart, SCRIPT FLUSH) is loaded again and the calls it
    refused are sent again: a refused EVALSHA ran nothing.

    A call raises what redis-py raises for its command, or for the whole pipeline when the
    connection fails.
    """

    def __init__(self, redis: aioredis.Redis, source: str) -> None:
        self._redis = redis
        self._source = source
        self._sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
        self._waiting: list[tuple[Sequence[str], Sequence[Any], asyncio.Future[Any]]] = []
        self._sender: asyncio.Task[None] | None = None
        self.round_trips = 0  # for tests and benchmarks: pipelines sent

    async def __call__(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        result: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((keys, args, result))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_batches())
        return await result

    async def _send_batches(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    await self._send(batch)
                except Exception as exc:  # the pipeline failed as a whole: every caller hears it
                    for _, _, result in batch:
                        if not result.done():
                            result.set_exception(exc)
                except asyncio.CancelledError:  # shutting down: nobody is left waiting forever
                    for _, _, result in [*batch, *self._waiting]:
                        result.cancel()
                    raise
        finally:
            self._sender = None

    async def _send(
        self, batch: list[tuple[Sequence[str], Sequence[Any], asyncio.Future[Any]]]
    ) -> None:
        pending = batch
        for attempt in range(2):
            self.round_trips += 1
            replies = await self._replies(pending)
            lost = []
            for call, reply in zip(pending, replies, strict=True):
                result = call[2]
                if isinstance(reply, NoScriptError) and attempt == 0:
                    lost.append(call)
                elif result.done():
                    continue  # its caller gave up (cancelled); the script ran all the same
                elif isinstance(reply, Exception):
                    result.set_exception(reply)
                else:
                    result.set_result(reply)
            if not lost:
                return
            self._sha = await self._redis.script_load(self._source)
            pending = lost

    async def _replies(
        self, calls: list[tuple[Sequence[str], Sequence[Any], asyncio.Future[Any]]]
    ) -> list[Any]:
        """Each call's reply, or the error Redis answered it with, in one round trip."""
        if len(calls) == 1:  # alone (an idle API): one command costs less than a pipeline
            keys, args, _ = calls[0]
            try:
                return [await self._redis.evalsha(self._sha, len(keys), *keys, *args)]
            except ResponseError as exc:  # as a pipeline hands it back
                return [exc]
        pipe = self._redis.pipeline(transaction=False)
        for keys, args, _ in calls:
            pipe.evalsha(self._sha, len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))
