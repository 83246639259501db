"""The API's ports speak TLS by default, reload their certificate, and refuse plaintext in
production unless a TLS-terminating proxy is declared; what every REST answer carries."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fulcrum.devstack.certs import CertSpec, issue
from tests.support.identity import TenantFixture, new_tenant
from tests.support.processes import FulcrumProcess, start_api
from tests.support.stack import LiveStack, free_port

DASHBOARD = "https://dashboard.example"


@pytest.fixture(scope="module")
def tenant(stack: LiveStack) -> TenantFixture:
    return new_tenant(stack, "tlsheaders")


def server_certificate(port: int, ca_file: Path, *, alpn: str | None = None) -> x509.Certificate:
    """The certificate a port presents, verified against ``ca_file``."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    if alpn:
        ctx.set_alpn_protocols([alpn])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
    ):
        der = sock.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def test_both_api_ports_speak_tls_with_the_api_certificate(
    stack: LiveStack, api: FulcrumProcess
) -> None:
    ca = stack.settings.ca_file()
    for port, alpn in ((api.http_port, None), (api.grpc_port, "h2")):
        cert = server_certificate(port, ca, alpn=alpn)
        names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        assert names[0].value == "fulcrum-api"
    credentials = grpc.ssl_channel_credentials(root_certificates=ca.read_bytes())
    with grpc.secure_channel(api.grpc_target, credentials) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{api.http_port}/healthz", timeout=5)


def write_api_cert(stack: LiveStack, directory: Path) -> int:
    """A fresh api certificate from the stack's CA into ``directory``; returns its serial."""
    certs = stack.settings.resolved_certs_dir
    ca_cert = x509.load_pem_x509_certificate((certs / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((certs / "ca.key").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    cert, key = issue(CertSpec("api", server=True, client=True), ca_cert, ca_key)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (directory / "tls.key.new").write_bytes(key_pem)
    (directory / "tls.crt.new").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "tls.key.new").replace(directory / "tls.key")
    (directory / "tls.crt.new").replace(directory / "tls.crt")
    return cert.serial_number


def test_a_renewed_certificate_is_served_without_a_restart(
    stack: LiveStack, tmp_path: Path
) -> None:
    first = write_api_cert(stack, tmp_path)
    ca = stack.settings.ca_file()
    process = start_api(
        stack,
        name="api-reload",
        FULCRUM_API_TLS_CERT_FILE=str(tmp_path / "tls.crt"),
        FULCRUM_API_TLS_KEY_FILE=str(tmp_path / "tls.key"),
        FULCRUM_API_TLS_RELOAD_SECONDS="0.2",
    )
    try:
        assert server_certificate(process.http_port, ca).serial_number == first
        assert server_certificate(process.grpc_port, ca, alpn="h2").serial_number == first
        second = write_api_cert(stack, tmp_path)
        deadline = time.monotonic() + 10
        served: tuple[int, int] = (0, 0)
        while time.monotonic() < deadline:
            served = (
                server_certificate(process.http_port, ca).serial_number,
                server_certificate(process.grpc_port, ca, alpn="h2").serial_number,
            )
            if served == (second, second):
                break
            time.sleep(0.2)
        assert served == (second, second)
        with process.http() as client:
            assert client.get("/healthz").status_code == 200
    finally:
        process.stop()


def production_env(stack: LiveStack, tmp_path: Path, **extra: str) -> dict[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    pem = tmp_path / "clerk.pem"
    pem.write_bytes(
        key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return {
        "FULCRUM_ENV": "production",
        "FULCRUM_CLERK_ISSUER": "https://clerk.example",
        "FULCRUM_CLERK_PUBLIC_KEY_FILE": str(pem),
        **extra,
    }


def test_production_refuses_to_serve_plaintext_without_a_declared_proxy(
    stack: LiveStack, tmp_path: Path
) -> None:
    env = stack.process_env(
        FULCRUM_HTTP_PORT=str(free_port()),
        FULCRUM_GRPC_PORT=str(free_port()),
        FULCRUM_METRICS_PORT=str(free_port()),
        **production_env(stack, tmp_path),
    )
    try:
        done = subprocess.run(
            [sys.executable, "-m", "fulcrum.cli", "api"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the API started in production with no TLS certificate configured")
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "FULCRUM_API_TLS_CERT_FILE" in said
    assert "FULCRUM_API_TLS_TERMINATED_UPSTREAM" in said


@pytest.fixture(scope="module")
def production(
    stack: LiveStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FulcrumProcess]:
    env = production_env(
        stack, tmp_path_factory.mktemp("prod"), FULCRUM_API_TLS_TERMINATED_UPSTREAM="true"
    )
    process = start_api(stack, name="api-production", **env)
    yield process
    process.stop()


def test_production_behind_a_proxy_serves_no_docs_and_no_reflection(
    production: FulcrumProcess,
) -> None:
    assert not production.tls
    with production.http() as client:
        assert client.get("/healthz").status_code == 200
        for path in ("/docs", "/openapi.json", "/redoc"):
            assert client.get(path).status_code == 404, path
        assert "strict-transport-security" not in client.get("/healthz").headers
    with pytest.raises(grpc.RpcError) as err:
        reflect(production)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


def reflect(process: FulcrumProcess) -> list[bytes]:
    """One ``list_services`` reflection request."""
    with process.channel() as channel:
        call = channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            request_serializer=None,
            response_deserializer=None,
        )
        return list(call(iter([b"\x3a\x00"]), timeout=5))


def test_production_serves_docs_and_reflection_when_enabled(
    stack: LiveStack, tmp_path: Path
) -> None:
    env = production_env(
        stack,
        tmp_path,
        FULCRUM_API_TLS_TERMINATED_UPSTREAM="true",
        FULCRUM_API_DOCS="true",
        FULCRUM_GRPC_REFLECTION="true",
    )
    process = start_api(stack, name="api-production-docs", **env)
    try:
        with process.http() as client:
            assert client.get("/docs").status_code == 200
            assert client.get("/openapi.json").status_code == 200
        assert b"fulcrum.v1.DecisionService" in b"".join(reflect(process))
    finally:
        process.stop()


def test_every_answer_carries_the_security_headers(
    api: FulcrumProcess, tenant: TenantFixture
) -> None:
    with api.http(tenant.owner_key) as client:
        answers = [
            client.get("/v1/api-keys"),
            client.get("/v1/api-keys", headers={"authorization": "Bearer fk_nope"}),
            client.get("/v1/no-such-route"),
        ]
    for response in answers:
        h = response.headers
        assert h["x-content-type-options"] == "nosniff", response.url
        assert h["referrer-policy"] == "no-referrer"
        assert h["strict-transport-security"].startswith("max-age=")
        assert "default-src 'none'" in h["content-security-policy"]
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert h["cache-control"] == "no-store"


def test_a_new_keys_secret_is_never_cached(api: FulcrumProcess, tenant: TenantFixture) -> None:
    with api.http(tenant.owner_key) as client:
        created = client.post("/v1/api-keys", json={"name": "nocache", "scopes": ["keys:read"]})
        assert created.status_code == 201, created.text
        assert "secret" in created.json()
        assert created.headers["cache-control"] == "no-store"
        rotated = client.post(f"/v1/api-keys/{created.json()['api_key']['id']}/rotate")
        assert rotated.status_code == 200, rotated.text
        assert rotated.headers["cache-control"] == "no-store"


def test_the_docs_pages_have_a_csp_that_lets_them_load(api: FulcrumProcess) -> None:
    with api.http() as client:
        page = client.get("/docs")
        spec = client.get("/openapi.json")
    assert page.status_code == 200 and spec.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    for source in ("https://cdn.jsdelivr.net",):
        assert source in csp
    assert "connect-src 'self'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"


def preflight(client: httpx.Client, origin: str) -> httpx.Response:
    return client.options(
        "/v1/decisions",
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )


def test_no_origin_is_allowed_by_default(api: FulcrumProcess) -> None:
    with api.http() as client:
        response = preflight(client, DASHBOARD)
    assert response.status_code == 400, response.text
    assert "access-control-allow-origin" not in response.headers


@pytest.fixture(scope="module")
def cors_api(stack: LiveStack) -> Iterator[FulcrumProcess]:
    process = start_api(stack, name="api-cors", FULCRUM_CORS_ALLOWED_ORIGINS=DASHBOARD)
    yield process
    process.stop()


def test_the_dashboards_origin_is_allowed_and_no_other(
    cors_api: FulcrumProcess, tenant: TenantFixture
) -> None:
    with cors_api.http() as client:
        allowed = preflight(client, DASHBOARD)
        refused = preflight(client, "https://evil.example")
        actual = client.get(
            "/v1/api-keys",
            headers={"origin": DASHBOARD, "authorization": f"Bearer {tenant.owner_key}"},
        )
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == DASHBOARD
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert actual.status_code == 200
    assert actual.headers["access-control-allow-origin"] == DASHBOARD
