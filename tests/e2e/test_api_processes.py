"""``fulcrum api`` on several serving processes: they share the ports, answer both doors,
and one that dies is replaced while the others keep answering."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from fulcrum.pb.v1 import decisions_pb2, decisions_pb2_grpc
from tests.support.identity import TenantFixture, new_tenant, rest
from tests.support.processes import FulcrumProcess, start_api
from tests.support.stack import LiveStack

DECISION = {"tool": {"name": "db.query"}}


def serving_processes(supervisor: int) -> list[int]:
    """The supervisor's serving processes (multiprocessing's resource tracker aside)."""
    found = []
    for task in Path(f"/proc/{supervisor}/task").iterdir():
        for pid in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"multiprocessing.spawn" in cmdline and b"resource_tracker" not in cmdline:
                found.append(int(pid))
    return sorted(found)


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # a zombie holds no sockets


def wait_for(seconds: float, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("not reached in time")


@pytest.fixture(scope="module")
def api2(stack: LiveStack) -> Iterator[FulcrumProcess]:
    process = start_api(stack, "api2", FULCRUM_API_PROCESSES="2")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def tenant(stack: LiveStack) -> TenantFixture:
    return new_tenant(stack, "procs")


def test_two_serving_processes_share_both_ports(
    api2: FulcrumProcess, tenant: TenantFixture
) -> None:
    wait_for(20, lambda: len(serving_processes(api2.proc.pid)) == 2)
    for _ in range(20):  # a new connection each: the kernel spreads them over both
        with rest(api2, tenant.owner_key) as client:
            assert client.post("/v1/decisions", json=DECISION).status_code == 200
    with api2.channel() as channel:
        stub = decisions_pb2_grpc.DecisionServiceStub(channel)
        answer = stub.Evaluate(
            decisions_pb2.EvaluateRequest(tool=decisions_pb2.Tool(name="db.query")),
            metadata=(("authorization", f"Bearer {tenant.owner_key}"),),
            timeout=10,
        )
    assert answer.decision.decision_id
    metrics = httpx.get(f"http://127.0.0.1:{api2.metrics_port}/metrics", timeout=10).text
    assert "fulcrum_decisions_total" in metrics  # the supervisor serves every process's


def test_a_dead_serving_process_is_replaced_while_the_other_answers(
    api2: FulcrumProcess, tenant: TenantFixture
) -> None:
    wait_for(20, lambda: len(serving_processes(api2.proc.pid)) == 2)
    before = serving_processes(api2.proc.pid)
    os.kill(before[0], signal.SIGKILL)
    # What the dead process held (its accept queue, its connections) is lost with it; once
    # it is gone, every new connection reaches the other one.
    wait_for(5, lambda: gone(before[0]))
    answered = 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        with rest(api2, tenant.owner_key) as client:
            assert client.post("/v1/decisions", json=DECISION).status_code == 200
        answered += 1
    assert answered > 10
    wait_for(20, lambda: len(serving_processes(api2.proc.pid)) == 2)
    after = serving_processes(api2.proc.pid)
    assert before[0] not in after
    assert before[1] in after
    assert "api.process_died" in api2.log_text()
