"""Memory and latency of the decision path as tenants grow: 1, 1,000 and 10,000 tenants.

    .venv/bin/python benchmarks/tenants_bench.py [--tenants 1,1000,10000] [--seconds 20]
        [--warmup 5] [--concurrency 16] [--bundle-cache-mb 256]

The real stack of decision_path_bench.py (its ``Stack``: ``dev up``, migrations, events, a
``fulcrum api`` and a ``fulcrum worker`` with default settings, audit before answer), with the
API's bundle cache bound set by ``--bundle-cache-mb`` (``FULCRUM_BUNDLE_CACHE_MB``): by
default the product's default, 256 MiB, which holds about 1,200 of these tenants' bundles, so
1,000 tenants fit and 10,000 do not.

Tenants are added up to each count in turn, each with 20 active policies (100 rules: the
shared workload's two policies, the same for every tenant, and 18 of its own whose tools,
globs and regexes name the tenant, as real tenants' policies differ). Tenants are created
through the tenant service (``TenantService.create``, as ``fulcrum tenants create`` does: the
tenant, its owner key, its change record); their policies, 200,000 at 10,000 tenants, are
written in bulk as the superuser, with exactly the rows ``PolicyService.create`` and
``activate`` write (policies, policy_versions, one revision bump per activation, a
``policy.create`` and a ``policy.activate`` change each, and the worker's notification), each
document validated by the service's own ``validated_document``; rate limits are lifted as
``Stack.lift_limits`` does. A sample of tenants is then read back through the REST API.
The worker relays the change records to the ledger; measurements wait until it has.

For each count the API is restarted (a cold cache, a fresh process); ``--concurrency``
callers (httpx, one asyncio loop, a separate process) first send one decision per tenant (so
every tenant's first load is behind us), then REST decisions for ``--warmup`` and then
``--seconds`` measured, each to a tenant drawn uniformly (with that tenant's key) with an ask
of the shared workload; every answer must be a 200 with the expected action. Printed per
count: the API's RSS (VmRSS of its process tree) before and after, its peak (VmHWM), the
cached bundles and their estimated bytes, and the bundle loads, evictions and API-key
lookups of the measured seconds (from the metrics port), req/s, p50, p99 and p99 over the
1-tenant p99.

A benchmark, not a test: the load generator shares the machine's cores with the servers.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import signal
import ssl
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from decision_path_bench import (  # sibling modules: this file runs as a script
    MAX_ERROR_RATE,
    ROOT,
    Door,
    drive,
    workload,
)
from stack import REQUEST_TIMEOUT, Stack, machine, no_interrupts, on_sigterm, say
from workload import POLICIES

POLICIES_PER_TENANT = 20
FILLERS = POLICIES_PER_TENANT - len(POLICIES)
SAMPLE_CHECKS = 3
SEED = 7


# --- the tenants' policies -------------------------------------------------------------------


def own_policy(tag: int, n: int) -> dict[str, Any]:
    """One of a tenant's own policies: tools the shared workload never asks for, so every
    tenant answers the workload as decision_path_bench.py expects."""
    tool = f"t{tag}-svc{n}"
    rules: list[dict[str, Any]] = [
        {
            "id": "no-exports",
            "target": {"tools": [f"{tool}.export", f"{tool}.dump"]},
            "when": {"field": "context.env", "op": "eq", "value": "prod"},
            "action": "deny",
            "reason": f"{tool}: no exports from production",
        },
        {
            "id": "big-refunds",
            "target": {"tools": [f"{tool}.refund"]},
            "when": {"field": "tool.args.amount", "op": "gt", "value": 100 + n},
            "action": "require_approval",
            "reason": "large refunds are approved first",
        },
        {
            "id": "secrets",
            "target": {"tools": [f"{tool}.*"]},
            "when": {
                "field": "tool.args.body",
                "op": "regex",
                "value": rf"(?i)(password|secret|api[_-]?key|t{tag}-token)\s*[:=]",
            },
            "action": "escalate",
            "reason": "the body looks like it holds a secret",
        },
        {
            "id": "admin",
            "target": {"tools": [f"{tool}.admin.*"]},
            "when": {"field": "agent.roles", "op": "contains", "value": "admin"},
            "action": "warn",
            "reason": "an admin call",
        },
        {
            "id": "reads",
            "target": {"tools": [f"{tool}.get", f"{tool}.list"]},
            "action": "allow",
            "reason": "reads are fine",
        },
    ]
    if n < 5:  # 95 rules so far: five policies get a sixth, for 100
        rules.append(
            {
                "id": "night",
                "target": {"tools": [f"{tool}.batch"]},
                "when": {"field": "context.window", "op": "in", "value": ["night", "weekend"]},
                "action": "allow",
                "reason": "batch jobs run off hours",
            }
        )
    return {"name": f"{tool} guardrails", "priority": n % 7, "rules": rules}


def tenant_policies(tag: int) -> list[dict[str, Any]]:
    return [*POLICIES, *(own_policy(tag, n) for n in range(FILLERS))]


# --- seeding (a child process in the checkout's Python: --seed FIRST COUNT FILE) --------------


async def seed(first: int, count: int, out: Path) -> None:
    """Tenants ``first`` .. ``first + count - 1`` with their policies; their ids and owner
    keys are appended to ``out`` as JSON lines."""
    import psycopg

    from fulcrum.admin import operator
    from fulcrum.audit.repository import CHANGES_CHANNEL
    from fulcrum.devstack.postgres import Postgres
    from fulcrum.kit.config import Service, load_settings
    from fulcrum.kit.db import Database
    from fulcrum.kit.secrets import Secrets
    from fulcrum.kit.tracing import new_trace
    from fulcrum.policies.documents import validated_document
    from fulcrum.tenants.service import TenantService

    settings = load_settings()
    db = Database(settings, Service.ADMIN)
    await db.open()
    service = TenantService(db, Secrets(settings, Service.ADMIN).require("key_pepper"))
    slots = asyncio.Semaphore(settings.database_pool_size - 2)

    async def create(index: int) -> tuple[int, uuid.UUID, str, str]:
        async with slots:
            tenant, issued = await service.create(operator(), name=f"tenants-bench-{index}")
        return index, tenant.id, issued.key.id, issued.secret

    try:
        created = await asyncio.gather(*(create(i) for i in range(first, first + count)))
    finally:
        await db.close()

    policies, versions, changes = [], [], []
    for index, tenant_id, key_id, _ in created:
        actor = f"key:{key_id}"  # what the service records for the tenant's owner key
        for raw in tenant_policies(index):
            doc = validated_document(raw)
            policy_id = uuid.uuid4()
            policies.append((tenant_id, policy_id, doc.name, "active", doc.mode, doc.priority, 1))
            versions.append((tenant_id, policy_id, 1, json.dumps(doc.document), actor))
            draft = {"version": 1, "status": "draft", "name": doc.name}
            for action, details in (
                ("policy.create", {"before": None, "after": draft}),
                ("policy.activate", {"before": draft, "after": {**draft, "status": "active"}}),
            ):
                changes.append(
                    (
                        tenant_id,
                        new_trace().trace_id,
                        actor,
                        action,
                        "policy",
                        str(policy_id),
                        json.dumps(details),
                    )
                )
    tenant_ids = [tenant_id for _, tenant_id, _, _ in created]
    with psycopg.connect(Postgres(settings).superuser_dsn(settings.database_name)) as su:
        su.execute("SELECT fulcrum_operator_begin()")  # as the platform, like lift_limits
        with su.cursor() as cur:
            with cur.copy(
                "COPY policies (tenant_id, id, name, status, mode, priority, current_version) "
                "FROM STDIN"
            ) as copy:
                for row in policies:
                    copy.write_row(row)
            with cur.copy(
                "COPY policy_versions (tenant_id, policy_id, version, document, author) FROM STDIN"
            ) as copy:
                for row in versions:
                    copy.write_row(row)
            with cur.copy(
                "COPY audit_events (tenant_id, trace_id, actor, action, resource_type, "
                "resource_id, details) FROM STDIN"
            ) as copy:
                for row in changes:
                    copy.write_row(row)
            # One bump per activation, as PolicyService.set_status does.
            cur.execute(
                "UPDATE tenants SET policy_revision = policy_revision + %(n)s, "
                "plan = 'enterprise', rate_limit_per_second = %(rate)s, "
                "rate_limit_burst = %(burst)s, key_rate_limit_per_second = %(rate)s, "
                "key_rate_limit_burst = %(burst)s WHERE id = ANY(%(ids)s)",
                {
                    "n": POLICIES_PER_TENANT,
                    "rate": 1_000_000.0,
                    "burst": 10_000_000,
                    "ids": tenant_ids,
                },
            )
            cur.execute(
                "SELECT pg_notify(%s, t::text) FROM unnest(%s::uuid[]) AS t",
                (CHANGES_CHANNEL, tenant_ids),
            )
    with out.open("a") as fh:
        for index, tenant_id, _, secret in created:
            fh.write(json.dumps({"index": index, "id": str(tenant_id), "key": secret}) + "\n")


class Tenants:
    """The benchmark's tenants on one stack, added in bulk."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.file = stack.home / "bench-tenants.jsonl"
        self.count = 0

    def grow(self, target: int) -> None:
        if target <= self.count:
            return
        began = time.perf_counter()
        step = 2000  # per child: bounded memory, and progress to print
        while self.count < target:
            count = min(step, target - self.count)
            self.stack.run(
                str(Path(__file__).resolve()),
                "--seed",
                json.dumps([self.count, count, str(self.file)]),
                program="python",
                timeout=600,
            )
            self.count += count
            say(f"{self.count:,} tenants ({time.perf_counter() - began:.0f} s)")

    def read(self, count: int) -> list[dict[str, Any]]:
        lines = self.file.read_text().splitlines()[:count]
        return [json.loads(line) for line in lines]


def wait_relayed(stack: Stack, dsn: str, timeout: float = 1800) -> None:
    """Until the worker has put every change record in the ledger (so it idles while we
    measure the API)."""
    import psycopg

    began = time.monotonic()
    last = -1
    with psycopg.connect(dsn, autocommit=True) as su:
        while True:
            row = su.execute(
                "SELECT count(*) FROM audit_events e WHERE NOT EXISTS (SELECT 1 FROM "
                "audit_records r WHERE r.tenant_id = e.tenant_id AND r.event_id = e.id)"
            ).fetchone()
            left = int(row[0]) if row else 0
            if left == 0:
                say(f"ledger caught up ({time.monotonic() - began:.0f} s)")
                return
            if time.monotonic() - began > timeout:
                raise RuntimeError(f"{left:,} change records not in the ledger after {timeout} s")
            if left != last and (last < 0 or last - left > 20_000):
                say(f"worker relaying the change records: {left:,} left")
                last = left
            stack.check_alive()
            time.sleep(2)


def check_sample(stack: Stack, tenants: list[dict[str, Any]]) -> None:
    """Read a sample of tenants' policies back through the REST API: the seeded rows must be
    what the service would show, and decide as the workload expects."""
    rng = random.Random(SEED)  # noqa: S311 - a sample, not a secret
    asks = workload()
    from fulcrum.policies.documents import validated_document

    for tenant in rng.sample(tenants, min(SAMPLE_CHECKS, len(tenants))):
        with httpx.Client(
            base_url=stack.base_url,
            verify=ssl.create_default_context(cafile=str(stack.ca_file)),
            headers={"authorization": f"Bearer {tenant['key']}"},
            timeout=REQUEST_TIMEOUT,
        ) as client:
            listed = client.get("/v1/policies", params={"status": "active", "page_size": 100})
            if listed.status_code != 200:
                raise RuntimeError(f"list policies: {listed.status_code} {listed.text[:300]}")
            got = sorted(
                json.dumps(p["document"], sort_keys=True) for p in listed.json()["policies"]
            )
            wanted = sorted(
                json.dumps(validated_document(raw).document, sort_keys=True)
                for raw in tenant_policies(tenant["index"])
            )
            if got != wanted:
                raise RuntimeError(
                    f"tenant {tenant['index']}: {len(got)} active policies read back, "
                    f"not the {len(wanted)} written"
                )
            for ask in asks[:40]:
                answer = client.post(
                    "/v1/decisions",
                    content=ask.rest_body(),
                    headers={"content-type": "application/json"},
                )
                action = answer.json().get("action") if answer.status_code == 200 else None
                if action != ask.expected:
                    raise RuntimeError(f"tenant {tenant['index']}: {answer.text[:300]}")
    say(f"{min(SAMPLE_CHECKS, len(tenants))} sample tenants read back over REST: 20 policies each")


# --- the load (a child process: --load SPEC) -------------------------------------------------


@dataclass(frozen=True)
class LoadSpec:
    base_url: str
    ca_file: str
    tenants_file: str
    tenants: int
    metrics_url: str
    seconds: float
    warmup: float
    concurrency: int


@dataclass(frozen=True)
class Result:
    n: int
    errors: int
    wall: float
    p50_ms: float
    p99_ms: float
    error_samples: list[str]
    prime_seconds: float  # one decision for each tenant, before the warm-up
    prime_failures: int  # of those, failed twice
    metrics: dict[str, float]  # the API's, during the measurement

    @property
    def rate(self) -> float:
        return self.n / self.wall


class TenantsDoor(Door):
    """REST decisions, each for a tenant drawn uniformly and an ask of the workload; first
    (``priming``) one for each tenant in turn."""

    PAIRS = 200_000

    def __init__(self, spec: LoadSpec, *, priming: bool = False) -> None:
        lines = Path(spec.tenants_file).read_text().splitlines()[: spec.tenants]
        keys = [json.loads(line)["key"] for line in lines]
        asks = workload()
        rng = random.Random(SEED)  # noqa: S311 - a reproducible workload, not a secret
        self.pairs = len(keys) if priming else self.PAIRS
        self.client = httpx.AsyncClient(
            base_url=spec.base_url,
            http1=True,
            http2=False,
            verify=ssl.create_default_context(cafile=spec.ca_file),
            limits=httpx.Limits(
                max_connections=spec.concurrency, max_keepalive_connections=spec.concurrency
            ),
            timeout=REQUEST_TIMEOUT,
        )
        self.requests = []
        for index in range(self.pairs):
            ask = asks[rng.randrange(len(asks))]
            key = keys[index] if priming else keys[rng.randrange(len(keys))]
            headers = {
                "authorization": f"Bearer {key}",
                "content-type": "application/json",
            }
            self.requests.append((ask.rest_body(), headers, ask.expected))

    async def ask(self, index: int) -> str | None:
        body, headers, expected = self.requests[index]
        response = await self.client.post("/v1/decisions", content=body, headers=headers)
        if response.status_code != 200:
            return f"HTTP {response.status_code}: {response.text}"
        action = json.loads(response.content).get("action")
        if action != expected:
            return f"action {action!r}, expected {expected!r}"
        return None

    async def close(self) -> None:
        await self.client.aclose()


async def prime(spec: LoadSpec) -> tuple[float, int]:
    """One decision for every tenant, ``concurrency`` at a time: each tenant's first load is
    done before the warm-up (what fits in the cache then stays; the rest is evicted).
    Returns the time it took and the decisions that failed (each tried twice)."""
    door = TenantsDoor(spec, priming=True)
    began = time.perf_counter()
    failed = 0
    try:
        slots = asyncio.Semaphore(spec.concurrency)

        async def one(index: int) -> None:
            nonlocal failed
            for _ in range(2):
                async with slots:
                    try:
                        problem = await door.ask(index)
                    except httpx.HTTPError as exc:
                        problem = f"{type(exc).__name__}: {exc}"
                if problem is None:
                    return
                print(f"priming tenant {index}: {problem[:300]}", file=sys.stderr)
            failed += 1

        await asyncio.gather(*(one(i) for i in range(door.pairs)))
    finally:
        await door.close()
    if failed > MAX_ERROR_RATE * door.pairs:
        raise RuntimeError(f"priming: {failed} of {door.pairs} tenants failed twice")
    return time.perf_counter() - began, failed


async def api_metrics(url: str) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=5) as client:
        return parse_metrics((await client.get(url)).text)


async def measure(spec: LoadSpec) -> Result:
    primed, prime_failures = await prime(spec)
    door = TenantsDoor(spec)
    try:
        await drive(door, spec.concurrency, door.PAIRS, spec.warmup)
        before = await api_metrics(spec.metrics_url)
        tally, wall = await drive(door, spec.concurrency, door.PAIRS, spec.seconds)
        after = await api_metrics(spec.metrics_url)
    finally:
        await door.close()
    ordered = sorted(tally.samples)
    during = {name: after[name] - before[name] for name in COUNTERS}
    during.update({name: after[name] for name in GAUGES})
    if not ordered:
        return Result(
            tally.errors,
            tally.errors,
            wall,
            0.0,
            0.0,
            tally.error_samples,
            primed,
            prime_failures,
            during,
        )
    return Result(
        n=len(ordered) + tally.errors,
        errors=tally.errors,
        wall=wall,
        p50_ms=ordered[len(ordered) // 2] / 1e6,
        p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1e6,
        error_samples=tally.error_samples,
        prime_seconds=primed,
        prime_failures=prime_failures,
        metrics=during,
    )


def run_load(spec: LoadSpec) -> Result:
    done = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--load",
            json.dumps(dataclasses.asdict(spec)),
        ],
        capture_output=True,
        text=True,
        timeout=spec.seconds + spec.warmup + spec.tenants * 0.2 + 4 * REQUEST_TIMEOUT + 120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load process exited {done.returncode}:\n{done.stderr[-3000:]}")
    for line in done.stderr.splitlines()[:10]:
        print(f"      {line}", file=sys.stderr)
    return Result(**json.loads(done.stdout))


# --- the API process: memory and metrics -----------------------------------------------------


def tree_rss(pid: int, field: str = "VmRSS") -> int:
    """``field`` (VmRSS, or VmHWM: the peak) of ``pid`` and its descendants, in bytes."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        pending.extend(children.get(current, []))
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith(f"{field}:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


GAUGES = ("fulcrum_bundle_cache_bundles", "fulcrum_bundle_cache_bytes")
COUNTERS = (
    "fulcrum_bundle_loads_total",
    "fulcrum_bundle_cache_evictions_total",
    "fulcrum_auth_key_lookups_total",
)


def parse_metrics(text: str) -> dict[str, float]:
    """The API's metrics this benchmark prints, each summed over its labels."""
    values = dict.fromkeys((*GAUGES, *COUNTERS), 0.0)
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in values and not line.startswith("#"):
            values[name] += float(line.rsplit(" ", 1)[1])
    return values


def metrics_url(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.env['FULCRUM_METRICS_PORT']}/metrics"


def restart_api(stack: Stack) -> int:
    proc = stack.processes["api"]
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    stack.start("api")
    stack.wait_ready(
        "api", f"{stack.base_url}/readyz", ssl.create_default_context(cafile=str(stack.ca_file))
    )
    return stack.processes["api"].pid


# --- the run ---------------------------------------------------------------------------------

HEADER = (
    f"{'tenants':>7} {'RSS before':>10} {'RSS after':>9} {'RSS peak':>8} {'bundles':>7} "
    f"{'est. MiB':>8} "
    f"{'loads':>6} {'evicted':>7} {'key reads':>9} {'requests':>8} {'errors':>6} "
    f"{'req/s':>6} {'p50 ms':>7} {'p99 ms':>7} {'p99/1':>6}"
)


def mib(value: float) -> str:
    return f"{value / 1024**2:,.0f} MiB"


@dataclass(frozen=True)
class Row:
    tenants: int
    rss_before: int
    rss_after: int
    rss_peak: int
    result: Result

    def line(self, baseline_p99: float) -> str:
        r, m = self.result, self.result.metrics
        return (
            f"{self.tenants:>7,} {mib(self.rss_before):>10} {mib(self.rss_after):>9} "
            f"{mib(self.rss_peak):>8} {m['fulcrum_bundle_cache_bundles']:>7,.0f} "
            f"{m['fulcrum_bundle_cache_bytes'] / 1024**2:>8,.1f} "
            f"{m['fulcrum_bundle_loads_total']:>6,.0f} "
            f"{m['fulcrum_bundle_cache_evictions_total']:>7,.0f} "
            f"{m['fulcrum_auth_key_lookups_total']:>9,.0f} "
            f"{r.n:>8,} {r.errors:>6} {r.rate:>6,.0f} {r.p50_ms:>7.2f} "
            f"{r.p99_ms:>7.2f} {r.p99_ms / baseline_p99:>6.2f}"
        )


def measure_count(stack: Stack, tenants: Tenants, count: int, options: argparse.Namespace) -> Row:
    """A fresh API process, then the load over the first ``count`` tenants."""
    pid = restart_api(stack)
    rss_before = tree_rss(pid)
    result = run_load(
        LoadSpec(
            base_url=stack.base_url,
            ca_file=str(stack.ca_file),
            tenants_file=str(tenants.file),
            tenants=count,
            metrics_url=metrics_url(stack),
            seconds=options.seconds,
            warmup=options.warmup,
            concurrency=options.concurrency,
        )
    )
    rss_after, rss_peak = tree_rss(pid), tree_rss(pid, "VmHWM")
    stack.check_alive()
    say(
        f"{count:,} tenants primed in {result.prime_seconds:.0f} s "
        f"({result.prime_failures} failed twice), then measured"
    )
    for sample in result.error_samples:
        print(f"      error: {sample}", file=sys.stderr)
    if result.errors > MAX_ERROR_RATE * result.n:
        raise RuntimeError(f"{result.errors} errors in {result.n} requests; aborting")
    return Row(count, rss_before, rss_after, rss_peak, result)


def run(stack: Stack, counts: list[int], options: argparse.Namespace) -> None:
    stack.up()
    dsn = stack.superuser_dsn()
    tenants = Tenants(stack)
    rows: list[Row] = []
    for count in counts:
        tenants.grow(count)
        wait_relayed(stack, dsn)
        check_sample(stack, tenants.read(count))
        rows.append(measure_count(stack, tenants, count, options))
        print(f"{HEADER}\n{rows[-1].line(rows[0].result.p99_ms)}", flush=True)
    title = "Summary"
    print(f"\n{title}\n{'=' * len(title)}\n{HEADER}\n{'-' * len(HEADER)}")
    for row in rows:
        print(row.line(rows[0].result.p99_ms))
    print(
        "RSS: VmRSS of the API process (and its children) after its restart and after the "
        "load; peak: VmHWM. bundles, est. MiB: the bundle cache's gauges after the load (bound "
        f"{options.bundle_cache_mb:g} MiB). loads, evicted, key reads: during the measured "
        "seconds (not the priming, one decision per tenant, nor the warm-up). p99/1: over the "
        "first row's p99."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", default="1,1000,10000", help="tenant counts, in order")
    parser.add_argument("--seconds", type=float, default=20.0, help="per measurement")
    parser.add_argument("--warmup", type=float, default=5.0, help="uncounted load before it")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--bundle-cache-mb", type=float, default=256.0, help="FULCRUM_BUNDLE_CACHE_MB of the API"
    )
    parser.add_argument("--seed", help=argparse.SUPPRESS)  # child processes
    parser.add_argument("--load", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.seed:
        first, count, out = json.loads(options.seed)
        asyncio.run(seed(first, count, Path(out)))
        return 0
    if options.load:
        result = asyncio.run(measure(LoadSpec(**json.loads(options.load))))
        print(json.dumps(dataclasses.asdict(result)))
        return 0

    counts = [int(c) for c in options.tenants.split(",")]
    signal.signal(signal.SIGTERM, on_sigterm)
    print(machine(), flush=True)
    print(
        f"plan: tenants {', '.join(f'{c:,}' for c in counts)} x {POLICIES_PER_TENANT} policies; "
        f"REST c={options.concurrency}, {options.seconds:g} s after {options.warmup:g} s "
        f"warm-up; FULCRUM_BUNDLE_CACHE_MB={options.bundle_cache_mb:g}",
        flush=True,
    )
    began = time.perf_counter()
    stack = Stack("A", ROOT)
    stack.env["FULCRUM_BUNDLE_CACHE_MB"] = f"{options.bundle_cache_mb:g}"
    outcome = "interrupted"
    try:
        run(stack, counts, options)
        outcome = "ok"
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        outcome = "error"
        print(f"\nerror: {exc}", file=sys.stderr)
        for name in stack.processes:
            print(f"--- {name}.log, last lines but access lines ---")
            print(stack.log(name, 15))
    finally:
        with no_interrupts():
            stack.teardown()
    print(f"total run time {time.perf_counter() - began:.0f} s", flush=True)
    return 0 if outcome == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
