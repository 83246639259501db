"""NATS and Redis hold each service to what it needs: the permission matrices, attacked with
each service's own certificate.

The attacks: with the API's certificate, subscribe to ``fulcrum.>`` and read other tenants'
live decisions; purge the event stream while the worker is stopped, so answered decisions
never reach the ledger; list or flush Redis with any certificate of the CA.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio as aioredis
from nats.aio.client import Client as NatsClient
from nats.js.api import StreamConfig
from nats.js.errors import APIError

from fulcrum.events.streams import STREAM
from fulcrum.kit.config import Service
from fulcrum.kit.nats import connect_nats
from fulcrum.kit.redis import redis_client
from fulcrum.kit.tls import ClientTLS
from tests.support.stack import LiveStack

TENANT = uuid.uuid4()
CONSUMER = "fulcrum-ledger"

# action -> (api, worker) may. Written out by hand: a permission added or lost fails here.
PUBLISH: dict[str, tuple[bool, bool]] = {
    f"fulcrum.events.{TENANT}.decision": (True, False),
    f"fulcrum.events.{TENANT}.change": (False, True),
    f"fulcrum.anchors.{TENANT}": (False, True),
    "fulcrum.control.policies": (True, False),
    "fulcrum.anything.else": (False, False),
    f"$JS.API.STREAM.INFO.{STREAM}": (True, True),
    f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{CONSUMER}": (False, True),
    f"$JS.ACK.{STREAM}.{CONSUMER}.1.1.1.1.1": (False, True),
    f"$JS.API.STREAM.PURGE.{STREAM}": (False, False),
    f"$JS.API.STREAM.DELETE.{STREAM}": (False, False),
    f"$JS.API.STREAM.UPDATE.{STREAM}": (False, False),
    f"$JS.API.STREAM.MSG.DELETE.{STREAM}": (False, False),
    "$JS.API.STREAM.CREATE.ROGUE": (False, False),
    f"$JS.API.CONSUMER.CREATE.{STREAM}": (False, False),
    f"$JS.API.CONSUMER.DURABLE.CREATE.{STREAM}.rogue": (False, False),
    f"$JS.API.CONSUMER.DELETE.{STREAM}.{CONSUMER}": (False, False),
    "$JS.API.INFO": (False, False),
    "$JS.API.DIRECT.GET.FULCRUM_ANCHORS": (True, True),
}
SUBSCRIBE: dict[str, tuple[bool, bool]] = {
    "fulcrum.>": (False, False),
    "fulcrum.events.>": (False, False),
    f"fulcrum.events.{TENANT}.decision": (False, False),
    "fulcrum.control.policies": (True, False),
    "_INBOX.>": (False, False),
    "_INBOX_api.x": (True, False),
    "_INBOX_worker.x": (False, True),
    ">": (False, False),
}


class Violations:
    """Collects the server's permission violations for one connection."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, exc: Exception) -> None:
        self.seen.append(str(exc).lower())

    def about(self, subject: str) -> bool:
        return any(subject.lower() in seen for seen in self.seen)


async def connect(stack: LiveStack, service: Service, violations: Violations) -> NatsClient:
    nc = await connect_nats(stack.settings, service, retry=False, quiet=True)
    nc._error_cb = violations
    return nc


async def settled(nc: NatsClient) -> None:
    # The server answers -ERR before the PONG of a later PING, in order.
    await nc.flush(timeout=5)
    await asyncio.sleep(0.1)


@pytest.fixture
async def identities(
    stack: LiveStack,
) -> AsyncIterator[dict[Service, tuple[NatsClient, Violations]]]:
    made = {}
    for service in (Service.API, Service.WORKER):
        violations = Violations()
        made[service] = (await connect(stack, service, violations), violations)
    yield made
    for nc, _ in made.values():
        await nc.close()


@pytest.mark.parametrize("subject", sorted(PUBLISH))
async def test_nats_publish_matrix(
    identities: dict[Service, tuple[NatsClient, Violations]], subject: str
) -> None:
    for service, allowed in zip((Service.API, Service.WORKER), PUBLISH[subject], strict=True):
        nc, violations = identities[service]
        # Payloads the server ignores where they are allowed: an empty purge request would
        # purge, so destructive calls get nothing valid to act on even if allowed by mistake.
        await nc.publish(subject, b'{"invalid": ')
        await settled(nc)
        assert violations.about(subject) is not allowed, (service, subject, violations.seen)


@pytest.mark.parametrize("subject", sorted(SUBSCRIBE))
async def test_nats_subscribe_matrix(
    identities: dict[Service, tuple[NatsClient, Violations]], subject: str
) -> None:
    for service, allowed in zip((Service.API, Service.WORKER), SUBSCRIBE[subject], strict=True):
        nc, violations = identities[service]
        sub = await nc.subscribe(subject)
        await settled(nc)
        assert violations.about(subject) is not allowed, (service, subject, violations.seen)
        await sub.unsubscribe()


async def test_the_api_cannot_read_live_decisions_or_purge_the_stream(stack: LiveStack) -> None:
    violations = Violations()
    nc = await connect(stack, Service.API, violations)
    try:
        received: list[bytes] = []

        async def keep(msg) -> None:  # type: ignore[no-untyped-def]
            received.append(msg.data)

        await nc.subscribe("fulcrum.>", cb=keep)
        await settled(nc)
        admin = await connect_nats(stack.settings, Service.ADMIN, retry=False)
        try:
            await admin.publish(f"fulcrum.events.{uuid.uuid4()}.decision", b"secret")
            await admin.flush()
        finally:
            await admin.close()
        await asyncio.sleep(0.3)
        assert received == []
        with pytest.raises(Exception):  # noqa: B017 - a timeout: the server drops the request
            await nc.jetstream().purge_stream(STREAM)
        assert violations.about(f"$JS.API.STREAM.PURGE.{STREAM}")
    finally:
        await nc.close()


async def test_the_stream_refuses_purges_and_deletes_even_from_operators(
    stack: LiveStack,
) -> None:
    nc = await connect_nats(stack.settings, Service.ADMIN, retry=False)
    try:
        js = nc.jetstream()
        info = await js.stream_info(STREAM)
        assert info.config.deny_purge and info.config.deny_delete
        ack = await js.publish(f"fulcrum.events.{uuid.uuid4()}.decision", b"keep me")
        with pytest.raises(APIError):
            await js.purge_stream(STREAM)
        with pytest.raises(APIError):
            await js.delete_msg(STREAM, ack.seq)
        assert (await js.stream_info(STREAM)).state.messages >= 1
    finally:
        await nc.close()


async def test_operators_manage_streams(stack: LiveStack) -> None:
    nc = await connect_nats(stack.settings, Service.ADMIN, retry=False)
    try:
        js = nc.jetstream()
        name = f"SCRATCH_{uuid.uuid4().hex[:8].upper()}"
        await js.add_stream(StreamConfig(name=name, subjects=[f"scratch.{name}"]))
        assert await js.delete_stream(name)
    finally:
        await nc.close()


# --- Redis ----------------------------------------------------------------------------

ALLOWED_TO_API = [("PING",), ("HSET", "rl:probe", "tokens", "1"), ("HMGET", "rl:probe", "x")]
REFUSED_TO_API = [
    ("KEYS", "*"),
    ("GET", "rl:probe"),
    ("SET", "other:key", "1"),
    ("HSET", "other:key", "a", "1"),
    ("FLUSHALL",),
    ("CONFIG", "GET", "*"),
    ("ACL", "LIST"),
    ("EVAL", "return 1", "0"),
    ("SUBSCRIBE", "x"),
    ("SCRIPT", "FLUSH"),
]


@pytest.fixture
async def api_redis(stack: LiveStack) -> AsyncIterator[aioredis.Redis]:
    client = redis_client(stack.settings, Service.API, timeout=3)
    yield client
    await client.aclose()


@pytest.mark.parametrize("command", ALLOWED_TO_API)
async def test_redis_api_user_may(api_redis: aioredis.Redis, command: tuple[str, ...]) -> None:
    await api_redis.execute_command(*command)


@pytest.mark.parametrize("command", REFUSED_TO_API)
async def test_redis_api_user_may_not(api_redis: aioredis.Redis, command: tuple[str, ...]) -> None:
    with pytest.raises(redis.exceptions.NoPermissionError):
        await api_redis.execute_command(*command)


def _tls_only(stack: LiveStack, service: Service) -> redis.Redis:
    tls = ClientTLS.for_service(stack.settings, service)
    return redis.Redis(
        host="127.0.0.1",
        port=stack.settings.redis_port,
        socket_timeout=3,
        ssl=True,
        ssl_ca_certs=str(tls.ca_file),
        ssl_certfile=str(tls.cert_file),
        ssl_keyfile=str(tls.key_file),
    )


@pytest.mark.parametrize("service", [Service.API, Service.WORKER, Service.ADMIN])
def test_redis_default_user_is_off_for_every_certificate(
    stack: LiveStack, service: Service
) -> None:
    with _tls_only(stack, service) as client, pytest.raises(redis.exceptions.AuthenticationError):
        client.execute_command("ACL", "LIST")


def test_redis_the_worker_has_no_user(stack: LiveStack) -> None:
    with (
        _tls_only(stack, Service.WORKER) as client,
        pytest.raises(redis.exceptions.AuthenticationError),
    ):
        client.execute_command("AUTH", "fulcrum-worker", "anything")


async def test_redis_operators_may_inspect(stack: LiveStack) -> None:
    client = redis_client(stack.settings, Service.ADMIN, timeout=3)
    try:
        users = await client.execute_command("ACL", "USERS")
        assert {u.decode() for u in users} == {"default", "fulcrum-api", "fulcrum-admin"}
    finally:
        await client.aclose()
