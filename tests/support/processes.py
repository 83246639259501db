"""Real ``fulcrum api`` / ``fulcrum worker`` processes for end-to-end tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx

from tests.support.stack import LiveStack, free_port


@dataclass
class FulcrumProcess:
    proc: subprocess.Popen[bytes]
    log: Path
    http_port: int
    grpc_port: int
    metrics_port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def url(self, path: str = "") -> str:
        return f"{self.base_url}{path}"

    def http(
        self,
        credential: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> httpx.Client:
        """A client of this process's REST port, with ``credential`` as the bearer token."""
        return httpx.Client(
            base_url=self.base_url, headers=_headers(credential, headers), timeout=timeout
        )

    def async_http(
        self,
        credential: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url, headers=_headers(credential, headers), timeout=timeout
        )

    def channel(self) -> grpc.Channel:
        """A channel to this process's gRPC port."""
        return grpc.insecure_channel(self.grpc_target)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _headers(credential: str | None, headers: dict[str, str] | None) -> dict[str, str]:
    merged = dict(headers or {})
    if credential:
        merged["authorization"] = f"Bearer {credential}"
    return merged


def start_api(stack: LiveStack, name: str = "api", **extra_env: str) -> FulcrumProcess:
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    log = stack.home / f"{name}-{http_port}.log"
    env = stack.process_env(
        FULCRUM_HTTP_PORT=str(http_port),
        FULCRUM_GRPC_PORT=str(grpc_port),
        FULCRUM_METRICS_PORT=str(metrics_port),
        **extra_env,
    )
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fulcrum.cli", "api"],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    process = FulcrumProcess(proc, log, http_port, grpc_port, metrics_port)
    wait_http(f"{process.base_url}/readyz", process)
    return process


def wait_http(url: str, process: FulcrumProcess, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise RuntimeError(f"process exited early:\n{process.log_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready:\n{process.log_text()}")


def start_worker(stack: LiveStack, name: str = "worker", **extra_env: str) -> FulcrumProcess:
    health_port = free_port()
    log = stack.home / f"{name}-{health_port}.log"
    env = stack.process_env(FULCRUM_WORKER_HEALTH_PORT=str(health_port), **extra_env)
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fulcrum.cli", "worker"],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    process = FulcrumProcess(proc, log, health_port, 0, health_port)
    wait_http(f"{process.base_url}/readyz", process)
    return process
