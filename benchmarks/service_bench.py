"""The decision service side by side with Cerbos and a framework ceiling (issue 12's benchmark).

    .venv/bin/python benchmarks/service_bench.py [--rounds 3] [--seconds 10] [--warmup 2]
        [--concurrency 1,16,64] [--grpc-processes 2] [--api-processes N] [--cerbos /path/to/cerbos]

(quick mode: ``--rounds 1 --seconds 3``, three to four minutes; needs ``wrk`` and ``npm``.)

One run, on this machine, of this checkout:

- The workload (workload.py): one tenant's 20 policies / 100 rules (all five actions, a shadow
  candidate) and 1,000 seeded requests over 20-odd tools.
- Fulcrum: the real stack of stack.py (``dev up``, migrations, streams, a tenant with rate
  limits lifted, ``fulcrum api`` and ``fulcrum worker``, mTLS between them, audit before
  answer: the defaults), the policies created and activated over REST.
- Cerbos 0.55 (the server binary of npm ``@cerbos/cerbos-linux-x64``, installed into a
  temporary directory unless ``--cerbos`` names one), the same workload translated by
  cerbos_policies.py into one resource policy (disk storage), TLS with the stack's dev CA
  and API certificate, HTTP and gRPC listeners, default logging; twice: without audit and
  with the file audit backend.
- The ceiling: a trivial ASGI app answering a fixed Fulcrum decision (one real answer's bytes)
  on ``fulcrum.serving.http.embedded_server`` with the API's TLS context and connection
  settings, one process: what the REST server stack alone can do.

First an agreement pass: each of the 1,000 requests goes to Fulcrum (REST), to both Cerbos
servers (HTTP ``/api/check/resources``) and to the checkout's engine in process; it prints
``agreement: N/1000`` and aborts unless Cerbos gives Fulcrum's action for all 1,000.

Then ``--rounds`` interleaved rounds of every (concurrency, door, system): REST with wrk
(wrk/decisions.lua rotates through the 1,000 pre-rendered bodies; threads = min(c, 2)),
gRPC with a load generator of ``--grpc-processes`` Python processes (grpc.aio, one TLS channel
each, the concurrency split between them, bodies pre-serialized, every answer's action
checked) against ``fulcrum.v1.DecisionService/Evaluate`` and
``cerbos.svc.v1.CerbosService/CheckResources`` (a minimal .proto compiled at run time with
grpcio-tools). Each measurement follows a warm-up of ``--warmup`` seconds. For each it measures
req/s, p50 and p99, and the CPU time of every process kind (API, worker, PostgreSQL, NATS,
Redis, Cerbos, ceiling, load generator: /proc utime+stime of each process and its
descendants; PostgreSQL is its postmaster and every backend) per decision; after a Fulcrum
measurement, the worker's pending events and lag (its /metrics). A measurement in which no
answer completed says so; wrk's first non-2xx answer is printed; more than 1% of errors
(non-2xx, socket errors, wrong actions over gRPC) aborts the run.

It prints every measurement, then per (door, concurrency, system) the medians over rounds,
the ratios Fulcrum/Cerbos, Fulcrum/Cerbos-with-audit and Fulcrum/ceiling, and last the ledger
check: the decisions Fulcrum answered (as its clients saw them, and as the API counted them)
against the decision records in the tenant's ledger once the worker caught up, and
``fulcrum audit verify``. Everything is torn down at the end, on errors and on Ctrl-C. A
benchmark, not a test: the load generators share the 2 cores with the servers (their CPU is
printed), and figures move with whatever else the machine does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import re
import resource
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml

# Sibling modules: this file runs as a script.
from cerbos_policies import ACTIONS, check_body, decided, resource_policy
from stack import (
    REQUEST_TIMEOUT,
    Stack,
    describe_checkout,
    free_ports,
    loadavg,
    machine,
    no_interrupts,
    on_sigterm,
    say,
)
from workload import Ask, large_asks, large_policies

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
WRK_SCRIPT = HERE / "wrk" / "decisions.lua"
CERBOS_VERSION = "0.55.0"
CERBOS_PACKAGE = f"@cerbos/cerbos-linux-x64@{CERBOS_VERSION}"
MAX_ERROR_RATE = 0.01
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
GRPC_STARTUP = 3.0  # seconds a load process gets to import, connect and build its requests
ACTION_ENUM = ["unspecified", "allow", "warn", "escalate", "require_approval", "deny"]
FULCRUM, CERBOS, CERBOS_AUDIT, CEILING = "fulcrum", "cerbos", "cerbos+audit", "ceiling"
SYSTEMS = (FULCRUM, CERBOS, CERBOS_AUDIT, CEILING)

CERBOS_PROTO = """
syntax = "proto3";
package servicebench;
import "google/protobuf/struct.proto";
// The wire shape of cerbos.svc.v1.CerbosService/CheckResources, the fields this bench uses.
message Principal {
  string id = 1; string policy_version = 2; repeated string roles = 3;
  map<string, google.protobuf.Value> attr = 4; string scope = 5;
}
message Resource {
  string kind = 1; string policy_version = 2; string id = 3;
  map<string, google.protobuf.Value> attr = 4; string scope = 5;
}
message ResourceEntry { repeated string actions = 1; Resource resource = 2; }
message CheckResourcesRequest {
  string request_id = 1; bool include_meta = 2; Principal principal = 3;
  repeated ResourceEntry resources = 4;
}
message ResultResource { string id = 1; string kind = 2; string policy_version = 3; }
message ResultEntry { ResultResource resource = 1; map<string, int32> actions = 2; }
message CheckResourcesResponse {
  string request_id = 1; repeated ResultEntry results = 2; string cerbos_call_id = 3;
}
"""


def cerbos_body(ask: Ask) -> dict[str, Any]:
    return check_body(
        tool=ask.tool,
        args=ask.args,
        agent=ask.agent,
        roles=ask.roles,
        transport=ask.transport,
        model=ask.model,
        cost=ask.cost,
        context=ask.context,
    )


# --- CPU time of process trees ---------------------------------------------------------------


def process_table() -> tuple[dict[int, list[int]], dict[int, int]]:
    """Every process's children, and its CPU ticks (utime+stime, and those of its reaped
    children: cutime+cstime)."""
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        ticks[pid] = sum(int(value) for value in fields[11:15])
    return children, ticks


def tree_ticks(children: dict[int, list[int]], ticks: dict[int, int], roots: Sequence[int]) -> int:
    total, todo, seen = 0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += ticks.get(pid, 0)
        todo.extend(children.get(pid, ()))
    return total


@dataclass
class CpuMeter:
    roots: dict[str, list[int]]  # process kind -> root pids

    def snapshot(self) -> dict[str, int]:
        children, ticks = process_table()
        return {kind: tree_ticks(children, ticks, pids) for kind, pids in self.roots.items()}

    @staticmethod
    def seconds(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
        return {kind: (after[kind] - before[kind]) / CLOCK_TICK for kind in before}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- the gRPC load (a child process: python service_bench.py --grpc-load SPEC) --------------


@dataclass(frozen=True)
class GrpcSpec:
    system: str  # FULCRUM or a Cerbos
    target: str
    ca_file: str
    key: str
    proto_dir: str
    expected_file: str
    concurrency: int
    offset: int
    start_at: float  # time.monotonic(), shared by every process of the machine
    seconds: float


@dataclass(frozen=True)
class Calls:
    """What a load process sends: one method, pre-serialized requests, and how to read the
    action from an answer."""

    method: str
    payloads: list[bytes]
    expected: list[str]
    metadata: tuple[tuple[str, str], ...] | None
    decode: Callable[[bytes], str]
    root_certificates: bytes


def prepare_calls(spec: GrpcSpec) -> Calls:
    asks = large_asks()
    expected: list[str] = json.loads(Path(spec.expected_file).read_text())
    ca = Path(spec.ca_file).read_bytes()
    if spec.system == FULCRUM:
        from fulcrum.pb.v1 import decisions_pb2

        def decode_fulcrum(raw: bytes) -> str:
            return ACTION_ENUM[decisions_pb2.EvaluateResponse.FromString(raw).decision.action]

        return Calls(
            "/fulcrum.v1.DecisionService/Evaluate",
            [ask.grpc_request().SerializeToString() for ask in asks],
            expected,
            (("authorization", f"Bearer {spec.key}"),),
            decode_fulcrum,
            ca,
        )
    from google.protobuf import json_format

    sys.path.insert(0, spec.proto_dir)
    import cerbos_wire_pb2 as wire  # type: ignore[import-not-found]

    def decode_cerbos(raw: bytes) -> str:
        return decided(dict(wire.CheckResourcesResponse.FromString(raw).results[0].actions))

    payloads = [
        json_format.ParseDict(cerbos_body(ask), wire.CheckResourcesRequest()).SerializeToString()
        for ask in asks
    ]
    return Calls(
        "/cerbos.svc.v1.CerbosService/CheckResources", payloads, expected, None, decode_cerbos, ca
    )


async def grpc_load(spec: GrpcSpec, calls: Calls) -> dict[str, Any]:
    import grpc

    payloads, expected, metadata, decode = (
        calls.payloads,
        calls.expected,
        calls.metadata,
        calls.decode,
    )
    credentials = grpc.ssl_channel_credentials(root_certificates=calls.root_certificates)
    channel = grpc.aio.secure_channel(spec.target, credentials)
    call = channel.unary_unary(calls.method)  # bytes in, bytes out
    await channel.channel_ready()
    clock = time.monotonic
    late = clock() > spec.start_at
    end = spec.start_at + spec.seconds
    samples: list[int] = []
    errors, ok_total, problems = 0, 0, []
    cpu: list[float] = []

    async def meter() -> None:
        await asyncio.sleep(max(spec.start_at - clock(), 0))
        cpu.append(time.process_time())
        await asyncio.sleep(max(end - clock(), 0))
        cpu.append(time.process_time())

    async def caller(number: int) -> None:
        nonlocal errors, ok_total
        index = spec.offset + number * (len(payloads) // max(spec.concurrency, 1) + 7)
        while clock() < end:
            index = (index + 1) % len(payloads)
            before = time.perf_counter_ns()
            started = clock()
            try:
                raw = await call(payloads[index], metadata=metadata, timeout=REQUEST_TIMEOUT)
                action = decode(raw)
                problem = None if action == expected[index] else f"ask {index}: {action}"
            except grpc.aio.AioRpcError as exc:
                problem = f"gRPC {exc.code().name}: {exc.details()}"
            elapsed = time.perf_counter_ns() - before
            if problem is None:
                ok_total += 1
            finished = clock()
            if started >= spec.start_at and finished < end:
                if problem is None:
                    samples.append(elapsed)
                else:
                    errors += 1
                    if len(problems) < 5:
                        problems.append(problem[:300])

    await asyncio.gather(meter(), *(caller(n) for n in range(spec.concurrency)))
    await channel.close(None)
    return {
        "samples": samples,
        "errors": errors,
        "ok_total": ok_total,
        "cpu": cpu[1] - cpu[0],
        "late": late,
        "problems": problems,
    }


def grpc_load_main(raw: str) -> int:
    spec = GrpcSpec(**json.loads(raw))
    try:
        outcome = asyncio.run(grpc_load(spec, prepare_calls(spec)))
    except KeyboardInterrupt:
        return 130
    print(json.dumps(outcome))
    return 0


# --- the framework ceiling (a child process: python service_bench.py --ceiling SPEC) --------


def ceiling_main(raw: str) -> int:
    """A fixed decision on the API's own server stack, TLS context and connection settings."""
    from fulcrum.kit.config import load_settings
    from fulcrum.serving.http import embedded_server
    from fulcrum.transports.tls import ReloadingTLS, api_certificate

    spec = json.loads(raw)
    answer = Path(spec["answer_file"]).read_bytes()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        more = True
        while more:  # the body is read, as the real app must
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    settings = load_settings()
    pair = api_certificate(settings)
    if pair is None:
        raise SystemExit("the stack has no API certificate")
    server = embedded_server(
        app,
        "127.0.0.1",
        spec["port"],
        ssl_context=ReloadingTLS(pair, 3600).ssl_context,
        max_connections=settings.http_max_connections,
        header_timeout=settings.http_header_timeout_seconds,
    )

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        await server.serve()

    asyncio.run(serve())
    return 0


# --- Cerbos and the ceiling as servers -------------------------------------------------------


def find_cerbos(given: Path | None, scratch: Path) -> Path:
    if given is not None:
        return given
    target = scratch / "npm"
    say(f"npm install {CERBOS_PACKAGE} ...")
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(target), CERBOS_PACKAGE],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"npm install {CERBOS_PACKAGE} failed:\n{done.stdout}{done.stderr}")
    found = sorted(target.glob("node_modules/@cerbos/cerbos-linux-x64/cerbos*"))
    binaries = [path for path in found if path.is_file() and os.access(path, os.X_OK)]
    if not binaries:
        raise RuntimeError(f"no cerbos binary under {target}/node_modules/@cerbos")
    return binaries[0]


@dataclass
class Server:
    """A server process of the bench (Cerbos or the ceiling), its log in its directory."""

    name: str
    command: list[str]
    directory: Path
    env: dict[str, str]
    http_port: int
    grpc_port: int | None
    ready_path: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_file(self) -> Path:
        return self.directory / "server.log"

    def start(self, ca_file: Path) -> None:
        with self.log_file.open("wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.directory,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        url = f"https://127.0.0.1:{self.http_port}{self.ready_path}"
        with httpx.Client(verify=ssl.create_default_context(cafile=str(ca_file))) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited:\n{self.log()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url, timeout=2).status_code < 500:
                        return
                time.sleep(0.2)
        raise RuntimeError(f"{self.name}: {url} not ready in 60 s:\n{self.log()}")

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited:\n{self.log()}")

    def log(self, lines: int = 20) -> str:
        if not self.log_file.exists():
            return "(no log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def cerbos_server(
    name: str, *, binary: Path, scratch: Path, policies: Path, stack: Stack, audit: bool
) -> Server:
    directory = scratch / name.replace("+", "-")
    directory.mkdir()
    http_port, grpc_port = free_ports(2)
    config: dict[str, Any] = {
        "server": {
            "httpListenAddr": f"127.0.0.1:{http_port}",
            "grpcListenAddr": f"127.0.0.1:{grpc_port}",
            "tls": {"cert": str(stack.certs / "api.crt"), "key": str(stack.certs / "api.key")},
        },
        "storage": {"driver": "disk", "disk": {"directory": str(policies)}},
        "audit": {"enabled": False},
    }
    if audit:
        config["audit"] = {
            "enabled": True,
            "accessLogsEnabled": True,
            "decisionLogsEnabled": True,
            "backend": "file",
            "file": {"path": str(directory / "audit.log")},
        }
    (directory / "cerbos.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "CERBOS_NO_TELEMETRY": "1"}
    return Server(
        name,
        [str(binary), "server", f"--config={directory / 'cerbos.yaml'}"],
        directory,
        env,
        http_port,
        grpc_port,
        "/_cerbos/health",
    )


def ceiling_server(scratch: Path, stack: Stack, answer: bytes) -> Server:
    directory = scratch / "ceiling"
    directory.mkdir()
    (directory / "answer.json").write_bytes(answer)
    (port,) = free_ports(1)
    spec = json.dumps({"port": port, "answer_file": str(directory / "answer.json")})
    return Server(
        CEILING,
        [str(ROOT / ".venv" / "bin" / "python"), str(Path(__file__).resolve()), "--ceiling", spec],
        directory,
        stack.env,
        port,
        None,
        "/",
    )


def compile_cerbos_proto(scratch: Path) -> Path:
    from importlib.resources import files

    out = scratch / "proto"
    out.mkdir()
    (out / "cerbos_wire.proto").write_text(CERBOS_PROTO)
    include = files("grpc_tools") / "_proto"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{out}",
            f"-I{include}",
            f"--python_out={out}",
            str(out / "cerbos_wire.proto"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"protoc: {done.stderr}")
    return out


# --- measurements ----------------------------------------------------------------------------


@dataclass
class Result:
    system: str
    door: str
    concurrency: int
    requests: int  # right answers completed in the measured window
    errors: int
    wall: float
    p50_ms: float
    p99_ms: float
    cpu: dict[str, float]  # process kind -> CPU seconds in the window
    worker: str = ""  # the worker's pending events and lag afterwards (Fulcrum only)

    @property
    def rate(self) -> float:
        return self.requests / self.wall

    def cpu_us(self, kind: str) -> float:
        return self.cpu.get(kind, 0.0) / max(self.requests, 1) * 1e6


def percentile(ordered: Sequence[int], share: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] / 1e6


@dataclass
class Bench:
    stack: Stack
    scratch: Path
    asks: list[Ask]
    expected: list[str]
    seconds: float
    warmup: float
    grpc_processes: int
    servers: dict[str, Server] = field(default_factory=dict)
    bodies: dict[str, Path] = field(default_factory=dict)  # system -> Lua file of bodies
    proto_dir: Path = Path()
    meter: CpuMeter = field(init=False)
    fulcrum_ok: int = 0  # 2xx / OK answers Fulcrum gave this bench's clients
    cut_off: int = 0  # Fulcrum REST requests wrk may have left in flight at its deadline

    def start_meter(self) -> None:
        pids = self.stack.server_pids()
        roots: dict[str, list[int]] = {
            "api": [self.stack.processes["api"].pid],
            "worker": [self.stack.processes["worker"].pid],
            "postgresql": [pids["postgresql"]],
            "nats": [pids["nats"]],
            "redis": [pids["redis"]],
        }
        for name, server in self.servers.items():  # each measured alone: idle ones cost too
            assert server.process is not None
            roots[name] = [server.process.pid]
        self.meter = CpuMeter(roots)

    def url(self, system: str) -> tuple[str, str]:
        if system == FULCRUM:
            return self.stack.base_url, "/v1/decisions"
        server = self.servers[system]
        path = "/v1/decisions" if system == CEILING else "/api/check/resources"
        return f"https://127.0.0.1:{server.http_port}", path

    def grpc_target(self, system: str) -> str:
        if system == FULCRUM:
            return f"127.0.0.1:{self.stack.grpc_port}"
        return f"127.0.0.1:{self.servers[system].grpc_port}"

    def measure(self, system: str, door: str, concurrency: int) -> Result:
        if door == "rest":
            result = self.measure_rest(system, concurrency)
        else:
            result = self.measure_grpc(system, concurrency)
        if system == FULCRUM:
            result.worker = worker_state(self.stack)
        return result

    def wrk(self, system: str, concurrency: int, seconds: int) -> dict[str, Any]:
        base, path = self.url(system)
        key = self.stack.key if system in (FULCRUM, CEILING) else ""
        command = [
            "wrk",
            "-t",
            str(min(concurrency, 2)),
            "-c",
            str(concurrency),
            "-d",
            f"{seconds}s",
            "--timeout",
            f"{REQUEST_TIMEOUT:.0f}s",
            "-s",
            str(WRK_SCRIPT),
            base,
            "--",
            str(self.bodies[system]),
            path,
            key,
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
        line = next((x for x in done.stdout.splitlines() if x.startswith("JSON ")), None)
        if done.returncode != 0 or line is None:
            raise RuntimeError(f"wrk exited {done.returncode}:\n{done.stdout}{done.stderr}")
        outcome: dict[str, Any] = json.loads(line[5:])
        if outcome["sample"]:
            print(f"      {system}: first non-2xx answer: {outcome['sample']}", file=sys.stderr)
        if system == FULCRUM:
            self.fulcrum_ok += outcome["requests"] - outcome["non2xx"]
            self.cut_off += concurrency
        return outcome

    def measure_rest(self, system: str, concurrency: int) -> Result:
        if self.warmup > 0:
            self.wrk(system, concurrency, max(1, round(self.warmup)))
        seconds = max(1, round(self.seconds))
        before, load_before = self.meter.snapshot(), children_cpu()
        outcome = self.wrk(system, concurrency, seconds)
        cpu = CpuMeter.seconds(before, self.meter.snapshot())
        cpu["loadgen"] = children_cpu() - load_before
        errors = outcome["non2xx"] + outcome["socket_errors"]
        return Result(
            system,
            "rest",
            concurrency,
            outcome["requests"] - outcome["non2xx"],
            errors,
            outcome["duration_us"] / 1e6,
            outcome["p50_us"] / 1e3,
            outcome["p99_us"] / 1e3,
            cpu,
        )

    def measure_grpc(self, system: str, concurrency: int) -> Result:
        processes = max(1, min(self.grpc_processes, concurrency))
        start_at = time.monotonic() + GRPC_STARTUP + self.warmup
        end = start_at + self.seconds
        children = []
        for number in range(processes):
            share = concurrency // processes + (number < concurrency % processes)
            spec = GrpcSpec(
                system=system,
                target=self.grpc_target(system),
                ca_file=str(self.stack.ca_file),
                key=self.stack.key,
                proto_dir=str(self.proto_dir),
                expected_file=str(self.scratch / "expected.json"),
                concurrency=share,
                offset=number * 500,
                start_at=start_at,
                seconds=self.seconds,
            )
            children.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(Path(__file__).resolve()),
                        "--grpc-load",
                        json.dumps(dataclasses.asdict(spec)),
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=self.stack.env,
                    cwd=ROOT,
                )
            )
        outcomes = []
        try:
            time.sleep(max(start_at - time.monotonic(), 0))
            before = self.meter.snapshot()
            time.sleep(max(end - time.monotonic(), 0))
            cpu = CpuMeter.seconds(before, self.meter.snapshot())
            for child in children:
                out, err = child.communicate(timeout=self.seconds + 2 * REQUEST_TIMEOUT + 60)
                if child.returncode != 0:
                    problem = err.decode()[-3000:]
                    raise RuntimeError(f"gRPC load exited {child.returncode}:\n{problem}")
                outcomes.append(json.loads(out))
        finally:
            for child in children:  # on errors and Ctrl-C: none outlives the bench
                if child.poll() is None:
                    child.kill()
                    child.wait()
        if any(outcome["late"] for outcome in outcomes):
            raise RuntimeError(f"a gRPC load process took more than {GRPC_STARTUP} s to start")
        for outcome in outcomes:
            for problem in outcome["problems"]:
                print(f"      error: {problem}", file=sys.stderr)
        if system == FULCRUM:
            self.fulcrum_ok += sum(outcome["ok_total"] for outcome in outcomes)
        samples = sorted(sample for outcome in outcomes for sample in outcome["samples"])
        cpu["loadgen"] = sum(outcome["cpu"] for outcome in outcomes)
        return Result(
            system,
            "grpc",
            concurrency,
            len(samples),
            sum(outcome["errors"] for outcome in outcomes),
            self.seconds,
            percentile(samples, 0.5),
            percentile(samples, 0.99),
            cpu,
        )


def metric_values(text: str, name: str) -> list[float]:
    pattern = re.compile(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", re.MULTILINE)
    return [float(value) for value in pattern.findall(text)]


def worker_state(stack: Stack) -> str:
    try:
        text = httpx.get(f"http://127.0.0.1:{stack.health_port}/metrics", timeout=5).text
    except httpx.HTTPError as exc:
        return f"worker metrics unreadable: {exc}"
    pending = metric_values(text, "fulcrum_worker_pending_events")
    lag = metric_values(text, "fulcrum_worker_lag_seconds")
    if not pending or not lag:
        return "worker metrics missing"
    return f"pending {pending[0]:.0f}, lag {lag[0]:.2f} s"


# --- the agreement pass ----------------------------------------------------------------------


def reference_actions(policies: Sequence[dict[str, Any]], asks: Sequence[Ask]) -> list[str]:
    """What the checkout's engine decides in process (default deny, as a new tenant's)."""
    from fulcrum.engine import Action, DecisionRequest, PolicySource, compile_bundle

    bundle = compile_bundle(
        [PolicySource(f"policy-{n:02d}", 1, document) for n, document in enumerate(policies)],
        Action.DENY,
    )
    return [
        bundle.evaluate(
            DecisionRequest(
                tool_name=ask.tool,
                agent_id=ask.agent,
                agent_roles=tuple(ask.roles),
                tool_args=ask.args,
                transport=ask.transport,
                model_id=ask.model,
                cost_estimate=ask.cost,
                context=ask.context,
            )
        ).verdict.action.value
        for ask in asks
    ]


def agreement(bench: Bench) -> bytes:
    """Every ask to Fulcrum REST and to both Cerbos servers; returns one Fulcrum answer."""
    asks, expected = bench.asks, bench.expected
    verify = ssl.create_default_context(cafile=str(bench.stack.ca_file))
    fulcrum, cerbos = [], {name: [] for name in (CERBOS, CERBOS_AUDIT)}
    answer = b""
    with bench.stack.rest() as client:
        for ask in asks:
            got = client.post(
                "/v1/decisions",
                content=ask.rest_body(),
                headers={"content-type": "application/json"},
            )
            if got.status_code == 200:
                bench.fulcrum_ok += 1
                answer = answer or got.content
                fulcrum.append(got.json()["action"])
            else:
                fulcrum.append(f"HTTP {got.status_code}")
    for name, decisions in cerbos.items():
        base, path = bench.url(name)
        with httpx.Client(base_url=base, verify=verify, timeout=REQUEST_TIMEOUT) as client:
            for ask in asks:
                got = client.post(path, json=cerbos_body(ask))
                if got.status_code != 200:
                    raise RuntimeError(f"{name}: HTTP {got.status_code}: {got.text[:300]}")
                decisions.append(decided(got.json()["results"][0]["actions"]))
    same = sum(
        f == c == ca == e
        for f, c, ca, e in zip(fulcrum, cerbos[CERBOS], cerbos[CERBOS_AUDIT], expected, strict=True)
    )
    print(f"agreement: {same}/{len(asks)}", flush=True)
    counts = {action: fulcrum.count(action) for action in reversed(ACTIONS)}
    print("  Fulcrum's actions: " + ", ".join(f"{a} {n}" for a, n in counts.items()))
    if same != len(asks):
        shown = 0
        for index, row in enumerate(
            zip(fulcrum, cerbos[CERBOS], cerbos[CERBOS_AUDIT], expected, strict=True)
        ):
            if len(set(row)) > 1 and shown < 10:
                shown += 1
                print(f"  ask {index}: fulcrum/cerbos/cerbos+audit/engine {row}: {asks[index]}")
        raise RuntimeError(f"Fulcrum and Cerbos disagree on {len(asks) - same} requests")
    return answer


# --- the ledger check ------------------------------------------------------------------------


def ledger_check(bench: Bench) -> bool:
    stack = bench.stack
    metrics = httpx.get(f"http://127.0.0.1:{stack.metrics_port}/metrics", timeout=5).text
    counted = int(sum(metric_values(metrics, "fulcrum_decisions_total")))
    dsn = stack.superuser_dsn()
    deadline, stable, last = time.monotonic() + 120, 0, -1
    recorded = 0
    with psycopg.connect(dsn, autocommit=True) as db:
        while time.monotonic() < deadline and stable < 3:
            row = db.execute(
                "SELECT count(*) FROM audit_records WHERE tenant_id = %s AND kind = 'decision'",
                (stack.tenant_id,),
            ).fetchone()
            recorded = int(row[0]) if row else 0
            stable = stable + 1 if recorded == last else 0
            last = recorded
            time.sleep(1)
    seen = bench.fulcrum_ok
    print(
        f"ledger: Fulcrum answered {seen:,} decisions as its clients saw them (2xx / OK; "
        f"wrk may leave up to {bench.cut_off:,} more in flight at its deadlines), "
        f"{counted:,} as the API counted them (fulcrum_decisions_total); the tenant's ledger "
        f"holds {recorded:,} decision records ({worker_state(stack)})"
    )
    matches = recorded == counted and seen <= recorded <= seen + bench.cut_off
    print(f"ledger check: answered = recorded: {'ok' if matches else 'MISMATCH'}")
    audit_log = bench.servers[CERBOS_AUDIT].directory / "audit.log"
    if audit_log.exists():
        with audit_log.open("rb") as entries:
            count = sum(1 for _ in entries)
        size = audit_log.stat().st_size / 1e6
        print(f"cerbos+audit: its audit.log holds {count:,} entries ({size:,.1f} MB)")
    verified = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "fulcrum"), "audit", "verify", "--tenant", stack.tenant_id],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    print(f"fulcrum audit verify --tenant {stack.tenant_id} (exit {verified.returncode}):")
    for line in (verified.stdout + verified.stderr).strip().splitlines()[-10:]:
        print(f"  {line}")
    return matches and verified.returncode == 0


# --- output ----------------------------------------------------------------------------------

KIND_LABELS = {
    "api": "API",
    "worker": "worker",
    "postgresql": "PG",
    "nats": "NATS",
    "redis": "Redis",
    CERBOS: "Cerbos",
    CERBOS_AUDIT: "Cerbos",
    CEILING: "ceiling",
    "loadgen": "loadgen",
}


def kinds_of(system: str) -> list[str]:
    if system == FULCRUM:
        return ["api", "worker", "postgresql", "nats", "redis", "loadgen"]
    return [system, "loadgen"]


def cpu_text(system: str, cpu_us: dict[str, float]) -> str:
    return ", ".join(f"{KIND_LABELS[k]} {cpu_us.get(k, 0.0):,.0f}" for k in kinds_of(system))


HEADER = (
    f"{'round':>5} {'system':<13} {'door':<4} {'conc':>4} {'answers':>8} {'err':>4} "
    f"{'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'load1':>5}  CPU us per decision; worker"
)


def print_result(index: int, result: Result, load: str) -> None:
    worker = f"; {result.worker}" if result.worker else ""
    if result.requests == 0:  # every request still unanswered when the window closed
        worker += "; NO ANSWER completed in the window"
    cpu = {kind: result.cpu_us(kind) for kind in result.cpu}
    print(
        f"{index:>5} {result.system:<13} {result.door:<4} {result.concurrency:>4} "
        f"{result.requests:>8,} {result.errors:>4} {result.rate:>7,.0f} {result.p50_ms:>7.2f} "
        f"{result.p99_ms:>7.2f} {load:>5}  {cpu_text(result.system, cpu)}{worker}",
        flush=True,
    )


def check_errors(result: Result) -> None:
    total = result.requests + result.errors
    if result.errors > MAX_ERROR_RATE * max(total, 1):
        raise RuntimeError(
            f"{result.system} {result.door} x{result.concurrency}: {result.errors} errors in "
            f"{total} requests; aborting"
        )


@dataclass(frozen=True)
class Median:
    """Medians over rounds of one (door, concurrency, system)."""

    rate: float
    p50_ms: float
    p99_ms: float
    cpu_us: dict[str, float]  # process kind -> CPU us per decision

    @classmethod
    def of(cls, results: Sequence[Result]) -> Median:
        kinds = {kind for result in results for kind in result.cpu}
        return cls(
            statistics.median(r.rate for r in results),
            statistics.median(r.p50_ms for r in results),
            statistics.median(r.p99_ms for r in results),
            {kind: statistics.median(r.cpu_us(kind) for r in results) for kind in kinds},
        )


Step = tuple[int, str, str]  # (concurrency, door, system)


def print_summary(plan: Sequence[Step], results: dict[Step, list[Result]]) -> None:
    rounds = len(results[plan[0]])
    title = f"Summary: medians over {rounds} round{'s' if rounds > 1 else ''}"
    print(f"\n{title}\n{'=' * len(title)}")
    header = (
        f"{'door':<4} {'conc':>4} {'system':<13} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7}  "
        "CPU us per decision: servers = by process kind"
    )
    print(header)
    print("-" * len(header))
    medians = {step: Median.of(results[step]) for step in plan}
    for step in plan:
        concurrency, door, system = step
        m = medians[step]
        servers = sum(m.cpu_us.get(kind, 0.0) for kind in kinds_of(system) if kind != "loadgen")
        print(
            f"{door:<4} {concurrency:>4} {system:<13} {m.rate:>7,.0f} {m.p50_ms:>7.2f} "
            f"{m.p99_ms:>7.2f}  {servers:,.0f} = {cpu_text(system, m.cpu_us)}"
        )
    print("\nRatios Fulcrum / baseline (req/s, p50, p99)")
    for concurrency, door, system in plan:
        ours = medians.get((concurrency, door, FULCRUM))
        if system == FULCRUM or ours is None:
            continue
        base = medians[concurrency, door, system]
        ratios = [
            f"{a / b:>6.2f}x" if b > 0 else f"{'n/a':>7}"
            for a, b in (
                (ours.rate, base.rate),
                (ours.p50_ms, base.p50_ms),
                (ours.p99_ms, base.p99_ms),
            )
        ]
        print(f"{door:<4} {concurrency:>4} Fulcrum/{system:<13} {' '.join(ratios)}")


# --- main ------------------------------------------------------------------------------------


def write_bodies(scratch: Path, name: str, bodies: Sequence[bytes]) -> Path:
    """A Lua file returning the bodies as long-bracket strings (no escaping needed)."""
    lines = ["return {"]
    for body in bodies:
        text = body.decode()
        level = "="
        while f"]{level}]" in text:
            level += "="
        lines.append(f"[{level}[{text}]{level}],")
    lines.append("}")
    path = scratch / f"bodies-{name.replace('+', '-')}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def parse_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="uncounted load before each measurement"
    )
    parser.add_argument("--concurrency", default="1,16,64", help="comma-separated")
    parser.add_argument("--grpc-processes", type=int, default=2, help="gRPC load processes")
    parser.add_argument(
        "--api-processes",
        type=int,
        help="FULCRUM_API_PROCESSES of the API under test (default: its own, the usable cores)",
    )
    parser.add_argument("--cerbos", type=Path, help=f"a cerbos {CERBOS_VERSION} binary")
    parser.add_argument("--grpc-load", help=argparse.SUPPRESS)  # child processes
    parser.add_argument("--ceiling", help=argparse.SUPPRESS)
    return parser.parse_args()


def set_up(bench: Bench, policies: list[dict[str, Any]], cerbos: Path | None) -> None:
    """Cerbos found and its policy written, the stack up with the policies, both Cerbos
    servers started, the agreement pass, the ceiling started, the wrk bodies written."""
    stack, scratch, asks = bench.stack, bench.scratch, bench.asks
    (scratch / "expected.json").write_text(json.dumps(bench.expected))
    binary = find_cerbos(cerbos, scratch)
    version = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    say(f"cerbos: {binary} (version {version[0] if version else '?'})")
    policy_dir = scratch / "cerbos-policies"
    policy_dir.mkdir()
    (policy_dir / "tool_call.yaml").write_text(
        yaml.safe_dump(resource_policy(policies), sort_keys=False, width=10_000)
    )
    stack.up("service-bench")
    stack.install_policies(policies)

    def answered(ok: int) -> None:
        bench.fulcrum_ok += ok

    stack.settle([ask.rest_body() for ask in asks], bench.expected, answered)
    bench.proto_dir = compile_cerbos_proto(scratch)
    for name, audit in ((CERBOS, False), (CERBOS_AUDIT, True)):
        bench.servers[name] = cerbos_server(
            name, binary=binary, scratch=scratch, policies=policy_dir, stack=stack, audit=audit
        )
        bench.servers[name].start(stack.ca_file)
    say(
        "cerbos: TLS with the stack's dev CA and API certificate (certs/api.crt), "
        "HTTP and gRPC listeners; one server without audit, one with the file audit backend"
    )
    answer = agreement(bench)
    bench.servers[CEILING] = ceiling_server(scratch, stack, answer)
    bench.servers[CEILING].start(stack.ca_file)
    say(f"ceiling: embedded_server on :{bench.servers[CEILING].http_port}, API TLS context")
    for system in SYSTEMS:
        source = [ask.rest_body() for ask in asks]
        if system in (CERBOS, CERBOS_AUDIT):
            source = [json.dumps(cerbos_body(ask)).encode() for ask in asks]
        bench.bodies[system] = write_bodies(scratch, system, source)
    bench.start_meter()


def run_rounds(bench: Bench, plan: Sequence[Step], rounds: int) -> dict[Step, list[Result]]:
    results: dict[Step, list[Result]] = {step: [] for step in plan}
    print(f"\n{HEADER}\n{'-' * len(HEADER)}", flush=True)
    for index in range(1, rounds + 1):
        for concurrency, door, system in plan:
            bench.stack.check_alive()
            for server in bench.servers.values():
                server.check_alive()
            load = loadavg()
            result = bench.measure(system, door, concurrency)
            print_result(index, result, load)
            check_errors(result)
            results[concurrency, door, system].append(result)
    return results


def main() -> int:
    options = parse_options()
    if options.grpc_load:
        return grpc_load_main(options.grpc_load)
    if options.ceiling:
        return ceiling_main(options.ceiling)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")

    signal.signal(signal.SIGTERM, on_sigterm)
    plan = [
        (int(concurrency), door, system)
        for concurrency in options.concurrency.split(",")
        for door in ("rest", "grpc")
        for system in SYSTEMS
        if not (door == "grpc" and system == CEILING)
    ]
    print(machine(), flush=True)
    print(f"checkout: {describe_checkout(ROOT)}")
    print(
        f"plan: {options.rounds} rounds x {len(plan)} measurements (REST: wrk; gRPC: "
        f"{options.grpc_processes} load processes), concurrency {options.concurrency}; "
        f"{options.seconds:g} s each after a {options.warmup:g} s warm-up",
        flush=True,
    )
    began = time.perf_counter()
    policies, asks = large_policies(), large_asks()
    rules = sum(len(policy["rules"]) for policy in policies)
    say(f"workload: {len(policies)} policies / {rules} rules, {len(asks)} requests")
    bench = Bench(
        Stack("fulcrum", ROOT, api_processes=options.api_processes),
        Path(tempfile.mkdtemp(prefix="fulcrum-service-bench-")),
        asks,
        reference_actions(policies, asks),
        options.seconds,
        options.warmup,
        options.grpc_processes,
    )
    outcome = "interrupted"
    try:
        set_up(bench, policies, options.cerbos)
        print_summary(plan, run_rounds(bench, plan, options.rounds))
        print()
        outcome = "ok" if ledger_check(bench) else "error"
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
    except (RuntimeError, subprocess.TimeoutExpired, httpx.HTTPError, OSError) as exc:
        outcome = "error"
        print(f"\nerror: {exc}", file=sys.stderr)
    finally:
        with no_interrupts():
            if outcome == "error":
                for name in bench.stack.processes:
                    print(f"--- {name}.log, last lines but access lines ---")
                    print(bench.stack.log(name, 15))
                for server in bench.servers.values():
                    print(f"--- {server.name}: last lines of its log ---")
                    print(server.log(10))
            print()
            for server in bench.servers.values():
                server.stop()
            bench.stack.teardown()
            shutil.rmtree(bench.scratch, ignore_errors=True)
    print(f"total run time {time.perf_counter() - began:.0f} s", flush=True)
    return 0 if outcome == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
