"""Every data store refuses clients without a certificate from our CA; ours connect."""

from __future__ import annotations

import ssl
from pathlib import Path

import nats
import psycopg
import pytest
import redis

from fulcrum.devstack.certs import SERVICE_CERTS, create_ca, issue
from fulcrum.events.streams import STREAM
from fulcrum.kit.config import Service
from fulcrum.kit.db import conninfo
from fulcrum.kit.nats import connect_nats
from fulcrum.kit.redis import redis_client
from tests.support.stack import LiveStack


@pytest.fixture(scope="module")
def rogue_certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A client certificate with the right name, signed by a CA the servers do not trust."""
    from cryptography.hazmat.primitives import serialization

    out = tmp_path_factory.mktemp("rogue")
    ca_cert, ca_key = create_ca("Rogue CA")
    spec = next(s for s in SERVICE_CERTS if s.name == "api")
    cert, key = issue(spec, ca_cert, ca_key)
    (out / "client.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (out / "client.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return {"cert": out / "client.crt", "key": out / "client.key"}


# --- PostgreSQL ---------------------------------------------------------------------


def _pg(stack: LiveStack, **params: str) -> psycopg.Connection:
    s = stack.settings
    return psycopg.connect(
        host="127.0.0.1",
        port=s.database_port,
        dbname=s.database_name,
        user="fulcrum_api",
        connect_timeout=5,
        **params,
    )


def test_postgres_accepts_the_api_certificate(stack: LiveStack) -> None:
    with psycopg.connect(conninfo(stack.settings, Service.API)) as conn:
        row = conn.execute("SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert row.fetchone() == ("fulcrum_api", True)


def test_postgres_refuses_plaintext(stack: LiveStack) -> None:
    with pytest.raises(psycopg.OperationalError, match=r"pg_hba\.conf|no encryption"):
        _pg(stack, sslmode="disable")


def test_postgres_refuses_tls_without_certificate(stack: LiveStack) -> None:
    with pytest.raises(psycopg.OperationalError, match="certificate"):
        _pg(stack, sslmode="verify-full", sslrootcert=str(stack.settings.ca_file()))


def test_postgres_refuses_certificate_from_another_ca(
    stack: LiveStack, rogue_certs: dict[str, Path]
) -> None:
    with pytest.raises(psycopg.OperationalError):
        _pg(
            stack,
            sslmode="verify-full",
            sslrootcert=str(stack.settings.ca_file()),
            sslcert=str(rogue_certs["cert"]),
            sslkey=str(rogue_certs["key"]),
        )


@pytest.mark.parametrize("role", ["fulcrum_owner", "fulcrum_worker", "fulcrum_app", "postgres"])
def test_postgres_api_certificate_cannot_claim_another_role(stack: LiveStack, role: str) -> None:
    """The API's certificate maps to fulcrum_api only: never to the worker (which writes the
    ledger), the owner or the superuser."""
    s = stack.settings
    with pytest.raises(psycopg.OperationalError, match="certificate authentication failed"):
        psycopg.connect(
            host="127.0.0.1",
            port=s.database_port,
            dbname=s.database_name,
            user=role,
            sslmode="verify-full",
            sslrootcert=str(s.ca_file()),
            sslcert=str(s.cert_file("api")),
            sslkey=str(s.key_file("api")),
            connect_timeout=5,
        )


# --- Redis --------------------------------------------------------------------------


def _redis(stack: LiveStack, **params: object) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=stack.settings.redis_port, socket_timeout=3, **params)


async def test_redis_accepts_the_api_certificate(stack: LiveStack) -> None:
    client = redis_client(stack.settings, Service.API)
    try:
        assert await client.ping()
    finally:
        await client.aclose()


def test_redis_refuses_plaintext(stack: LiveStack) -> None:
    with pytest.raises(redis.ConnectionError), _redis(stack) as client:
        client.ping()


def test_redis_refuses_tls_without_certificate(stack: LiveStack) -> None:
    with (
        pytest.raises(redis.ConnectionError),
        _redis(stack, ssl=True, ssl_ca_certs=str(stack.settings.ca_file())) as client,
    ):
        client.ping()


def test_redis_refuses_certificate_from_another_ca(
    stack: LiveStack, rogue_certs: dict[str, Path]
) -> None:
    with (
        pytest.raises(redis.ConnectionError),
        _redis(
            stack,
            ssl=True,
            ssl_ca_certs=str(stack.settings.ca_file()),
            ssl_certfile=str(rogue_certs["cert"]),
            ssl_keyfile=str(rogue_certs["key"]),
        ) as client,
    ):
        client.ping()


# --- NATS ---------------------------------------------------------------------------


async def _nats_refused(url: str, tls: ssl.SSLContext | None) -> None:
    with pytest.raises(Exception):  # noqa: B017 - nats-py raises several types for a refusal
        nc = await nats.connect(
            servers=[url],
            tls=tls,
            connect_timeout=3,
            allow_reconnect=False,
            max_reconnect_attempts=0,
        )
        await nc.jetstream().account_info()


async def test_nats_accepts_the_worker_certificate(stack: LiveStack) -> None:
    nc = await connect_nats(stack.settings, Service.WORKER, retry=False)
    try:
        info = await nc.jetstream().stream_info(STREAM)
        assert info.config.name == STREAM
    finally:
        await nc.close()


async def test_nats_refuses_plaintext(stack: LiveStack) -> None:
    await _nats_refused(f"nats://127.0.0.1:{stack.settings.nats_port}", None)


async def test_nats_refuses_tls_without_certificate(stack: LiveStack) -> None:
    ctx = ssl.create_default_context(cafile=str(stack.settings.ca_file()))
    await _nats_refused(stack.settings.nats_url, ctx)


async def test_nats_refuses_certificate_from_another_ca(
    stack: LiveStack, rogue_certs: dict[str, Path]
) -> None:
    ctx = ssl.create_default_context(cafile=str(stack.settings.ca_file()))
    ctx.load_cert_chain(str(rogue_certs["cert"]), str(rogue_certs["key"]))
    await _nats_refused(stack.settings.nats_url, ctx)
