"""Audit ledger ingest and the cost of audit-before-answer, on a real dev stack.

    .venv/bin/python benchmarks/ledger_bench.py

Starts its own PostgreSQL, Redis and NATS (mTLS, free ports, a temporary home), migrates,
creates tenants with a small active policy set, and always tears the stack down. From one
run it prints:

1. The worker's ingest rate, end to end: decision events made by the real path (engine ->
   ``decision_event``) are published to JetStream, then the real ``LedgerConsumer`` (its
   continuous pull, intake, ``LedgerWriter`` and acknowledgements, one transaction per
   1,000 events, GC tuned as ``fulcrum worker`` tunes it) drains them into one tenant's
   ledger over mTLS as the application role. Several rounds; the median is the headline.
2. Chained against plain, from the same events: the worker's per-batch work without NATS
   (``prepare_event`` + ``LedgerWriter.write``: encode, head lock, link, SHA-256, insert,
   head, checkpoint) against a plain multi-row insert of the same rows (decode, rows as
   JSON, random hashes, the same ``INSERT`` statement) into scratch tables with the same
   columns, keys and indexes but no chaining, row-level security or triggers. Batches
   alternate between the two, so checkpoints, autovacuum and WAL fall on both alike.
3. The added latency of audit before answer: ``DecisionService.evaluate`` with a real
   ``EventPublisher`` (JetStream ack) against the same service without one, sequential and
   with 64 concurrent callers.
4. Every benchmark tenant's chain, verified from PostgreSQL at the end.

A benchmark, not a test: it prints figures and compares them with targets; nothing fails on
timing. It exits non-zero only when the setup is broken (e.g. a chain does not verify).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import platform
import random
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from nats.aio.client import Client as NatsClient
from psycopg import AsyncConnection
from psycopg.conninfo import make_conninfo
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool
from workload import POLICIES, QUERIES, TOOLS  # a sibling module: this file runs as a script

from fulcrum.admin import create_tenant, setup_events
from fulcrum.audit import repository as repo
from fulcrum.audit.chain import Link
from fulcrum.audit.checkpoints import CheckpointSigner
from fulcrum.audit.intake import decode, prepare_event
from fulcrum.audit.records import timestamp_text
from fulcrum.audit.verify_chain import AnchorLog
from fulcrum.audit.verify_stored import verify_tenant
from fulcrum.audit.writer import LedgerWriter
from fulcrum.auth.principal import Principal, PrincipalKind
from fulcrum.auth.scopes import Scope
from fulcrum.container import checkpoint_verifier
from fulcrum.decisions.bundles import BundleCache
from fulcrum.decisions.models import DecisionInput
from fulcrum.decisions.service import DecisionService
from fulcrum.decisions.voids import DecisionVoids
from fulcrum.decisions.wire import decision_event
from fulcrum.engine.model import DecisionRequest
from fulcrum.events.envelope import decision_message
from fulcrum.events.publisher import EventPublisher
from fulcrum.events.streams import STREAM
from fulcrum.kit.config import WORKER_ROLE, Service, Settings
from fulcrum.kit.db import Database, conninfo
from fulcrum.kit.ids import uuid7
from fulcrum.kit.logging import configure_logging
from fulcrum.kit.migrate import migrate
from fulcrum.kit.nats import connect_nats
from fulcrum.kit.secrets import Secrets
from fulcrum.pb.v1 import events_pb2
from fulcrum.policies.models import PolicyStatus
from fulcrum.policies.notify import PolicyChangeNotifier
from fulcrum.policies.service import PolicyService
from fulcrum.worker.consumer import LedgerConsumer
from fulcrum.worker.main import tune_gc

if TYPE_CHECKING:
    from tests.support.stack import LiveStack

ROOT = Path(__file__).resolve().parent.parent

DISTINCT_DECISIONS = 5_000  # evaluated by the engine; copied with fresh ids for volume
ROUNDS = 3
ROUND_EVENTS = 40_000  # per end-to-end round
COMPARE_EVENTS = 20_000  # chained against plain
BATCH = 1_000  # the worker's batch (LedgerConsumer batch=1000): one transaction each
WARMUP_BATCHES = 2  # per path, on a separate warm-up tenant
SEQUENTIAL = 2_000  # decisions per mode
SEQUENTIAL_BLOCK = 250  # modes alternate in blocks of this many
SEQUENTIAL_WARMUP = 200
CONCURRENCY = 64
PER_TASK = 50
CONCURRENT_WARMUP_PER_TASK = 5

TARGET_RATIO = 0.5
TARGET_RATE = 20_000.0


# --- statistics and printing -----------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def section(title: str) -> None:
    print(f"\n{title}\n{'=' * len(title)}")


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


class SystemCpu:
    """Busy share of all CPUs (/proc/stat) over a span: PostgreSQL, NATS and this process."""

    def __init__(self) -> None:
        self.busy = 0.0

    @contextlib.contextmanager
    def measuring(self) -> Iterator[None]:
        before = self._sample()
        try:
            yield
        finally:
            after = self._sample()
            delta = [b - a for a, b in zip(before, after, strict=True)]
            idle = delta[3] + delta[4]  # idle + iowait
            self.busy = 1 - idle / sum(delta) if sum(delta) else 0.0

    @staticmethod
    def _sample() -> list[int]:
        with open("/proc/stat") as stat:
            return [int(field) for field in stat.readline().split()[1:]]


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


async def distinct_events(
    service: DecisionService, principal: Principal, tenant_id: uuid.UUID, count: int, seed: int
) -> list[events_pb2.DecisionEvent]:
    """``count`` decision events made by the real path (engine decision -> protobuf)."""
    made = []
    for item in requests(count, seed):
        decision = await service.evaluate(principal, item)
        envelope = events_pb2.Event.FromString(
            decision_event(tenant_id, principal.actor, item, decision).data
        )
        made.append(envelope.decision)
    return made


def fresh_copies(templates: Sequence[events_pb2.DecisionEvent], count: int) -> list[bytes]:
    """``count`` events cycling through ``templates``, each with its own decision id and time,
    as the API publishes them (the payloads of ``decision_message``)."""
    out = []
    for n in range(count):
        event = events_pb2.DecisionEvent()
        event.CopyFrom(templates[n % len(templates)])
        event.decision_id = str(uuid7())
        event.time.GetCurrentTime()
        out.append(decision_message(event).data)
    return out


def batches(items: Sequence[bytes], size: int) -> list[Sequence[bytes]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# --- 1. the worker, end to end ---------------------------------------------------------------


@dataclass(frozen=True)
class Round:
    events: int
    seconds: float
    cpu_us: float  # this process's CPU per record: the worker
    system_busy: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


async def publish(nats: NatsClient, payloads: Sequence[bytes], tenant_id: uuid.UUID) -> None:
    js = nats.jetstream()
    subject = f"fulcrum.events.{tenant_id}.decision"
    pending = []
    for data in payloads:
        msg_id = events_pb2.Event.FromString(data).decision.decision_id
        pending.append(await js.publish_async(subject, data, headers={"Nats-Msg-Id": msg_id}))
        if len(pending) >= 1_000:
            await asyncio.gather(*pending)
            pending = []
    await asyncio.gather(*pending)


async def head_seq(db: Database, tenant_id: uuid.UUID) -> int:
    async with db.tenant_tx(tenant_id) as conn:
        seq, _ = await repo.head(conn)
    return seq


async def drain_round(
    settings: Settings, writer: LedgerWriter, watch: Database, tenant_id: uuid.UUID, target: int
) -> tuple[float, float, float]:
    """Run the real consumer until the tenant's head reaches ``target``; (wall s, CPU s, busy)."""
    nats = await connect_nats(settings, Service.WORKER)
    consumer = LedgerConsumer(nats, writer, batch=BATCH)
    stop = asyncio.Event()
    system = SystemCpu()
    try:
        with system.measuring():
            wall, cpu = time.perf_counter(), time.process_time()
            task = asyncio.create_task(consumer.run(stop))
            # The ledger itself says when the round is done (the consumer has no signal).
            while await head_seq(watch, tenant_id) < target:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        stop.set()
        await task
    finally:
        await nats.drain()
    return wall, cpu, system.busy


async def end_to_end(
    settings: Settings,
    worker_db: Database,
    nats: NatsClient,
    templates: Sequence[events_pb2.DecisionEvent],
    tenant_id: uuid.UUID,
) -> list[Round]:
    writer = new_writer(settings, worker_db)
    rounds = []
    done = 0
    for _ in range(ROUNDS):
        payloads = fresh_copies(templates, ROUND_EVENTS)
        await publish(nats, payloads, tenant_id)
        done += len(payloads)
        wall, cpu, busy = await drain_round(settings, writer, worker_db, tenant_id, done)
        rounds.append(Round(len(payloads), wall, cpu / len(payloads) * 1e6, busy))
    return rounds


def print_end_to_end(rounds: Sequence[Round]) -> float:
    section(
        f"1. Worker ingest, end to end: JetStream -> LedgerConsumer -> PostgreSQL, "
        f"{ROUND_EVENTS:,} events a round, {BATCH:,} per transaction"
    )
    header = (
        f"{'round':<6} {'events':>8} {'seconds':>8} {'records/s':>10} "
        f"{'worker CPU µs/rec':>18} {'all CPUs busy':>14}"
    )
    print(header)
    print("-" * len(header))
    for index, r in enumerate(rounds, start=1):
        print(
            f"{index:<6} {r.events:>8,} {r.seconds:>8.2f} {r.rate:>10,.0f} {r.cpu_us:>18.1f} "
            f"{r.system_busy:>14.0%}"
        )
    median = statistics.median(r.rate for r in rounds)
    print(
        f"\nworker ingest rate (median of {len(rounds)})  {median:>8,.0f} records/s    "
        f"target >= {TARGET_RATE:,.0f} /s   {verdict(median >= TARGET_RATE)}"
    )
    return median


# --- 2. chained against plain ----------------------------------------------------------------


def new_writer(settings: Settings, db: Database) -> LedgerWriter:
    return LedgerWriter(
        db,
        CheckpointSigner(Secrets(settings, Service.WORKER).require("audit_signing_key").get()),
        checkpoint_every_records=settings.checkpoint_every_records,
        checkpoint_every_seconds=settings.checkpoint_every_seconds,
    )


async def create_plain_tables(stack: LiveStack) -> None:
    """The plain baselines' tables: the same columns, keys and indexes (``INCLUDING ALL``),
    without row-level security or triggers; created by the superuser for the app role."""
    async with await AsyncConnection.connect(stack.superuser_dsn(), autocommit=True) as conn:
        for schema, _ in PLAIN_PATHS.values():
            await conn.execute(f"CREATE SCHEMA {schema}")
            await conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {WORKER_ROLE}")
            for table in ("audit_records", "decisions", "decision_rollups"):
                await conn.execute(
                    f"CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)"
                )
                await conn.execute(
                    f"GRANT INSERT, UPDATE, SELECT ON {schema}.{table} TO {WORKER_ROLE}"
                )


def plain_pool(settings: Settings, schema: str) -> AsyncConnectionPool[AsyncConnection[TupleRow]]:
    """The worker's kind of connection (app role, worker certificate, TLS), whose unqualified
    tables are a plain baseline's: the product's own INSERT statement then writes them."""
    info = make_conninfo(
        conninfo(settings, Service.WORKER), options=f"-c search_path={schema},public"
    )
    return AsyncConnectionPool(info, min_size=1, max_size=1, open=False, name=f"bench-{schema}")


Hashes = Sequence[tuple[bytes, bytes]]  # (prev_hash, hash) per row: random, drawn beforehand


def same_intake_document(payloads: Sequence[bytes], first_seq: int, hashes: Hashes) -> bytes:
    """The worker's own intake and document, with the given sequence numbers and hashes in
    place of linking: everything but the chain."""
    rows = [
        Link(seq, prev, digest, b"%s%d%s" % (p.before_seq, seq, p.after_seq))
        for seq, p, (prev, digest) in zip(
            itertools.count(first_seq), map(prepare_event, payloads), hashes, strict=False
        )
    ]
    return repo.batch_document(rows)


def json_rows_document(payloads: Sequence[bytes], first_seq: int, hashes: Hashes) -> bytes:
    """The rows the textbook way: decoded, a dict per row, json.dumps."""
    rows = []
    for seq, data, (prev, digest) in zip(
        itertools.count(first_seq), payloads, hashes, strict=False
    ):
        e = decode(data)
        rows.append(
            {
                "tenant_id": str(e.tenant_id),
                "seq": seq,
                "event_id": str(e.event_id),
                "kind": e.kind.value,
                "occurred_at": timestamp_text(e.occurred_at),
                "trace_id": e.trace_id,
                "actor": e.actor,
                "action": e.action,
                "resource_type": e.resource_type,
                "resource_id": e.resource_id,
                "outcome": e.outcome,
                "agent_id": e.agent_id,
                "tool_name": e.tool_name,
                "details": e.details,
                "prev_hash": prev.hex(),
                "hash": digest.hex(),
            }
        )
    return json.dumps(rows).encode()


# label -> (schema, how the batch's document is built); the first is the headline baseline.
PLAIN_PATHS: dict[str, tuple[str, Callable[[Sequence[bytes], int, Hashes], bytes]]] = {
    "plain: the worker's intake and INSERT, no chain": ("bench_plain", same_intake_document),
    "plain: rows by json.dumps, same INSERT": ("bench_json", json_rows_document),
}


async def plain_insert(
    pool: AsyncConnectionPool[AsyncConnection[TupleRow]],
    document: Callable[[Sequence[bytes], int, Hashes], bytes],
    payloads: Sequence[bytes],
    first_seq: int,
    hashes: Hashes,
) -> None:
    body = document(payloads, first_seq, hashes)
    async with pool.connection() as conn, conn.transaction():
        await repo.insert_document(conn, body)


async def chained_write(
    writer: LedgerWriter, tenant_id: uuid.UUID, payloads: Sequence[bytes]
) -> None:
    await writer.write(tenant_id, [prepare_event(data) for data in payloads])


@dataclass(frozen=True)
class Comparison:
    chained: Spent
    plain: dict[str, Spent]


async def compare(
    settings: Settings,
    worker_db: Database,
    templates: Sequence[events_pb2.DecisionEvent],
    tenants: dict[str, tuple[uuid.UUID, Principal]],
) -> Comparison:
    rng = random.Random(7)  # noqa: S311 - dummy hashes, not secrets
    hashes = [(rng.randbytes(32), rng.randbytes(32)) for _ in range(COMPARE_EVENTS)]
    writer = new_writer(settings, worker_db)
    pools = {label: plain_pool(settings, schema) for label, (schema, _) in PLAIN_PATHS.items()}
    for pool in pools.values():
        await pool.open(wait=True)
    try:
        # Warm-up on another tenant: TLS handshakes, plans, psycopg's prepared statements.
        warm_id = tenants["warmup"][0]
        warm = _for_tenant(fresh_copies(templates, WARMUP_BATCHES * BATCH), warm_id)
        for index, chunk in enumerate(batches(warm, BATCH)):
            await chained_write(writer, warm_id, chunk)
            for label, (_, document) in PLAIN_PATHS.items():
                await plain_insert(pools[label], document, chunk, 1 + index * BATCH, hashes)
        tenant_id = tenants["chained"][0]
        payloads = _for_tenant(fresh_copies(templates, COMPARE_EVENTS), tenant_id)
        chained, plain = Spent(), {label: Spent() for label in PLAIN_PATHS}

        async def plain_batch(index: int, chunk: Sequence[bytes]) -> None:
            for label, (_, document) in PLAIN_PATHS.items():
                with plain[label].timing():
                    await plain_insert(
                        pools[label],
                        document,
                        chunk,
                        1 + index * BATCH,
                        hashes[index * BATCH : (index + 1) * BATCH],
                    )

        for index, chunk in enumerate(batches(payloads, BATCH)):
            # Alternate which path goes first, so neither always meets a fresh WAL segment.
            if index % 2:
                await plain_batch(index, chunk)
            with chained.timing():
                await chained_write(writer, tenant_id, chunk)
            if not index % 2:
                await plain_batch(index, chunk)
    finally:
        for pool in pools.values():
            await pool.close()
    return Comparison(chained, plain)


def _for_tenant(payloads: Sequence[bytes], tenant_id: uuid.UUID) -> list[bytes]:
    out = []
    for data in payloads:
        envelope = events_pb2.Event.FromString(data)
        envelope.decision.tenant_id = str(tenant_id)
        out.append(envelope.SerializeToString())
    return out


def print_comparison(result: Comparison) -> None:
    section(
        f"2. Chained against plain: {COMPARE_EVENTS:,} decision events, {BATCH:,} per "
        "transaction, no NATS, app role over mTLS"
    )
    header = f"{'path':<56} {'records/s':>10} {'ms/batch':>9} {'client CPU':>11}"
    print(header)
    print("-" * len(header))
    n_batches = COMPARE_EVENTS // BATCH
    paths = {"chained: prepare_event + LedgerWriter.write": result.chained, **result.plain}
    rates = {}
    for label, spent in paths.items():
        rates[label] = COMPARE_EVENTS / (spent.wall_ns / 1e9)
        print(
            f"{label:<56} {rates[label]:>10,.0f} {spent.wall_ns / 1e6 / n_batches:>9.1f} "
            f"{spent.cpu_share:>11.0%}"
        )
    chained = rates.pop("chained: prepare_event + LedgerWriter.write")
    print()
    for index, (label, rate) in enumerate(rates.items()):
        ratio = chained / rate
        target = (
            f"target >= {TARGET_RATIO:.2f} x   {verdict(ratio >= TARGET_RATIO)}"
            if index == 0
            else "(for reference)"
        )
        print(f"chained / {label:<50} {ratio:>5.2f} x    {target}")


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


async def run(stack: LiveStack) -> list[tuple[uuid.UUID, int]]:
    """Measure everything; return the benchmark tenants and how many records each holds."""
    settings = stack.settings
    await create_plain_tables(stack)
    api_db = Database(settings, Service.API)
    worker_db = Database(settings, Service.WORKER)
    await api_db.open()
    await worker_db.open()
    nats: NatsClient = await connect_nats(settings, Service.API)
    bundles = BundleCache(api_db, lambda: nats, poll_interval=settings.bundle_poll_seconds)
    try:
        await setup_events(settings)
        await _print_environment(api_db, nats)
        policies = PolicyService(api_db, PolicyChangeNotifier(lambda: nats))
        tenants = {
            name: await setup_tenant(settings, policies, f"ledger-bench-{name}")
            for name in ("worker", "chained", "warmup")
        }
        bundles.start()
        # As container.build_services wires it, and the same service without a publisher.
        services = {
            "off": DecisionService(bundles, None),
            "on": DecisionService(
                bundles,
                EventPublisher(
                    lambda: nats,
                    max_inflight=settings.events_max_inflight,
                    retry_budget=settings.events_publish_retry_seconds,
                ),
                voids=DecisionVoids(api_db),
                best_effort=settings.audit_best_effort,
            ),
        }
        began = time.perf_counter()
        worker_id, principal = tenants["worker"]
        templates = await distinct_events(
            services["off"], principal, worker_id, DISTINCT_DECISIONS, 1
        )
        print(
            f"\n{DISTINCT_DECISIONS:,} distinct decisions made by the engine in "
            f"{time.perf_counter() - began:.1f} s; events are copies with fresh ids and times"
        )
        tune_gc()  # as fulcrum worker does
        print_end_to_end(await end_to_end(settings, worker_db, nats, templates, worker_id))
        print_comparison(await compare(settings, worker_db, templates, tenants))
        await measure_latency(services, tenants["chained"][1], nats)
    finally:
        await bundles.stop()
        with contextlib.suppress(Exception):
            await nats.drain()
        await worker_db.close()
        await api_db.close()
    return [
        (worker_id, ROUNDS * ROUND_EVENTS),
        (tenants["chained"][0], COMPARE_EVENTS),
        (tenants["warmup"][0], WARMUP_BATCHES * BATCH),
    ]


def verify(settings: Settings, expected: Sequence[tuple[uuid.UUID, int]]) -> bool:
    section("4. Ledger verification (fulcrum.audit.verify_stored.verify_tenant)")
    all_ok = True
    for tenant_id, count in expected:
        started = time.perf_counter()
        verified = verify_tenant(
            conninfo(settings, Service.ADMIN),
            tenant_id,
            checkpoint_verifier(settings),
            anchors=AnchorLog(),  # the database alone: the benchmark's worker anchors nothing
        )
        seconds = time.perf_counter() - started
        status = "ok" if verified.ok else f"FAILED: {verified.problem} at {verified.first_bad_seq}"
        print(
            f"tenant {tenant_id}: {status}, {verified.checked:,} of {count:,} records checked "
            f"in {seconds:.1f} s ({verified.checked / seconds:,.0f} records/s)"
        )
        if not verified.ok:
            print(f"  {verified.detail}")
        all_ok = all_ok and verified.ok and verified.checked == count
    return all_ok


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
        expected = asyncio.run(run(stack))
        ok = verify(stack.settings, expected)
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
