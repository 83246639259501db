"""``fulcrum up``: the whole stack in the foreground (servers, migrations, API, worker)."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from fulcrum.admin import setup_events
from fulcrum.devstack.process import DevStackError, wait_until
from fulcrum.devstack.stack import DevStack
from fulcrum.kit.config import Settings
from fulcrum.kit.migrate import migrate

Report = Callable[[str], None]


def _ready(url: str, verify: ssl.SSLContext | bool = True) -> bool:
    try:
        return httpx.get(url, timeout=1, verify=verify).status_code == 200
    except httpx.HTTPError:
        return False


def _spawn(command: str, logs: Path) -> subprocess.Popen[bytes]:
    """``command`` writes its JSON logs to ``<command>.log`` (rotated by size; the API's
    serving processes, under its supervisor, each to ``api-<n>.log``, since a rotated file
    must have one writer); anything else it prints (a crash before logging started) goes
    to ``<command>.out``."""
    env = {**os.environ, "FULCRUM_LOG_FILE": str(logs / f"{command}.log")}
    with open(logs / f"{command}.out", "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "fulcrum.cli", command],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )


def _wait_ready(
    name: str, url: str, verify: ssl.SSLContext | bool, child: subprocess.Popen[bytes], log: Path
) -> None:
    if not wait_until(lambda: _ready(url, verify) or child.poll() is not None, 60):
        raise DevStackError(f"{name} did not become ready within 60s; see {log}")
    if child.poll() is not None:
        raise DevStackError(
            f"{name} exited with status {child.returncode}; see {log} and {log.with_suffix('.out')}"
        )


def run_stack(settings: Settings, report: Report, *, keep_servers: bool = False) -> int:
    stack = DevStack(settings)
    stack.up(report)
    report("migrations: applying ...")
    migrate(settings)
    report("migrations: at head")
    for line in asyncio.run(setup_events(settings)):
        report(f"events: {line} ready")
    logs = settings.home.absolute() / "logs"
    logs.mkdir(exist_ok=True)
    children = {
        "api": _spawn("api", logs),
        "worker": _spawn("worker", logs),
    }
    stop_requested = False

    def request_stop(*_: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    tls = not settings.api_tls_terminated_upstream
    # The dev certificates are signed by the stack's own CA: trust it, and only it.
    verify = ssl.create_default_context(cafile=str(settings.ca_file())) if tls else True
    rest = f"{'https' if tls else 'http'}://{settings.api_host}:{settings.http_port}"
    api_ready = f"{rest}/readyz"
    worker_ready = f"http://{settings.api_host}:{settings.worker_health_port}/readyz"
    try:
        _wait_ready("api", api_ready, verify, children["api"], logs / "api.log")
        _wait_ready("worker", worker_ready, True, children["worker"], logs / "worker.log")
        docs = "docs: /docs" if settings.docs_enabled else "docs off"
        reflection = "reflection on" if settings.reflection_enabled else "reflection off"
        grpc_tls = "TLS" if tls else "plaintext"
        report("")
        report("Fulcrum is up:")
        report(f"  REST API     {rest}  ({docs})")
        report(
            f"  gRPC API     {settings.api_host}:{settings.grpc_port}  ({grpc_tls}, {reflection})"
        )
        if tls:
            report(f"  CA           {settings.ca_file()}  (curl --cacert, grpcurl -cacert)")
        report(f"  readiness    {api_ready}")
        report(f"  worker       {worker_ready}")
        report(f"  logs         {logs}")
        report("Press Ctrl-C to stop.")
        while not stop_requested:
            for name, child in children.items():
                if child.poll() is not None:
                    report(f"{name} exited with status {child.returncode}; stopping")
                    return 1
            time.sleep(0.5)
        return 0
    finally:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children.values():
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        if not keep_servers:
            stack.down(report)
