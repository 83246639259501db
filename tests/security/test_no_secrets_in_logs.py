"""Secrets planted in headers, query strings, bodies, gRPC metadata and in a request that
fails on a dead database appear in no line any Fulcrum process wrote."""

from __future__ import annotations

import contextlib
import io
import json
import logging

import grpc
import structlog

from fulcrum.kit.logging import configure_logging, get_logger
from fulcrum.pb.v1 import members_pb2, members_pb2_grpc
from tests.support.identity import new_tenant
from tests.support.processes import start_api
from tests.support.stack import LiveStack

PASSWORD = "hunter2-correct-horse-battery"
FAKE_KEY = "fk_0123456789abcdef0123_" + "Z" * 43
UNSEEN_KEY = "fk_99999999999999999999_" + "Q" * 43  # never cached: needs a database lookup
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyX3BsYW50ZWQifQ.c2lnbmF0dXJlLXBsYW50ZWQ"


def planted(owner_key: str) -> list[str]:
    return [owner_key, owner_key.split("_", 2)[2], PASSWORD, FAKE_KEY, UNSEEN_KEY, JWT]


def test_no_planted_secret_reaches_any_log_line(stack: LiveStack) -> None:
    tenant = new_tenant(stack, "logs")
    api = start_api(stack, name="api-logs", FULCRUM_LOG_LEVEL="debug")
    try:
        auth = {"authorization": f"Bearer {tenant.owner_key}"}
        with api.http(timeout=15) as client:
            client.get("/v1/members", headers=auth)
            client.get(
                f"/v1/api-keys?api_key={FAKE_KEY}&token={JWT}&password={PASSWORD}",
                headers={**auth, "x-api-key": FAKE_KEY, "cookie": f"session={JWT}"},
            )
            client.post(
                "/v1/api-keys",
                headers=auth,
                json={"name": FAKE_KEY, "scopes": ["keys:read"], "password": PASSWORD},
            )
            client.post("/v1/members", headers={"authorization": f"Bearer {JWT}"}, json={})
            client.post(
                "/v1/policies",
                headers=auth,
                content=f"name: x\nrules: [{{password: {PASSWORD}}}]".encode(),
            )
        with api.channel() as channel:
            stub = members_pb2_grpc.MemberServiceStub(channel)
            for credential in (tenant.owner_key, FAKE_KEY, JWT):
                with contextlib.suppress(grpc.RpcError):
                    stub.AddMember(
                        members_pb2.AddMemberRequest(external_user_id=PASSWORD, role="viewer"),
                        metadata=(("authorization", f"Bearer {credential}"),),
                        timeout=10,
                    )
        # A request that fails inside the server: the database is gone mid-flight.
        stack.devstack.postgres.stop()
        try:
            with api.http(timeout=30) as client:
                failed = client.get(
                    f"/v1/api-keys?token={JWT}",
                    headers={"authorization": f"Bearer {UNSEEN_KEY}"},
                )
            assert failed.status_code == 503
            assert failed.json()["error"]["message"].startswith("postgresql is unavailable")
        finally:
            stack.devstack.postgres.start()
    finally:
        api.stop()
    text = api.log_text()
    lines = [line for line in text.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert any(r.get("route") == "/v1/api-keys" for r in records)
    # A known outage is logged as one warning, without a traceback (item 10 of issue 10).
    assert any("dependency_unavailable" in line for line in lines)
    assert not any("Traceback" in line for line in lines)
    for line in lines:
        for secret in planted(tenant.owner_key):
            assert secret not in line, line


def test_exceptions_and_tracebacks_are_redacted() -> None:
    """The same processors run for structlog and for standard-library loggers (uvicorn,
    grpc, psycopg), including their exception text and tracebacks."""
    stream = io.StringIO()
    configure_logging("test", "debug")
    root = logging.getLogger()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    try:
        raise RuntimeError(f"connect failed: postgresql://app:{PASSWORD}@db token={JWT} {FAKE_KEY}")
    except RuntimeError as exc:
        get_logger("test").error("boom", exc_info=exc, api_key=FAKE_KEY, password=PASSWORD)
        logging.getLogger("uvicorn.error").exception("foreign %s", FAKE_KEY)
    structlog.reset_defaults()
    output = stream.getvalue()
    records = [json.loads(line) for line in output.splitlines()]
    assert len(records) == 2
    assert all("Traceback" in r["exception"] for r in records)
    for secret in (PASSWORD, JWT, FAKE_KEY):
        assert secret not in output
