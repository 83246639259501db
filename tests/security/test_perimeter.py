"""Attacks on the REST perimeter with real sockets: bodies larger than the limit (chunked, so
no Content-Length gives them away), bodies sent with a bad key, slow clients, connection
floods; and what every answer carries (security headers, no-store, CORS)."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.identity import TenantFixture, new_tenant
from tests.support.processes import FulcrumProcess, start_api
from tests.support.stack import LiveStack

MB = 1 << 20


def rss_bytes(process: FulcrumProcess) -> int:
    """The API's resident memory: its supervisor's and every serving process's."""
    return sum(_rss_bytes(pid) for pid in process.pids())


def _rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def chunked_head(path: str, key: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def read_response(sock: socket.socket, data: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body (what the API sends), after the
    ``data`` of it already received."""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        if not part:
            raise ConnectionError(f"closed before a full response: {data!r}")
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        part = sock.recv(65536)
        if not part:
            raise ConnectionError("closed inside the body")
        body += part
    return status, headers, body[:length]


def closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass
        return True
    except (ConnectionError, OSError) as exc:
        return not isinstance(exc, TimeoutError)


@pytest.fixture(scope="module")
def tenant(stack: LiveStack) -> TenantFixture:
    return new_tenant(stack, "perimeter")


# --- item 1: the body limit counts bytes received, and nothing is read before auth ----------


def received(sock: socket.socket) -> bytes:
    """What the server has sent so far, without waiting (under TLS, writing on after the
    server's close breaks the connection before its answer can be read; TLS records that
    carry no data, such as session tickets, give nothing)."""
    timeout = sock.gettimeout()
    sock.settimeout(0.0)
    try:
        return sock.recv(65536)
    except (BlockingIOError, ssl.SSLWantReadError):
        return b""
    finally:
        sock.settimeout(timeout)


@pytest.mark.parametrize("path", ["/v1/decisions", "/v1/policies", "/v1/api-keys"])
def test_a_chunked_body_over_the_limit_is_refused_with_413(
    api: FulcrumProcess, tenant: TenantFixture, path: str
) -> None:
    with api.raw_socket() as sock:
        sock.sendall(chunked_head(path, tenant.owner_key))
        filler = b'{"x": "' + b"a" * (2 * MB) + b'"}'
        early = b""
        try:
            for start in range(0, len(filler), 64 * 1024):
                sock.sendall(chunk(filler[start : start + 64 * 1024]))
                if early := received(sock):
                    break  # the server answered before the whole body was sent
            else:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError):
            pass  # the server answered and closed while this chunk was on its way
        status, _, body = read_response(sock, early)
    assert status == 413, body
    assert b'"error"' in body


def test_a_bad_key_is_refused_before_the_body_is_read(api: FulcrumProcess) -> None:
    """Headers and one chunk of a body that never ends: the 401 must not wait for it."""
    with api.raw_socket(timeout=5) as sock:
        sock.sendall(chunked_head("/v1/decisions", "fk_nope"))
        sock.sendall(chunk(b'{"tool": {"name": "'))
        status, headers, body = read_response(sock)
    assert status == 401, body
    assert headers.get("connection") == "close"


def test_memory_stays_flat_under_huge_chunked_bodies_with_a_bad_key(api: FulcrumProcess) -> None:
    """Four 64 MB chunked bodies at once with an invalid key: the API's RSS barely moves."""
    before = rss_bytes(api)
    piece = chunk(b"7" * MB)

    def flood() -> None:
        with api.raw_socket(timeout=20) as sock:
            try:
                sock.sendall(chunked_head("/v1/decisions", "fk_nope"))
                for _ in range(64):
                    sock.sendall(piece)
                sock.sendall(b"0\r\n\r\n")
                read_response(sock)
            except (OSError, ConnectionError):
                pass  # answered and closed early: what should happen

    threads = [threading.Thread(target=flood) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    grown = rss_bytes(api) - before
    print(f"API RSS before {before / MB:.1f} MB, grew by {grown / MB:.1f} MB")
    assert grown < 32 * MB


# --- item 1: slow clients and connection floods ---------------------------------------------


@pytest.fixture(scope="module")
def guarded(stack: LiveStack) -> Iterator[FulcrumProcess]:
    process = start_api(
        stack,
        name="api-slow-clients",
        FULCRUM_HTTP_HEADER_TIMEOUT_SECONDS="1",
        FULCRUM_HTTP_BODY_IDLE_TIMEOUT_SECONDS="1",
        FULCRUM_HTTP_MAX_CONNECTIONS="24",
        # The connection bound is per process: one, so that the 25th connection meets it.
        FULCRUM_API_PROCESSES="1",
    )
    yield process
    process.stop()


def test_clients_trickling_headers_are_cut_off(guarded: FulcrumProcess) -> None:
    socks = [guarded.raw_socket(timeout=5) for _ in range(20)]
    try:
        for sock in socks:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        open_ = list(socks)
        while open_ and time.monotonic() - started < 4:
            for sock in list(open_):
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    open_.remove(sock)
            time.sleep(0.25)
        still_open = [s for s in socks if not closed_by_server(s, 0.5)]
        assert not still_open, f"{len(still_open)} of 20 trickling connections still open"
    finally:
        for sock in socks:
            sock.close()


def test_clients_that_never_finish_the_tls_handshake_are_cut_off(
    guarded: FulcrumProcess,
) -> None:
    """Plain TCP connections to the TLS ports that send nothing (no ClientHello)."""
    socks = [
        socket.create_connection(("127.0.0.1", port))
        for port in (guarded.http_port, guarded.grpc_port)
        for _ in range(10)
    ]
    try:
        started = time.monotonic()
        still_open = [s for s in socks if not closed_by_server(s, 3)]
        assert not still_open, f"{len(still_open)} of 20 silent connections still open"
        assert time.monotonic() - started < 5
    finally:
        for sock in socks:
            sock.close()


def test_a_stalled_body_is_answered_408(guarded: FulcrumProcess, tenant: TenantFixture) -> None:
    with guarded.raw_socket(timeout=5) as sock:
        sock.sendall(
            f"POST /v1/decisions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {tenant.owner_key}\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n".encode()
            + b'{"tool": '
        )
        status, _, body = read_response(sock)
    assert status == 408, body


def test_open_connections_are_bounded(guarded: FulcrumProcess) -> None:
    idle = [guarded.raw_socket(timeout=5) for _ in range(24)]
    try:
        with guarded.raw_socket(timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            status, _, _ = read_response(sock)
        assert status == 503
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with guarded.http() as client:
            if client.get("/healthz").status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError("the API did not recover once the connections closed")


def test_grpc_calls_in_flight_are_bounded(stack: LiveStack) -> None:
    """Health Watch streams stay open: with two allowed in flight, a third call is refused
    RESOURCE_EXHAUSTED until one of them ends."""
    process = start_api(stack, name="api-grpc-bound", FULCRUM_GRPC_MAX_CONCURRENT_RPCS="2")
    try:
        with process.channel() as channel:
            health = health_pb2_grpc.HealthStub(channel)
            watches = [health.Watch(health_pb2.HealthCheckRequest()) for _ in range(2)]
            for watch in watches:
                next(watch)  # both streams are open and hold their slot
            with pytest.raises(grpc.RpcError) as err:
                health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            watches[0].cancel()
            deadline = time.monotonic() + 5
            while True:
                try:
                    health.Check(health_pb2.HealthCheckRequest(), timeout=5)
                    break
                except grpc.RpcError:
                    assert time.monotonic() < deadline, "the freed slot was not reused"
                    time.sleep(0.1)
            watches[1].cancel()
    finally:
        process.stop()
