"""The worker's housekeeping against real PostgreSQL and NATS: work follows activity.

With the full sweep pushed an hour away, a committed change still reaches JetStream at once
(PostgreSQL notifies its tenant) and a chain the writer left unpinned still gets its
checkpoint (the writer says which), so the per-second cost does not grow with tenants.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from fulcrum.admin import create_tenant, setup_events
from fulcrum.audit.anchor_publisher import AnchorPublisher
from fulcrum.audit.anchors import newest_anchor, read_anchors
from fulcrum.audit.chain import prepare
from fulcrum.audit.checkpoints import CheckpointSigner, CheckpointVerifier
from fulcrum.audit.writer import LedgerWriter
from fulcrum.events.streams import subject
from fulcrum.kit.config import Service
from fulcrum.kit.db import Database, conninfo
from fulcrum.kit.nats import connect_nats
from fulcrum.kit.secrets import Secrets
from fulcrum.worker.housekeeping import Housekeeper
from tests.integration.test_ledger_storage import decision
from tests.support.stack import LiveStack


@pytest.fixture
async def running(stack: LiveStack) -> AsyncIterator[tuple[Housekeeper, LedgerWriter, NatsClient]]:
    settings = stack.settings
    db = Database(settings, Service.WORKER)
    await db.open()
    nats = await connect_nats(settings, Service.WORKER)
    await setup_events(settings)
    signer = CheckpointSigner(Secrets(settings, Service.WORKER).require("audit_signing_key").get())
    anchors = AnchorPublisher(nats, CheckpointVerifier([signer.public_key_pem()]))
    writer = LedgerWriter(
        db,
        signer,
        checkpoint_every_records=1_000_000,
        checkpoint_every_seconds=1,
        committed=anchors.submit,
    )
    housekeeper = Housekeeper(
        db,
        nats,
        writer,
        anchors,
        listen_conninfo=conninfo(settings, Service.WORKER),
        interval=0.2,
        sweep_seconds=3600,  # only the first tick sweeps
    )
    stop = asyncio.Event()
    task = asyncio.create_task(housekeeper.run(stop))
    await asyncio.sleep(1)  # the first sweep is done and the listener listens
    try:
        yield housekeeper, writer, nats
    finally:
        stop.set()
        await task
        await nats.close()
        await db.close()


async def test_a_committed_change_is_relayed_without_a_sweep(
    stack: LiveStack, running: tuple[Housekeeper, LedgerWriter, NatsClient]
) -> None:
    subjects: list[str] = []

    async def collect(msg: Msg) -> None:
        subjects.append(msg.subject)

    # Watched as the operator: the worker's own NATS user may publish changes, not read them.
    observer = await connect_nats(stack.settings, Service.ADMIN)
    try:
        await observer.subscribe("fulcrum.events.*.change", cb=collect)
        await observer.flush()
        # The tenant did not exist at the sweep: only its change's notification can bring it.
        tenant, _ = await create_tenant(stack.settings, f"relay-{uuid.uuid4().hex[:8]}", "user_x")
        expected = subject(tenant.id, "change")
        deadline = time.monotonic() + 10
        while expected not in subjects:
            assert time.monotonic() < deadline, "the change was not relayed"
            await asyncio.sleep(0.1)
    finally:
        await observer.close()


async def test_a_chain_left_unpinned_gets_its_checkpoint(
    stack: LiveStack, running: tuple[Housekeeper, LedgerWriter, NatsClient]
) -> None:
    _, writer, _ = running
    tenant, _ = await create_tenant(stack.settings, f"pin-{uuid.uuid4().hex[:8]}", None)
    # The first batch is pinned at once (no checkpoint yet); the second is not yet due.
    assert await writer.write(tenant.id, [prepare(decision(tenant.id, n)) for n in range(3)]) == 3
    assert (
        await writer.write(tenant.id, [prepare(decision(tenant.id, n)) for n in range(3, 5)]) == 2
    )
    assert tenant.id in writer.unpinned()

    def pinned() -> int | None:
        with psycopg.connect(stack.superuser_dsn()) as su:
            row = su.execute(
                "SELECT max(seq) FROM audit_checkpoints WHERE tenant_id = %s", (tenant.id,)
            ).fetchone()
        return row[0] if row else None

    deadline = time.monotonic() + 10
    while pinned() != 5:
        assert time.monotonic() < deadline, f"checkpoint stayed at {pinned()}"
        await asyncio.sleep(0.2)
    assert tenant.id not in writer.unpinned()


async def test_a_checkpoint_whose_anchor_was_lost_is_anchored_on_the_sweep(
    stack: LiveStack,
) -> None:
    """The writer stored checkpoints whose anchors never left (NATS away, worker killed):
    the sweep anchors the tenant's newest one, and only once."""
    settings = stack.settings
    db = Database(settings, Service.WORKER)
    await db.open()
    nats = await connect_nats(settings, Service.WORKER)
    signer = CheckpointSigner(Secrets(settings, Service.WORKER).require("audit_signing_key").get())
    anchors = AnchorPublisher(nats, CheckpointVerifier([signer.public_key_pem()]))
    lost = LedgerWriter(db, signer, checkpoint_every_records=2, checkpoint_every_seconds=3600)
    tenant, _ = await create_tenant(settings, f"anchor-lost-{uuid.uuid4().hex[:8]}", None)
    for first in (0, 3):
        entries = [prepare(decision(tenant.id, n)) for n in range(first, first + 3)]
        assert await lost.write(tenant.id, entries) == 3
    js = nats.jetstream()
    assert await newest_anchor(js, tenant.id) is None
    housekeeper = Housekeeper(
        db,
        nats,
        lost,
        anchors,
        listen_conninfo=conninfo(settings, Service.WORKER),
        interval=0.2,
        sweep_seconds=0.5,
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(housekeeper.run(stop)), asyncio.create_task(anchors.run(stop))]
    try:
        deadline = time.monotonic() + 15
        while (found := await newest_anchor(js, tenant.id)) is None:
            assert time.monotonic() < deadline, "the lost anchor was not caught up"
            await asyncio.sleep(0.2)
        assert found.seq == 6  # the newest checkpoint pins the newest record
        await asyncio.sleep(1.5)  # more sweeps: the anchor is there, nothing more to send
        log = await read_anchors(nats, tenant.id)
        assert [a.seq for a in log.anchors] == [6]
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await nats.close()
        await db.close()
