"""The decision path through the real servers, for one checkout or two side by side.

    .venv/bin/python benchmarks/decision_path_bench.py [--against /other/checkout]
        [--rounds 5] [--seconds 10]

For each checkout (this one, "A", and the one given with ``--against``, "B"; each has its own
``.venv`` and ``src/``), it starts that checkout's stack with that checkout's ``fulcrum``
command line, as subprocesses, in a temporary home on free ports: ``dev up`` (PostgreSQL,
Redis, NATS; mTLS), ``db migrate``, ``events setup``, ``tenants create``; the tenant is moved
to the enterprise plan with rate limits far above anything this machine can send (SQL as the
superuser, as the platform: ``fulcrum_operator_begin()``); then ``fulcrum api`` and ``fulcrum
worker`` (audit before answer, the default) start, and the policy set of ledger_bench.py is
created and activated over REST (a deny regex, require_approval, a warn on cost, allowed
reads and a shadow policy).

Load comes from a separate process per (checkout, round), one asyncio loop, connections kept
alive: REST ``POST /v1/decisions`` (httpx, HTTP/1.1, TLS trusting the stack's CA) with 1 and
16 concurrent callers, then gRPC ``fulcrum.v1.DecisionService/Evaluate`` (one TLS channel)
with 16. The requests cycle through a fixed seeded set of 200; every answer must be a 200 / OK
with the action this policy set gives that request, and a measurement with more than 1% of
errors aborts the run. Each measurement has a short warm-up that is not counted.

Rounds interleave the checkouts (A, B, A, B, ...): both stacks stay up, one is under load at a
time. It prints every round, then per (checkout, door, concurrency) the medians over rounds of
req/s, p50 and p99 latency, and B/A. Everything is torn down at the end, on errors and on
Ctrl-C. A benchmark, not a test: the client shares the machine's cores with the servers (its
CPU share is printed), and the figures move with whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import re
import signal
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

# Sibling modules: this file runs as a script.
from stack import (
    REQUEST_TIMEOUT,
    Stack,
    describe_checkout,
    loadavg,
    machine,
    no_interrupts,
    on_sigterm,
)
from workload import POLICIES, QUERIES, TOOLS, Ask

ROOT = Path(__file__).resolve().parent.parent

WORKLOAD_SIZE = 200
WORKLOAD_SEED = 11
MAX_ERROR_RATE = 0.01
# (door, concurrent callers), in the order each round measures them.
PLAN: tuple[tuple[str, int], ...] = (("rest", 1), ("rest", 16), ("grpc", 16))

SEVERITY = ["allow", "warn", "escalate", "require_approval", "deny"]


# --- the workload ----------------------------------------------------------------------------


def expected_action(tool: str, query: str | None, env: str, cost: float | None) -> str:
    """What POLICIES decide: the most severe matching enforced rule, else the tenant's
    default (deny). The shadow policy never changes the action."""
    matched = []
    if tool in ("db.query", "db.exec") and re.search(r"(?i)drop\s+table|truncate", query or ""):
        matched.append("deny")
    if tool in ("db.exec", "files.write") and env == "prod":
        matched.append("require_approval")
    if cost is not None and cost > 50:
        matched.append("warn")
    if tool in ("files.read", "db.query", "http.get"):
        matched.append("allow")
    return max(matched, key=SEVERITY.index) if matched else "deny"


def workload(count: int = WORKLOAD_SIZE, seed: int = WORKLOAD_SEED) -> list[Ask]:
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not a secret
    asks = []
    for _ in range(count):
        tool = rng.choice(TOOLS)
        args: dict[str, Any] = {"limit": rng.randint(1, 1000)}
        query = None
        if tool.startswith("db."):
            query = args["query"] = rng.choice(QUERIES)
        elif tool.startswith("files."):
            args["path"] = f"/srv/data/{rng.randrange(10_000)}.json"
        else:
            args["url"] = f"https://api.example.com/v1/items/{rng.randrange(10_000)}"
        env = rng.choice(["prod", "staging", "dev"])
        cost = rng.choice([None, 1.0, 20.0, 200.0])
        asks.append(
            Ask(
                tool=tool,
                args=args,
                agent=f"agent-{rng.randrange(50)}",
                roles=rng.sample(["reader", "writer", "dba", "analyst"], 2),
                transport=rng.choice(["mcp", "http", "grpc"]),
                model=rng.choice(["claude-sonnet", "gpt-4o", ""]),
                cost=cost,
                context={"env": env},
                expected=expected_action(tool, query, env, cost),
            )
        )
    return asks


# --- the load (a child process: python decision_path_bench.py --load SPEC) -------------------


@dataclass(frozen=True)
class LoadSpec:
    base_url: str
    grpc_target: str
    ca_file: str
    key: str
    seconds: float
    warmup: float


@dataclass(frozen=True)
class Measured:
    door: str
    concurrency: int
    n: int
    errors: int
    wall: float
    client_cpu: float  # the load process's CPU time over wall time
    p50_ms: float
    p99_ms: float
    error_samples: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.n / self.wall

    @property
    def error_rate(self) -> float:
        return self.errors / max(self.n, 1)


@dataclass
class Tally:
    samples: list[int] = field(default_factory=list)  # ns, answered correctly
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(what[:300])


class Door:
    """Sends ask ``index`` and says what went wrong, or None when the answer is right."""

    async def ask(self, index: int) -> str | None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class RestDoor(Door):
    def __init__(self, spec: LoadSpec, asks: Sequence[Ask], concurrency: int) -> None:
        self.client = httpx.AsyncClient(
            base_url=spec.base_url,
            http1=True,
            http2=False,
            verify=ssl.create_default_context(cafile=spec.ca_file),
            headers={"authorization": f"Bearer {spec.key}", "content-type": "application/json"},
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            timeout=REQUEST_TIMEOUT,
        )
        self.bodies = [ask.rest_body() for ask in asks]
        self.expected = [ask.expected for ask in asks]

    async def ask(self, index: int) -> str | None:
        response = await self.client.post("/v1/decisions", content=self.bodies[index])
        if response.status_code != 200:
            return f"HTTP {response.status_code}: {response.text}"
        action = json.loads(response.content).get("action")
        if action != self.expected[index]:
            return f"ask {index}: action {action!r}, expected {self.expected[index]!r}"
        return None

    async def close(self) -> None:
        await self.client.aclose()


class GrpcDoor(Door):
    def __init__(self, spec: LoadSpec, asks: Sequence[Ask]) -> None:
        import grpc

        from fulcrum.pb.v1 import decisions_pb2, decisions_pb2_grpc

        self.grpc = grpc
        credentials = grpc.ssl_channel_credentials(
            root_certificates=Path(spec.ca_file).read_bytes()
        )
        self.channel = grpc.aio.secure_channel(spec.grpc_target, credentials)
        self.stub = decisions_pb2_grpc.DecisionServiceStub(self.channel)
        self.metadata = (("authorization", f"Bearer {spec.key}"),)
        self.requests = [ask.grpc_request() for ask in asks]
        self.expected = [
            decisions_pb2.DecisionAction.Value(f"DECISION_ACTION_{ask.expected.upper()}")
            for ask in asks
        ]

    async def ask(self, index: int) -> str | None:
        try:
            answer = await self.stub.Evaluate(
                self.requests[index], metadata=self.metadata, timeout=REQUEST_TIMEOUT
            )
        except self.grpc.aio.AioRpcError as exc:
            return f"gRPC {exc.code().name}: {exc.details()}"
        if answer.decision.action != self.expected[index]:
            return f"ask {index}: action {answer.decision.action}, expected {self.expected[index]}"
        return None

    async def close(self) -> None:
        await self.channel.close(None)


async def drive(door: Door, concurrency: int, count: int, seconds: float) -> tuple[Tally, float]:
    """``concurrency`` callers, each asking in turn until ``seconds`` have passed; returns
    the tally and the wall time until the last answer."""
    tally = Tally()
    clock = time.perf_counter_ns
    deadline = clock() + int(seconds * 1e9)
    stride = max(count // concurrency, 1)

    async def caller(offset: int) -> None:
        index = offset * stride
        while clock() < deadline:
            before = clock()
            try:
                problem = await door.ask(index % count)
            except Exception as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if problem is None:
                tally.samples.append(clock() - before)
            else:
                tally.error(problem)
            index += 1

    began = clock()
    await asyncio.gather(*(caller(n) for n in range(concurrency)))
    return tally, (clock() - began) / 1e9


async def measure(spec: LoadSpec, door_name: str, concurrency: int) -> Measured:
    asks = workload()
    door: Door = RestDoor(spec, asks, concurrency) if door_name == "rest" else GrpcDoor(spec, asks)
    try:
        await drive(door, concurrency, len(asks), spec.warmup)  # connections, server caches
        cpu = time.process_time()
        tally, wall = await drive(door, concurrency, len(asks), spec.seconds)
        cpu = time.process_time() - cpu
    finally:
        await door.close()
    ordered = sorted(tally.samples)
    n = len(ordered) + tally.errors
    return Measured(
        door=door_name,
        concurrency=concurrency,
        n=n,
        errors=tally.errors,
        wall=wall,
        client_cpu=cpu / wall,
        p50_ms=ordered[len(ordered) // 2] / 1e6 if ordered else float("nan"),
        p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1e6
        if ordered
        else float("nan"),
        error_samples=tally.error_samples,
    )


def load_main(raw: str) -> int:
    spec = LoadSpec(**json.loads(raw))

    async def everything() -> list[Measured]:
        return [await measure(spec, door, concurrency) for door, concurrency in PLAN]

    try:
        results = asyncio.run(everything())
    except KeyboardInterrupt:
        return 130
    print(json.dumps([dataclasses.asdict(r) for r in results]))
    return 0


# --- one checkout's stack --------------------------------------------------------------------


def prepare(stack: Stack) -> None:
    """The stack up, with the ledger_bench policy set active and answering as expected."""
    began = time.perf_counter()
    stack.up("decision-bench")
    stack.install_policies(POLICIES)
    asks = workload()
    stack.settle([ask.rest_body() for ask in asks], [ask.expected for ask in asks])
    counts = {a: sum(ask.expected == a for ask in asks) for a in SEVERITY}
    stack.say(
        f"all {len(asks)} asks answered as expected "
        f"({', '.join(f'{a} {n}' for a, n in counts.items() if n)})"
    )
    stack.say(
        f"ready in {time.perf_counter() - began:.1f} s "
        f"(REST {stack.base_url}, gRPC :{stack.grpc_port})"
    )


def load_spec(stack: Stack, seconds: float, warmup: float) -> LoadSpec:
    return LoadSpec(
        base_url=stack.base_url,
        grpc_target=f"127.0.0.1:{stack.grpc_port}",
        ca_file=str(stack.ca_file),
        key=stack.key,
        seconds=seconds,
        warmup=warmup,
    )


# --- rounds and the summary ------------------------------------------------------------------


def run_load(stack: Stack, seconds: float, warmup: float) -> list[Measured]:
    spec = json.dumps(dataclasses.asdict(load_spec(stack, seconds, warmup)))
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--load", spec],
        capture_output=True,
        text=True,
        timeout=len(PLAN) * (seconds + warmup + 2 * REQUEST_TIMEOUT) + 60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load process exited {done.returncode}:\n{done.stderr[-3000:]}")
    raw: list[dict[str, Any]] = json.loads(done.stdout)
    return [Measured(**item) for item in raw]


ROUND_HEADER = (
    f"{'round':>5} {'checkout':<8} {'door':<5} {'conc':>4} {'requests':>9} {'errors':>6} "
    f"{'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'client CPU':>10} {'load1':>6}"
)


def print_round(index: int, label: str, result: Measured, load: str) -> None:
    print(
        f"{index:>5} {label:<8} {result.door:<5} {result.concurrency:>4} {result.n:>9,} "
        f"{result.errors:>6} {result.rate:>8,.0f} {result.p50_ms:>7.2f} {result.p99_ms:>7.2f} "
        f"{result.client_cpu:>10.0%} {load:>6}",
        flush=True,
    )


def check_errors(label: str, result: Measured) -> None:
    if result.errors:
        for sample in result.error_samples:
            print(f"      error: {sample}", file=sys.stderr)
    if result.error_rate > MAX_ERROR_RATE:
        raise RuntimeError(
            f"{label} {result.door} x{result.concurrency}: {result.errors} errors in "
            f"{result.n} requests ({result.error_rate:.1%} > {MAX_ERROR_RATE:.0%}); aborting"
        )


def print_summary(results: dict[str, list[list[Measured]]], labels: Sequence[str]) -> None:
    rounds = len(results[labels[0]])
    title = f"Summary: medians over {rounds} rounds of {', '.join(labels)}"
    print(f"\n{title}\n{'=' * len(title)}")
    header = f"{'door':<5} {'conc':>4} {'checkout':<8} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}"
    print(header)
    print("-" * len(header))
    for slot, (door, concurrency) in enumerate(PLAN):
        medians = {}
        for label in labels:
            per_round = [one_round[slot] for one_round in results[label]]
            medians[label] = (
                statistics.median(r.rate for r in per_round),
                statistics.median(r.p50_ms for r in per_round),
                statistics.median(r.p99_ms for r in per_round),
            )
            rate, p50, p99 = medians[label]
            print(f"{door:<5} {concurrency:>4} {label:<8} {rate:>8,.0f} {p50:>7.2f} {p99:>7.2f}")
        if len(labels) == 2:
            a, b = medians[labels[0]], medians[labels[1]]
            print(
                f"{door:<5} {concurrency:>4} {'B/A':<8} {b[0] / a[0]:>8.2f} "
                f"{b[1] / a[1]:>7.2f} {b[2] / a[2]:>7.2f}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", type=Path, help="another checkout to compare (B)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="uncounted load before each measurement"
    )
    parser.add_argument("--load", help=argparse.SUPPRESS)  # the child process
    options = parser.parse_args()
    if options.load:
        return load_main(options.load)

    signal.signal(signal.SIGTERM, on_sigterm)
    checkouts = {"A": ROOT}
    if options.against is not None:
        checkouts["B"] = options.against.resolve()
    print(machine(), flush=True)
    for label, path in checkouts.items():
        print(f"{label}: {describe_checkout(path)}")
    print(
        f"plan: {options.rounds} rounds x {len(checkouts)} checkouts x "
        f"{', '.join(f'{d} x{c}' for d, c in PLAN)}; {options.seconds:g} s each after a "
        f"{options.warmup:g} s warm-up; {WORKLOAD_SIZE} distinct requests (seed {WORKLOAD_SEED})",
        flush=True,
    )
    began = time.perf_counter()
    stacks: list[Stack] = []
    outcome = "interrupted"
    try:
        for label, path in checkouts.items():
            stacks.append(Stack(label, path))
            prepare(stacks[-1])
        results: dict[str, list[list[Measured]]] = {stack.label: [] for stack in stacks}
        print(f"\n{ROUND_HEADER}\n{'-' * len(ROUND_HEADER)}", flush=True)
        for index in range(1, options.rounds + 1):
            for stack in stacks:
                stack.check_alive()
                load = loadavg()
                measured = run_load(stack, options.seconds, options.warmup)
                for result in measured:
                    print_round(index, stack.label, result, load)
                    check_errors(stack.label, result)
                results[stack.label].append(measured)
        print_summary(results, [stack.label for stack in stacks])
        outcome = "ok"
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        outcome = "error"
        print(f"\nerror: {exc}", file=sys.stderr)
    finally:
        with no_interrupts():
            if outcome == "error":
                for stack in stacks:
                    for name in stack.processes:
                        print(f"--- {stack.label}: {name}.log, last lines but access lines ---")
                        print(stack.log(name, 15))
            print()
            for stack in reversed(stacks):
                stack.teardown()
    print(f"total run time {time.perf_counter() - began:.0f} s", flush=True)
    return 0 if outcome == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
