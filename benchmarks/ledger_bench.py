"""Audit ledger ingest and the cost of audit-before-answer, on a real dev stack.

    .venv/bin/python benchmarks/ledger_bench.py

Starts its own PostgreSQL, Redis and NATS (mTLS, free ports, a temporary home), migrates,
creates a tenant with a small active policy set, and always tears the stack down. From one
run it prints:

1. Worker ingest: ``LedgerWriter.write`` (chain head lock, dedupe, hashing, records,
   decision rows and roll-ups, head, checkpoint; one transaction per 1,000 events) for
   20,000 decision events made by the real path (engine -> ``decision_event`` -> ``decode``
   -> ``prepare``), against a plain insert of the same rows by the same
   ``repository.insert_records`` into scratch tables of the same columns, without chaining.
2. The added latency of audit before answer: ``DecisionService.evaluate`` with a real
   ``EventPublisher`` (JetStream ack) against the same service without one, sequential and
   with 64 concurrent callers.
3. The benchmark tenant's chain, verified from PostgreSQL at the end.

A benchmark, not a test: it prints figures and compares them with targets; nothing fails on
timing. It exits non-zero only when the setup is broken (e.g. the chain does not verify).

Fair comparison, chained vs plain. Both run on the same kind of connection: a pool of the
application role authenticated by the worker's client certificate over TLS, as the worker
connects (the superuser is reachable only over the unix socket, which would make the
baseline a different, cheaper connection). The scratch tables live in their own schemas
(``bench_bare``, ``bench_indexed``, ``bench_full``); the plain pools set ``search_path`` to
that schema, so the plain insert is the product's own ``repository.insert_records`` (and,
for ``bench_full``, ``insert_decisions``): the same statements, the same parameter
building, in one transaction of 1,000 rows. Its rows are the same events' entries and
sequence numbers, with random 32-byte hashes drawn before the clock starts.

- ``bench_full`` (the headline): the same rows the chained path writes, ledger rows and
  decision-series rows with their roll-ups, into tables with the same keys and indexes
  (``INCLUDING ALL``; no RLS, triggers or foreign keys): everything but the chaining.
- ``bench_indexed``: the ledger rows alone, with the same keys and indexes.
- ``bench_bare``: the ledger rows alone into a table without keys, indexes, RLS or triggers.

Chained and plain batches alternate, so checkpoints, autovacuum and WAL pressure fall on
both alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import random
import shutil
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from nats.aio.client import Client as NatsClient
from psycopg import AsyncConnection
from psycopg.conninfo import make_conninfo
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from fulcrum.admin import create_tenant
from fulcrum.audit import repository as repo
from fulcrum.audit.chain import chain, prepare
from fulcrum.audit.checkpoints import CheckpointSigner
from fulcrum.audit.records import GENESIS_HASH, LedgerRecord
from fulcrum.audit.verification import verify_tenant
from fulcrum.auth.principal import Principal, PrincipalKind
from fulcrum.auth.scopes import Scope
from fulcrum.container import checkpoint_verifier
from fulcrum.decisions.bundles import BundleCache
from fulcrum.decisions.service import DecisionInput, DecisionService, decision_event
from fulcrum.engine.model import DecisionRequest
from fulcrum.events.codec import DecisionRow, IncomingEvent, decode
from fulcrum.events.publisher import EventPublisher
from fulcrum.events.streams import STREAM, ensure_stream, stream_config
from fulcrum.kit.config import APP_ROLE, Service, Settings
from fulcrum.kit.db import Database, conninfo
from fulcrum.kit.logging import configure_logging
from fulcrum.kit.migrate import migrate
from fulcrum.kit.nats import connect_nats
from fulcrum.kit.secrets import Secrets
from fulcrum.policies.models import PolicyStatus
from fulcrum.policies.notify import PolicyChangeNotifier
from fulcrum.policies.service import PolicyService
from fulcrum.worker import writer as writer_module
from fulcrum.worker.writer import LedgerWriter

if TYPE_CHECKING:
    from tests.support.stack import LiveStack

ROOT = Path(__file__).resolve().parent.parent

N_EVENTS = 20_000
BATCH = 1_000  # the worker's fetch batch (LedgerConsumer batch=1000): one transaction each
WARMUP_BATCHES = 2  # per path, on a separate warm-up tenant
SEQUENTIAL = 2_000  # decisions per mode
SEQUENTIAL_BLOCK = 250  # modes alternate in blocks of this many
SEQUENTIAL_WARMUP = 200
CONCURRENCY = 64
PER_TASK = 50
CONCURRENT_WARMUP_PER_TASK = 5

TARGET_RATIO = 0.5
TARGET_RATE = 20_000.0

SCHEMAS = {
    # label -> (schema, LIKE options)
    "plain, bare table": ("bench_bare", "INCLUDING DEFAULTS"),
    "plain, same keys+indexes": ("bench_indexed", "INCLUDING ALL"),
    "plain, same rows (ledger + series)": ("bench_full", "INCLUDING ALL"),
}
# The chained path writes the ledger rows and the decision series rows; the baseline that
# writes exactly those rows, without chaining, is the fair one.
HEADLINE_PLAIN = "plain, same rows (ledger + series)"
WITH_SERIES = {"bench_full"}

# Phases of LedgerWriter.write, timed by wrapping the functions it calls (see PhaseTimer).
PHASES = (
    ("lock_head", "lock head (insert-if-absent + SELECT FOR UPDATE)"),
    ("existing_event_ids", "dedupe (SELECT event_id = ANY)"),
    ("chain", "chain() in Python: checks + RFC 8785 + SHA-256"),
    ("insert_records", "insert_records (audit_records, RLS, 4 indexes)"),
    ("insert_decisions", "insert_decisions (+ roll-ups upsert)"),
    ("set_head", "set_head (UPDATE)"),
    ("last_checkpoint", "last_checkpoint (SELECT)"),
    ("insert_checkpoint", "insert_checkpoint (its Ed25519 signing: in other)"),
)

POLICIES: list[dict[str, Any]] = [
    {
        "name": "bench guardrails",
        "priority": 10,
        "rules": [
            {
                "id": "no-destructive-sql",
                "target": {"tools": ["db.query", "db.exec"]},
                "when": {
                    "field": "tool.args.query",
                    "op": "regex",
                    "value": r"(?i)drop\s+table|truncate",
                },
                "action": "deny",
                "reason": "destructive SQL needs a human",
            },
            {
                "id": "prod-writes",
                "target": {"tools": ["db.exec", "files.write"]},
                "when": {"field": "context.env", "op": "eq", "value": "prod"},
                "action": "require_approval",
                "reason": "writes to production are approved first",
            },
            {
                "id": "expensive",
                "when": {"field": "cost.estimate", "op": "gt", "value": 50},
                "action": "warn",
                "reason": "costly call",
            },
            {
                "id": "reads",
                "target": {"tools": ["files.read", "db.query", "http.get"]},
                "action": "allow",
                "reason": "reads are fine",
            },
        ],
    },
    {
        "name": "bench candidate",
        "mode": "shadow",
        "rules": [
            {
                "id": "no-http",
                "target": {"tools": ["http.*"]},
                "action": "deny",
                "reason": "candidate: no outbound HTTP",
            },
        ],
    },
]
TOOLS = ["files.read", "files.write", "db.query", "db.exec", "http.get", "http.post", "mail.send"]
QUERIES = ["select * from orders where id = $1", "DROP TABLE users", "update t set x = 1"]


# --- statistics and printing -----------------------------------------------------------------


@dataclass
class Spent:
    """Wall time, and CPU time of this process (the client side: Python, psycopg, nats-py).
    CPU close to wall means the client, not PostgreSQL or NATS, is the bottleneck."""

    wall_ns: int = 0
    cpu_ns: int = 0

    @contextlib.contextmanager
    def timing(self) -> Iterator[None]:
        wall, cpu = time.perf_counter_ns(), time.process_time_ns()
        try:
            yield
        finally:
            self.wall_ns += time.perf_counter_ns() - wall
            self.cpu_ns += time.process_time_ns() - cpu

    @property
    def cpu_share(self) -> float:
        return self.cpu_ns / self.wall_ns


@dataclass(frozen=True)
class Latency:
    n: int
    mean_us: float
    p50_us: float
    p99_us: float
    rate: float  # completed per second of wall time
    cpu_us: float  # this process's CPU per decision

    @classmethod
    def of(cls, samples_ns: list[int], spent: Spent) -> Latency:
        ordered = sorted(samples_ns)
        n = len(ordered)
        return cls(
            n=n,
            mean_us=sum(ordered) / n / 1000,
            p50_us=ordered[n // 2] / 1000,
            p99_us=ordered[min(n - 1, int(n * 0.99))] / 1000,
            rate=n / (spent.wall_ns / 1e9),
            cpu_us=spent.cpu_ns / n / 1000,
        )


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def section(title: str) -> None:
    print(f"\n{title}\n{'=' * len(title)}")


# --- workload --------------------------------------------------------------------------------


def requests(count: int, seed: int) -> list[DecisionInput]:
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not a secret
    items = []
    for _ in range(count):
        tool = rng.choice(TOOLS)
        args: dict[str, Any] = {"limit": rng.randint(1, 1000)}
        if tool.startswith("db."):
            args["query"] = rng.choice(QUERIES)
        elif tool.startswith("files."):
            args["path"] = f"/srv/data/{rng.randrange(10_000)}.json"
        else:
            args["url"] = f"https://api.example.com/v1/items/{rng.randrange(10_000)}"
        request = DecisionRequest(
            tool_name=tool,
            agent_id=f"agent-{rng.randrange(50)}",
            agent_roles=tuple(rng.sample(["reader", "writer", "dba", "analyst"], 2)),
            tool_args=args,
            transport=rng.choice(["mcp", "http", "grpc"]),
            model_id=rng.choice(["claude-sonnet", "gpt-4o", ""]),
            cost_estimate=rng.choice([None, 1.0, 20.0, 200.0]),
            context={"env": rng.choice(["prod", "staging", "dev"])},
        )
        items.append(DecisionInput(request))
    return items


async def make_events(
    service: DecisionService, principal: Principal, tenant_id: uuid.UUID, count: int, seed: int
) -> tuple[list[IncomingEvent], float]:
    """``count`` events by the real path: engine decision -> protobuf -> decode -> prepare.

    Returns the events and the worker's per-event CPU for decode + prepare (microseconds),
    which the worker pays before ``write`` and which the ingest figure does not include."""
    outgoing = []
    for item in requests(count, seed):
        decision = await service.evaluate(principal, item)
        outgoing.append(decision_event(tenant_id, principal.actor, item, decision))
    started = time.perf_counter_ns()
    events = []
    for out in outgoing:
        event = decode(out.data)
        events.append(replace(event, entry=prepare(event.entry)))
    per_event_us = (time.perf_counter_ns() - started) / count / 1000
    return events, per_event_us


def batches(items: Sequence[IncomingEvent], size: int) -> list[Sequence[IncomingEvent]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# --- ingest ----------------------------------------------------------------------------------


class PhaseTimer:
    """Times the calls ``LedgerWriter.write`` makes, by wrapping the module attributes it
    looks up at call time (``repo.<fn>`` and the writer's ``chain``). Only in this process,
    only while ``enabled``; the wrappers add two clock reads per call (~10 per batch)."""

    def __init__(self) -> None:
        self.ns: defaultdict[str, int] = defaultdict(int)
        self.enabled = False

    def _async(self, name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            if not self.enabled:
                return await fn(*args, **kwargs)
            started = time.perf_counter_ns()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.ns[name] += time.perf_counter_ns() - started

        return timed

    def _sync(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not self.enabled:
                return fn(*args, **kwargs)
            started = time.perf_counter_ns()
            try:
                return fn(*args, **kwargs)
            finally:
                self.ns[name] += time.perf_counter_ns() - started

        return timed

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        saved: list[tuple[object, str, Any]] = []
        for name, _ in PHASES:
            # The writer calls ``chain`` by its own name and the rest as ``repo.<name>``.
            module: object = writer_module if name == "chain" else repo
            original = getattr(module, name)
            saved.append((module, name, original))
            wrap = self._sync if name == "chain" else self._async
            setattr(module, name, wrap(name, original))
        try:
            yield
        finally:
            for module, name, original in saved:
                setattr(module, name, original)


@dataclass
class IngestResult:
    chained: Spent
    plain: dict[str, Spent]
    phases: dict[str, int]
    written: int


async def create_scratch_tables(stack: LiveStack) -> None:
    """The plain baselines' tables, created by the superuser and granted to the app role."""
    async with await AsyncConnection.connect(stack.superuser_dsn(), autocommit=True) as conn:
        for schema, like in SCHEMAS.values():
            await conn.execute(f"CREATE SCHEMA {schema}")
            await conn.execute(
                f"CREATE TABLE {schema}.audit_records (LIKE public.audit_records {like})"
            )
            await conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {APP_ROLE}")
            await conn.execute(f"GRANT INSERT ON {schema}.audit_records TO {APP_ROLE}")
            if schema in WITH_SERIES:
                for table in ("decisions", "decision_rollups"):
                    await conn.execute(
                        f"CREATE TABLE {schema}.{table} (LIKE public.{table} {like})"
                    )
                    await conn.execute(
                        f"GRANT INSERT, UPDATE, SELECT ON {schema}.{table} TO {APP_ROLE}"
                    )


def plain_pool(settings: Settings, schema: str) -> AsyncConnectionPool[AsyncConnection[TupleRow]]:
    """The worker's kind of connection (app role, worker certificate, TLS), whose unqualified
    ``audit_records`` is the scratch table of ``schema``."""
    info = make_conninfo(
        conninfo(settings, Service.WORKER), options=f"-c search_path={schema},public"
    )
    return AsyncConnectionPool(info, min_size=1, max_size=1, open=False, name=f"bench-{schema}")


def series_of(events: Sequence[IncomingEvent]) -> list[DecisionRow]:
    return [e.decision for e in events if e.decision is not None]


def dummy_records(
    events: Sequence[IncomingEvent], first_seq: int, rng: random.Random
) -> list[LedgerRecord]:
    """The events as records with precomputed dummy hashes: what the baseline inserts."""
    return [
        LedgerRecord(e.entry, seq, rng.randbytes(32), rng.randbytes(32))
        for seq, e in enumerate(events, start=first_seq)
    ]


async def plain_insert(
    pool: AsyncConnectionPool[AsyncConnection[TupleRow]],
    records: Sequence[LedgerRecord],
    series: Sequence[DecisionRow] = (),
) -> None:
    async with pool.connection() as conn, conn.transaction():
        await repo.insert_records(conn, records)
        if series:
            tenant = str(series[0].tenant_id)
            await conn.execute("SELECT set_config('fulcrum.tenant_id', %s, true)", (tenant,))
            await repo.insert_decisions(conn, series)


async def ingest(
    settings: Settings,
    writer: LedgerWriter,
    tenant_id: uuid.UUID,
    events: Sequence[IncomingEvent],
    warmup: tuple[uuid.UUID, Sequence[IncomingEvent]],
) -> IngestResult:
    rng = random.Random(7)  # noqa: S311 - dummy hashes, not secrets
    pools = {label: plain_pool(settings, schema) for label, (schema, _) in SCHEMAS.items()}
    series_labels = {label for label, (schema, _) in SCHEMAS.items() if schema in WITH_SERIES}
    for pool in pools.values():
        await pool.open(wait=True)
    timer = PhaseTimer()
    try:
        # Warm-up on another tenant: TLS handshakes, plans, psycopg's prepared statements.
        warm_tenant, warm_events = warmup
        for index, chunk in enumerate(batches(warm_events, BATCH)):
            await writer.write(warm_tenant, chunk)
            for label, pool in pools.items():
                await plain_insert(
                    pool,
                    dummy_records(chunk, 1 + index * BATCH, rng),
                    series_of(chunk) if label in series_labels else (),
                )
        plain = {label: Spent() for label in pools}
        chained = Spent()
        written = 0
        with timer.installed():
            for index, chunk in enumerate(batches(events, BATCH)):
                records = dummy_records(chunk, 1 + index * BATCH, rng)
                # Alternate which path goes first, so neither always meets a fresh WAL segment.
                for label, pool in pools.items() if index % 2 else ():
                    with plain[label].timing():
                        await plain_insert(
                            pool, records, series_of(chunk) if label in series_labels else ()
                        )
                timer.enabled = True
                with chained.timing():
                    written += await writer.write(tenant_id, chunk)
                timer.enabled = False
                for label, pool in () if index % 2 else pools.items():
                    with plain[label].timing():
                        await plain_insert(
                            pool, records, series_of(chunk) if label in series_labels else ()
                        )
    finally:
        for pool in pools.values():
            await pool.close()
    return IngestResult(chained, plain, dict(timer.ns), written)


def chain_cpu_us(events: Sequence[IncomingEvent]) -> float:
    """Per-record cost of ``chain()`` alone, outside any transaction (pure CPU)."""
    entries = [e.entry for e in events[:5000]]
    started = time.perf_counter_ns()
    chain(entries, head_seq=0, head_hash=GENESIS_HASH)
    return (time.perf_counter_ns() - started) / len(entries) / 1000


def print_ingest(result: IngestResult, decode_us: float, chain_us: float) -> None:
    section(
        f"1-2. Ledger ingest: {N_EVENTS:,} decision events, {BATCH:,} per transaction, "
        "app role over mTLS"
    )
    rows = [("chained: LedgerWriter.write", result.chained)]
    rows += [(label, spent) for label, spent in result.plain.items()]
    header = f"{'path':<42} {'records/s':>10} {'ms/batch':>9} {'total s':>8} {'client CPU':>11}"
    print(header)
    print("-" * len(header))
    n_batches = N_EVENTS // BATCH
    for label, spent in rows:
        ns = spent.wall_ns
        print(
            f"{label:<42} {N_EVENTS / (ns / 1e9):>10,.0f} {ns / 1e6 / n_batches:>9.1f} "
            f"{ns / 1e9:>8.2f} {spent.cpu_share:>11.0%}"
        )
    chained = N_EVENTS / (result.chained.wall_ns / 1e9)
    rates = {label: N_EVENTS / (spent.wall_ns / 1e9) for label, spent in result.plain.items()}
    print()
    for label, rate in rates.items():
        ratio = chained / rate
        target = (
            f"target >= {TARGET_RATIO:.2f} x      {verdict(ratio >= TARGET_RATIO)}"
            if label == HEADLINE_PLAIN
            else "(for reference)"
        )
        print(f"chained / {label:<36} {ratio:>5.2f} x    {target}")
    print(
        f"chained rate                      {chained:>8,.0f} /s    "
        f"target >= {TARGET_RATE:,.0f} /s   {verdict(chained >= TARGET_RATE)}"
    )
    print(f"records written by the chained path: {result.written:,}")

    print(f"\nWhere a chained batch's time goes (mean per {BATCH:,}-event transaction):")
    header = f"{'phase':<52} {'ms/batch':>9} {'share':>6} {'µs/record':>10}"
    print(header)
    print("-" * len(header))
    total = result.chained.wall_ns
    accounted = 0
    for name, label in PHASES:
        ns = result.phases.get(name, 0)
        accounted += ns
        _phase_row(label, ns, total, n_batches)
    _phase_row(
        "other: BEGIN/set_config/COMMIT (WAL flush), glue", total - accounted, total, n_batches
    )
    print(
        f"\nworker CPU outside write() (not in the figures above): decode + prepare "
        f"{decode_us:.1f} µs/event; chain() alone, no database: {chain_us:.1f} µs/record "
        f"(a ceiling of {1e6 / chain_us:,.0f} records/s on one core)"
    )


def _phase_row(label: str, ns: int, total: int, n_batches: int) -> None:
    per_batch_ms = ns / 1e6 / n_batches
    print(
        f"{label:<52} {per_batch_ms:>9.1f} {ns / total:>6.1%} {per_batch_ms * 1000 / BATCH:>10.1f}"
    )


# --- audit before answer ---------------------------------------------------------------------


async def sequential(
    services: dict[str, DecisionService], principal: Principal, items: Sequence[DecisionInput]
) -> dict[str, Latency]:
    for service in services.values():
        for item in items[:SEQUENTIAL_WARMUP]:
            await service.evaluate(principal, item)
    samples: dict[str, list[int]] = {mode: [] for mode in services}
    spent = {mode: Spent() for mode in services}
    clock = time.perf_counter_ns
    for block in range(0, SEQUENTIAL, SEQUENTIAL_BLOCK):
        for mode, service in services.items():
            out = samples[mode]
            with spent[mode].timing():
                for i in range(block, block + SEQUENTIAL_BLOCK):
                    item = items[i % len(items)]
                    before = clock()
                    await service.evaluate(principal, item)
                    out.append(clock() - before)
    return {mode: Latency.of(samples[mode], spent[mode]) for mode in services}


async def concurrent(
    service: DecisionService,
    principal: Principal,
    items: Sequence[DecisionInput],
    per_task: int,
) -> Latency:
    samples: list[int] = []
    clock = time.perf_counter_ns

    async def caller(offset: int) -> None:
        for i in range(per_task):
            item = items[(offset * per_task + i) % len(items)]
            before = clock()
            await service.evaluate(principal, item)
            samples.append(clock() - before)

    spent = Spent()
    with spent.timing():
        await asyncio.gather(*(caller(task) for task in range(CONCURRENCY)))
    return Latency.of(samples, spent)


def print_latency(seq: dict[str, Latency], conc: dict[str, Latency], stored: int) -> None:
    section("3. Audit before answer: DecisionService.evaluate, in process")
    header = (
        f"{'run':<13} {'events':<22} {'n':>6} {'mean µs':>8} {'p50 µs':>8} {'p99 µs':>8} "
        f"{'decisions/s':>11} {'CPU µs/dec':>10}"
    )
    print(header)
    print("-" * len(header))
    names = {"off": "off (publisher=None)", "on": "on (JetStream ack)"}
    for title, results in (("sequential", seq), (f"{CONCURRENCY} x {PER_TASK}", conc)):
        for mode in ("off", "on"):
            r = results[mode]
            print(
                f"{title:<13} {names[mode]:<22} {r.n:>6,} {r.mean_us:>8.1f} {r.p50_us:>8.1f} "
                f"{r.p99_us:>8.1f} {r.rate:>11,.0f} {r.cpu_us:>10.1f}"
            )
    on, off = seq["on"], seq["off"]
    print()
    print(
        f"added per decision, sequential: mean +{on.mean_us - off.mean_us:,.1f} µs, "
        f"p50 +{on.p50_us - off.p50_us:,.1f} µs, p99 +{on.p99_us - off.p99_us:,.1f} µs"
    )
    print(
        f"throughput on/off: sequential {on.rate / off.rate:.2f} x, "
        f"{CONCURRENCY} concurrent {conc['on'].rate / conc['off'].rate:.2f} x; pipelining "
        f"(events on, {CONCURRENCY} concurrent / sequential): {conc['on'].rate / on.rate:.1f} x"
    )
    made = SEQUENTIAL_WARMUP + SEQUENTIAL + CONCURRENCY * (CONCURRENT_WARMUP_PER_TASK + PER_TASK)
    print(
        f"events stored in JetStream stream {STREAM}: {stored:,} "
        f"(decisions answered with events on, warm-ups included: {made:,})"
    )


# --- orchestration ---------------------------------------------------------------------------


async def setup_tenant(
    settings: Settings, policies: PolicyService, name: str
) -> tuple[uuid.UUID, Principal]:
    """A tenant with the bench policies active, and an API-key principal for it."""
    tenant, _ = await create_tenant(settings, name, None)
    principal = Principal(
        kind=PrincipalKind.API_KEY,
        scopes=frozenset({Scope.DECISIONS_EVALUATE, Scope.POLICIES_WRITE}),
        actor=f"key:{name}",
        tenant_id=tenant.id,
        key_id=name,
    )
    for document in POLICIES:
        created = await policies.create(principal, document)
        await policies.set_status(principal, str(created.id), PolicyStatus.ACTIVE)
    return tenant.id, principal


async def measure_ingest(
    settings: Settings,
    worker_db: Database,
    events_service: DecisionService,
    tenants: dict[str, tuple[uuid.UUID, Principal]],
) -> None:
    (tenant_id, principal), (warm_id, warm_principal) = tenants["bench"], tenants["warmup"]
    began = time.perf_counter()
    events, decode_us = await make_events(events_service, principal, tenant_id, N_EVENTS, 1)
    warm_events, _ = await make_events(
        events_service, warm_principal, warm_id, WARMUP_BATCHES * BATCH, 2
    )
    print(f"\nbuilt {len(events):,} events by the real path in {time.perf_counter() - began:.1f} s")
    signer = CheckpointSigner(Secrets(settings).require("audit_signing_key").get())
    writer = LedgerWriter(
        worker_db,
        signer,
        checkpoint_every_records=settings.checkpoint_every_records,
        checkpoint_every_seconds=settings.checkpoint_every_seconds,
    )
    result = await ingest(settings, writer, tenant_id, events, (warm_id, warm_events))
    print_ingest(result, decode_us, chain_cpu_us(events))


async def measure_latency(
    services: dict[str, DecisionService], principal: Principal, nats: NatsClient
) -> None:
    items = requests(4_000, seed=3)
    seq = await sequential(services, principal, items)
    conc: dict[str, Latency] = {}
    for mode, service in services.items():
        await concurrent(service, principal, items, CONCURRENT_WARMUP_PER_TASK)
        conc[mode] = await concurrent(service, principal, items, PER_TASK)
    info = await nats.jetstream().stream_info(STREAM)
    print_latency(seq, conc, int(info.state.messages))


async def run(stack: LiveStack) -> uuid.UUID:
    """Measure everything; return the benchmark tenant."""
    settings = stack.settings
    await create_scratch_tables(stack)
    api_db = Database(settings, Service.API)
    worker_db = Database(settings, Service.WORKER)
    await api_db.open()
    await worker_db.open()
    nats: NatsClient = await connect_nats(settings, Service.API)
    bundles = BundleCache(api_db, lambda: nats, poll_interval=settings.bundle_poll_seconds)
    try:
        await ensure_stream(
            nats.jetstream(),
            stream_config(
                max_bytes=settings.events_stream_max_bytes,
                max_age_seconds=settings.events_stream_max_age_seconds,
            ),
        )
        await _print_environment(api_db, nats)
        policies = PolicyService(api_db, PolicyChangeNotifier(lambda: nats))
        tenants = {
            "bench": await setup_tenant(settings, policies, "ledger-bench"),
            "warmup": await setup_tenant(settings, policies, "ledger-bench-warmup"),
        }
        bundles.start()
        # As container.build_services wires it, and the same service without a publisher.
        services = {
            "off": DecisionService(bundles, None),
            "on": DecisionService(
                bundles,
                EventPublisher(lambda: nats, max_inflight=settings.events_max_inflight),
                best_effort=settings.audit_best_effort,
            ),
        }
        await measure_ingest(settings, worker_db, services["off"], tenants)
        await measure_latency(services, tenants["bench"][1], nats)
    finally:
        await bundles.stop()
        with contextlib.suppress(Exception):
            await nats.drain()
        await worker_db.close()
        await api_db.close()
    return tenants["bench"][0]


def verify(settings: Settings, tenant_id: uuid.UUID) -> bool:
    section("Ledger verification (fulcrum.audit.verification.verify_tenant)")
    started = time.perf_counter()
    verified = verify_tenant(
        conninfo(settings, Service.ADMIN),
        tenant_id,
        checkpoint_verifier(settings, Secrets(settings)),
    )
    seconds = time.perf_counter() - started
    status = "ok" if verified.ok else f"FAILED: {verified.problem} at {verified.first_bad_seq}"
    print(
        f"benchmark tenant {tenant_id}: {status}, {verified.checked:,} records checked "
        f"in {seconds:.1f} s ({verified.checked / seconds:,.0f} records/s)"
    )
    if not verified.ok:
        print(f"  {verified.detail}")
    return verified.ok and verified.checked == N_EVENTS


async def _print_environment(db: Database, nats: NatsClient) -> None:
    async with db.tx() as conn:
        cur = await conn.execute(
            "SELECT current_setting('server_version'), current_setting('fsync'), "
            "current_setting('synchronous_commit'), current_setting('shared_buffers')"
        )
        row = await cur.fetchone()
    assert row is not None
    print(
        f"host: {os.cpu_count()} CPUs, Python {platform.python_version()}; PostgreSQL {row[0]} "
        f"(fsync={row[1]}, synchronous_commit={row[2]}, shared_buffers={row[3]}); "
        f"NATS {_version(nats)}; psycopg {psycopg.__version__}"
    )


def _version(nats: NatsClient) -> str:
    v = nats.connected_server_version
    return f"{v.major}.{v.minor}.{v.patch}"


def main() -> int:
    sys.path.insert(0, str(ROOT))  # tests.support: the dev stack the test suite uses
    from tests.support.stack import LiveStack, new_home, stack_env

    began = time.perf_counter()
    home = new_home("fulcrum-bench-")
    try:
        stack = LiveStack(home, stack_env(home))
    except BaseException:
        shutil.rmtree(home, ignore_errors=True)
        raise
    try:
        stack.up()
        migrate(stack.settings)
        quiet_logs()  # after alembic, whose logging setup replaces the root handlers
        print(f"dev stack up and migrated in {time.perf_counter() - began:.1f} s")
        tenant_id = asyncio.run(run(stack))
        ok = verify(stack.settings, tenant_id)
    finally:
        stack.destroy()
    print(f"\ntotal run time {time.perf_counter() - began:.1f} s (stack torn down)")
    return 0 if ok else 1


def quiet_logs() -> None:
    """Warnings and errors only, on stderr; not the expected disconnect of the final drain."""
    configure_logging("ledger-bench", "warning")
    logging.getLogger("fulcrum.kit.nats").setLevel(logging.ERROR)


if __name__ == "__main__":
    sys.exit(main())
