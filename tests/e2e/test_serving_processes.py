"""``fulcrum api`` with several serving processes under a supervisor, against real processes:
one killed is replaced while the others answer, SIGTERM stops them all, the metrics port
sums them, and processes that cannot start make the supervisor give up, naming why."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import pytest

from fulcrum.pb.v1 import decisions_pb2, decisions_pb2_grpc
from tests.support.identity import TenantFixture, enterprise_plan, new_tenant
from tests.support.processes import FulcrumProcess, start_api
from tests.support.stack import LiveStack, free_port

DECISION = {"tool": {"name": "db.query"}, "agent": {"id": "agent-1"}}


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def rest_decision(api: FulcrumProcess, key: str) -> None:
    """One decision on a connection of its own, so the kernel may hand it to any process."""
    with api.http(key, timeout=10) as client:
        response = client.post("/v1/decisions", json=DECISION)
    assert response.status_code == 200, response.text


def grpc_decision(api: FulcrumProcess, key: str) -> None:
    with api.channel() as channel:
        stub = decisions_pb2_grpc.DecisionServiceStub(channel)
        ask = decisions_pb2.EvaluateRequest(tool=decisions_pb2.Tool(name="db.query"))
        stub.Evaluate(ask, metadata=(("authorization", f"Bearer {key}"),), timeout=10)


class Traffic:
    """Decisions over REST and gRPC, one after another on fresh connections, in a thread.

    A request on a connection the killed process had accepted fails with the connection; a
    client tries it once more, as any would, and that second try must succeed."""

    def __init__(self, api: FulcrumProcess, key: str) -> None:
        self.answered = 0
        self.retried = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(api, key), daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self, api: FulcrumProcess, key: str) -> None:
        while not self._stop.is_set():
            for ask in (rest_decision, grpc_decision):
                try:
                    ask(api, key)
                except (httpx.TransportError, grpc.RpcError):
                    self.retried += 1
                    try:
                        ask(api, key)
                    except Exception as exc:
                        self.failures.append(f"{ask.__name__}: {exc!r}")
                        continue
                except Exception as exc:
                    self.failures.append(f"{ask.__name__}: {exc!r}")
                    continue
                self.answered += 1


def refusals(api: FulcrumProcess) -> list[dict[str, object]]:
    """The access log's lines of 401s to GET /v1/api-keys (with the pid that answered)."""
    return [
        line
        for line in api.log_events("request")
        if line.get("route") == "/v1/api-keys" and line.get("status") == 401
    ]


def answered_by(api: FulcrumProcess, pid: int) -> bool:
    return any(line.get("pid") == pid for line in api.log_events("request"))


@pytest.fixture
def busy_tenant(stack: LiveStack) -> TenantFixture:
    tenant = new_tenant(stack, "procs")
    enterprise_plan(stack, tenant)
    return tenant


def test_a_killed_serving_process_is_replaced_while_the_others_keep_answering(
    stack: LiveStack, busy_tenant: TenantFixture
) -> None:
    api = start_api(stack, name="api-kill", FULCRUM_API_PROCESSES="2")
    try:
        before = api.serving_pids()
        assert len(before) == 2
        victim = min(before)
        with Traffic(api, busy_tenant.owner_key) as traffic:
            wait_for(lambda: traffic.answered >= 10, 30, "decisions before the kill")
            os.kill(victim, signal.SIGKILL)
            killed_at, answered_at_kill = time.monotonic(), traffic.answered
            # The survivor answers alone while the replacement starts.
            wait_for(lambda: traffic.answered >= answered_at_kill + 10, 30, "the survivor")
            wait_for(lambda: len(api.serving_pids() - {victim}) == 2, 30, "a new process")
            restarted_in = time.monotonic() - killed_at
            (new,) = api.serving_pids() - before
            answered_after_restart = traffic.answered
            wait_for(lambda: traffic.answered >= answered_after_restart + 10, 30, "answers")
        assert traffic.failures == []
        assert traffic.retried <= 2, "more requests failed than the killed process held"
        assert gone(victim)
        exits = api.log_events("supervisor.process_exited")
        assert [(e["pid"], e["status"]) for e in exits] == [(victim, "killed by SIGKILL")]
        print(
            f"\nkilled {victim}, replaced by {new} in {restarted_in:.1f}s; "
            f"{traffic.answered} decisions answered, {traffic.retried} retried"
        )
        # The new process serves: fresh connections reach it too.
        for _ in range(200):
            rest_decision(api, busy_tenant.owner_key)
            if answered_by(api, new):
                break
        assert answered_by(api, new), f"no answer from the new process {new}"
    finally:
        api.stop()


def test_sigterm_stops_every_serving_process_and_the_supervisor_exits_0(
    stack: LiveStack,
) -> None:
    api = start_api(stack, name="api-sigterm", FULCRUM_API_PROCESSES="2")
    children = api.children()
    assert len(children) == 2
    api.proc.send_signal(signal.SIGTERM)
    assert api.proc.wait(timeout=15) == 0
    assert all(gone(pid) for pid in children), "a serving process outlived its supervisor"
    stopped = {e["pid"] for e in api.log_events("api.stopped") if "pid" in e}
    assert stopped == children, "a serving process did not stop gracefully"
    assert api.log_events("supervisor.process_killed") == []


def test_serving_processes_stop_when_their_supervisor_is_killed(stack: LiveStack) -> None:
    api = start_api(stack, name="api-orphans", FULCRUM_API_PROCESSES="2")
    children = api.children()
    api.proc.kill()
    api.proc.wait(timeout=10)
    wait_for(lambda: all(gone(pid) for pid in children), 15, "the orphans to stop")


def counter(api: FulcrumProcess, name: str, **labels: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{api.metrics_port}/metrics", timeout=10).text
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{name}{{{wanted}}} ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_the_metrics_port_sums_a_counter_over_the_serving_processes(stack: LiveStack) -> None:
    api = start_api(stack, name="api-metrics", FULCRUM_API_PROCESSES="2")
    try:
        sent = 0
        # Requests without a credential, each on its own connection, until both processes
        # have answered some (the access log names the process).
        while len({line["pid"] for line in refusals(api)}) < 2:
            with api.http() as client:
                assert client.get("/v1/api-keys").status_code == 401
            sent += 1
            assert sent < 500, "one process answered everything"
        time.sleep(0.2)  # the last access lines reach the log
        by_process: dict[object, int] = {}
        for line in refusals(api):
            by_process[line["pid"]] = by_process.get(line["pid"], 0) + 1
        assert len(by_process) == 2 and sum(by_process.values()) == sent
        assert counter(api, "fulcrum_auth_failures_total", reason="missing") == sent
        # A process that dies keeps its counts in the sum: counters never go backwards.
        os.kill(min(api.serving_pids()), signal.SIGKILL)
        wait_for(lambda: len(api.serving_pids()) == 2, 30, "the replacement")
        assert counter(api, "fulcrum_auth_failures_total", reason="missing") == sent
    finally:
        api.stop()


# --- processes that cannot start --------------------------------------------------------


def run_api_expecting_failure(stack: LiveStack, log: Path, **env: str) -> tuple[int, str]:
    ports = {
        "FULCRUM_HTTP_PORT": str(free_port()),
        "FULCRUM_GRPC_PORT": str(free_port()),
        "FULCRUM_METRICS_PORT": str(free_port()),
    }
    full_env = stack.process_env(**{"FULCRUM_API_PROCESSES": "2", **ports, **env})
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fulcrum.cli", "api"],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            returncode = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    return returncode, log.read_text(errors="replace")


def test_processes_that_cannot_start_make_the_supervisor_give_up_naming_why(
    stack: LiveStack, tmp_path: Path
) -> None:
    # The supervisor reads no secret: only its serving processes find the pepper missing.
    empty = tmp_path / "secrets"
    empty.mkdir()
    returncode, output = run_api_expecting_failure(
        stack, tmp_path / "api.log", FULCRUM_SECRETS_DIR=str(empty)
    )
    assert returncode == 1, output
    assert "error: the serving processes cannot start" in output
    assert "key_pepper" in output.split("error: the serving processes cannot start")[1]
    assert len(re.findall(r'"supervisor.process_started"', output)) <= 6


def _listening(port: int, *, reuse_port: bool = False) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


@pytest.mark.parametrize(
    ("port", "reuse_port", "named"),
    [
        ("FULCRUM_HTTP_PORT", False, "the REST port"),
        # A server that would share the port (SO_REUSEPORT, as the serving processes bind
        # it) is refused too: it would silently take a share of the connections.
        ("FULCRUM_GRPC_PORT", True, "the gRPC port"),
        ("FULCRUM_METRICS_PORT", False, "the metrics port"),
    ],
)
def test_a_port_in_use_is_named_before_any_process_starts(
    stack: LiveStack, tmp_path: Path, port: str, reuse_port: bool, named: str
) -> None:
    taken = free_port()
    with _listening(taken, reuse_port=reuse_port):
        returncode, output = run_api_expecting_failure(
            stack, tmp_path / "api.log", **{port: str(taken)}
        )
    assert returncode == 2, output
    assert f"error: {named} 127.0.0.1:{taken}" in output
    assert "supervisor.process_started" not in output


def test_a_bad_certificate_is_named_before_any_process_starts(
    stack: LiveStack, tmp_path: Path
) -> None:
    settings = stack.settings
    returncode, output = run_api_expecting_failure(
        stack,
        tmp_path / "api.log",
        FULCRUM_API_TLS_CERT_FILE=str(settings.cert_file("api")),
        FULCRUM_API_TLS_KEY_FILE=str(settings.key_file("worker")),
    )
    assert returncode == 2, output
    assert "the API's TLS certificate cannot be used" in output
    assert "supervisor.process_started" not in output
