"""Real ``fulcrum api`` / ``fulcrum worker`` processes for end-to-end tests."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import ssl
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
    ca_file: Path | None = None
    """The CA that signed the API's certificate; None for a plain-HTTP port (the worker's)."""

    @property
    def tls(self) -> bool:
        return self.ca_file is not None

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.http_port}"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the stack's CA (and only it)."""
        assert self.ca_file is not None, "this port serves plain HTTP"
        return ssl.create_default_context(cafile=str(self.ca_file))

    def _verify(self) -> ssl.SSLContext | bool:
        return self.ssl_context() if self.tls else True

    def raw_socket(
        self, timeout: float = 10.0, *, receive_buffer: int | None = None
    ) -> socket.socket:
        """A connected socket to the REST port (TLS when it serves TLS), for tests that
        write HTTP by hand; ``receive_buffer`` shrinks SO_RCVBUF (set before connecting)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", self.http_port))
        if not self.tls:
            return sock
        return self.ssl_context().wrap_socket(sock, server_hostname="127.0.0.1")

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
            base_url=self.base_url,
            headers=_headers(credential, headers),
            timeout=timeout,
            verify=self._verify(),
        )

    def async_http(
        self,
        credential: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url,
            headers=_headers(credential, headers),
            timeout=timeout,
            verify=self._verify(),
        )

    def channel(self) -> grpc.Channel:
        """A channel to this process's gRPC port (TLS, trusting the stack's CA)."""
        if not self.tls:
            return grpc.insecure_channel(self.grpc_target)
        assert self.ca_file is not None
        credentials = grpc.ssl_channel_credentials(root_certificates=self.ca_file.read_bytes())
        return grpc.secure_channel(self.grpc_target, credentials)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def log_events(self, event: str) -> list[dict[str, object]]:
        """The JSON log lines of ``event``, oldest first."""
        found = []
        for line in self.log_text().splitlines():
            if f'"{event}"' in line:
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if record.get("event") == event:
                        found.append(record)
        return found

    def children(self) -> set[int]:
        """The live child processes: the serving processes of a supervised API."""
        pids: set[int] = set()
        with contextlib.suppress(FileNotFoundError):
            for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
                with contextlib.suppress(FileNotFoundError):
                    pids.update(int(pid) for pid in (task / "children").read_text().split())
        return pids

    def serving_pids(self) -> set[int]:
        """The live serving processes that told their supervisor they serve."""
        said = {int(str(e["pid"])) for e in self.log_events("supervisor.process_serving")}
        return said & self.children()

    def pids(self) -> list[int]:
        """This process and its serving processes (for memory and CPU, which they share)."""
        return [self.proc.pid, *sorted(self.children())]

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


# Every API the tests start serves with this many processes under a supervisor, unless a test
# says otherwise: the suite runs against the multi-process API that production runs.
API_PROCESSES = 2


def start_api(stack: LiveStack, name: str = "api", **extra_env: str) -> FulcrumProcess:
    """A real ``fulcrum api``, once every serving process serves and ``/readyz`` answers."""
    extra_env.setdefault("FULCRUM_API_PROCESSES", str(API_PROCESSES))
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
    plaintext = extra_env.get("FULCRUM_API_TLS_TERMINATED_UPSTREAM") == "true"
    ca_file = None if plaintext else stack.settings.ca_file()
    process = FulcrumProcess(proc, log, http_port, grpc_port, metrics_port, ca_file)
    wait_serving(process, int(extra_env["FULCRUM_API_PROCESSES"]))
    wait_http("/readyz", process)
    return process


def wait_serving(process: FulcrumProcess, processes: int, timeout: float = 30) -> None:
    """Until ``processes`` serving processes serve (a single process has none)."""
    if processes == 1:
        return
    deadline = time.monotonic() + timeout
    while len(process.serving_pids()) < processes:
        if process.proc.poll() is not None:
            raise RuntimeError(f"process exited early:\n{process.log_text()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{processes} serving processes not up:\n{process.log_text()}")
        time.sleep(0.1)


def wait_http(path: str, process: FulcrumProcess, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise RuntimeError(f"process exited early:\n{process.log_text()}")
        try:
            with process.http(timeout=1) as client:
                if client.get(path).status_code == 200:
                    return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{process.url(path)} not ready:\n{process.log_text()}")


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
    wait_http("/readyz", process)
    return process
