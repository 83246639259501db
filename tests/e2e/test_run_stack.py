"""`fulcrum up` from nothing: servers, migrations, API and worker; readiness follows deps."""

from __future__ import annotations

import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.stack import free_port, new_home, stack_env


@dataclass
class Running:
    proc: subprocess.Popen[str]
    env: dict[str, str]
    home: Path
    output: list[str]

    @property
    def ca_file(self) -> Path:
        return self.home / "certs" / "ca.crt"

    def api_url(self, path: str = "") -> str:
        return f"https://127.0.0.1:{self.env['FULCRUM_HTTP_PORT']}{path}"

    def worker_url(self, path: str) -> str:
        """The worker's health port: internal, plain HTTP."""
        return f"http://127.0.0.1:{self.env['FULCRUM_WORKER_HEALTH_PORT']}{path}"

    def get(self, url: str, timeout: float = 5) -> httpx.Response:
        verify = ssl.create_default_context(cafile=str(self.ca_file))
        return httpx.get(url, timeout=timeout, verify=verify)

    def fulcrum(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "fulcrum.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def grpc_health(target: str, ca_file: Path) -> int:
    credentials = grpc.ssl_channel_credentials(root_certificates=ca_file.read_bytes())
    with grpc.secure_channel(target, credentials) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status


def eventually(check, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    import os

    home = new_home("fulcrum-up-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FULCRUM_")}
    env |= stack_env(home)
    env |= {
        "FULCRUM_ENV": "development",
        "FULCRUM_HTTP_PORT": str(free_port()),
        "FULCRUM_GRPC_PORT": str(free_port()),
        "FULCRUM_METRICS_PORT": str(free_port()),
        "FULCRUM_WORKER_HEALTH_PORT": str(free_port()),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "fulcrum.cli", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        output.append(line.rstrip())
        if line.startswith("Press Ctrl-C"):
            break
    else:
        pytest.fail("fulcrum up ended before it was ready:\n" + "\n".join(output))
    running = Running(proc, env, home, output)
    yield running
    if proc.poll() is None:
        proc.kill()
    running.fulcrum("dev", "down")
    shutil.rmtree(home, ignore_errors=True)


def test_up_prints_the_urls_to_use(running: Running) -> None:
    text = "\n".join(running.output)
    assert running.api_url() in text
    assert str(running.ca_file) in text
    assert f"127.0.0.1:{running.env['FULCRUM_GRPC_PORT']}" in text
    assert "migrations: at head" in text


def test_ready_then_503_naming_postgres_when_it_stops(running: Running) -> None:
    readyz = running.api_url("/readyz")
    grpc_target = f"127.0.0.1:{running.env['FULCRUM_GRPC_PORT']}"
    ca = running.ca_file
    assert running.get(readyz).status_code == 200
    assert running.get(running.worker_url("/readyz")).status_code == 200
    assert eventually(
        lambda: grpc_health(grpc_target, ca) == health_pb2.HealthCheckResponse.SERVING
    )

    stopped = running.fulcrum("dev", "down", "--service", "postgresql")
    assert "postgresql: stopped" in stopped.stdout, stopped.stderr
    try:
        response = running.get(readyz, timeout=10)
        assert response.status_code == 503
        body = response.json()
        assert body["unavailable"] == ["postgresql"]
        assert body["checks"]["redis"] == "ok"
        assert eventually(
            lambda: grpc_health(grpc_target, ca) == health_pb2.HealthCheckResponse.NOT_SERVING
        )
    finally:
        running.fulcrum("dev", "up", "--service", "postgresql")
    assert eventually(lambda: running.get(readyz).status_code == 200)


def test_ctrl_c_stops_everything(running: Running) -> None:
    running.proc.send_signal(signal.SIGINT)
    assert running.proc.wait(timeout=60) == 0
    status = running.fulcrum("dev", "status")
    assert status.returncode == 1
    assert '"postgresql": "stopped"' in status.stdout
    assert '"redis": "stopped"' in status.stdout
    assert '"nats": "stopped"' in status.stdout
