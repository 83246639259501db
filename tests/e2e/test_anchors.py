"""Anchors outside PostgreSQL against real processes: a superuser who deletes the newest
records with their checkpoints and moves the chain head back is caught, by the CLI, REST
and gRPC; anchors cannot be deleted or purged; a bundle verifies offline."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from nats.js.api import StreamConfig
from nats.js.errors import APIError

from fulcrum.audit.anchors import ANCHOR_STREAM, anchor_subject, newest_anchor, publish_anchor
from fulcrum.audit.chain import record_hash
from fulcrum.audit.checkpoints import CheckpointSigner
from fulcrum.audit.repository import RECORD_COLUMNS, record_from_row
from fulcrum.kit.config import Service
from fulcrum.kit.nats import connect_nats
from fulcrum.kit.secrets import Secrets
from fulcrum.pb.v1 import audit_pb2, audit_pb2_grpc
from tests.e2e.test_ledger import FAST_CHECKPOINTS, decide, settled, tamper, verify, wait_for
from tests.support.identity import TenantFixture, new_tenant
from tests.support.processes import FulcrumProcess, start_worker
from tests.support.stack import LiveStack, free_port


@pytest.fixture(scope="module")
def worker(stack: LiveStack) -> Iterator[FulcrumProcess]:
    process = start_worker(stack, name="worker-anchors", **FAST_CHECKPOINTS)
    yield process
    process.stop()


def newest_anchored(stack: LiveStack, tenant: TenantFixture) -> int | None:
    async def read() -> int | None:
        nc = await connect_nats(stack.settings, Service.ADMIN, retry=False, quiet=True)
        try:
            anchor = await newest_anchor(nc.jetstream(), tenant.id)
        finally:
            await nc.close()
        return anchor.seq if anchor else None

    return asyncio.run(read())


def anchored_ledger(stack: LiveStack, api: FulcrumProcess, tenant: TenantFixture) -> int:
    """Two batches of decisions, chained, checkpointed and anchored; the newest seq."""
    decide(api, tenant, 20)
    decide(api, tenant, 20)
    newest = settled(stack, tenant, 40)
    wait_for(lambda: newest_anchored(stack, tenant) == newest, 30, "the newest anchor")
    return newest


def truncate_to_first(stack: LiveStack, tenant: TenantFixture) -> None:
    """The attack: records 2..N and their checkpoints gone, the head moved back to 1."""
    tamper(stack, "DELETE FROM audit_records WHERE tenant_id = %s AND seq > 1", tenant.id)
    tamper(stack, "DELETE FROM audit_checkpoints WHERE tenant_id = %s AND seq > 1", tenant.id)
    tamper(
        stack,
        "UPDATE audit_chain_heads SET seq = 1, hash = (SELECT hash FROM audit_records "
        "WHERE tenant_id = %s AND seq = 1) WHERE tenant_id = %s",
        tenant.id,
        tenant.id,
    )
    with psycopg.connect(stack.superuser_dsn()) as su:
        left = su.execute(
            "SELECT count(*) FROM audit_records WHERE tenant_id = %s", (tenant.id,)
        ).fetchone()
    assert left == (1,)


def grpc_verify(api: FulcrumProcess, tenant: TenantFixture) -> audit_pb2.VerifyAuditLedgerResponse:
    with api.channel() as channel:
        return audit_pb2_grpc.AuditServiceStub(channel).VerifyAuditLedger(
            audit_pb2.VerifyAuditLedgerRequest(),
            metadata=(("authorization", f"Bearer {tenant.owner_key}"),),
            timeout=60,
        )


def test_deleting_the_newest_records_with_their_checkpoints_is_truncation(
    stack: LiveStack, api: FulcrumProcess, worker: FulcrumProcess
) -> None:
    tenant = new_tenant(stack, "anchor-tail")
    newest = anchored_ledger(stack, api, tenant)
    truncate_to_first(stack, tenant)

    cli = stack.fulcrum("audit", "verify", "--tenant", str(tenant.id))
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert "FAILED at seq 2: truncated" in cli.stdout
    assert f"pins record {newest}" in cli.stdout
    result = verify(api, tenant)
    assert (result["ok"], result["first_bad_seq"], result["problem"]) == (False, 2, "truncated")
    reply = grpc_verify(api, tenant)
    assert (reply.ok, reply.first_bad_seq, reply.problem) == (False, 2, "truncated")
    # A range that ends before the deleted records says nothing about them.
    assert stack.fulcrum("audit", "verify", "--tenant", str(tenant.id), "--to", "1").returncode == 0


def test_anchors_cannot_be_deleted_purged_or_unprotected(
    stack: LiveStack, api: FulcrumProcess, worker: FulcrumProcess
) -> None:
    tenant = new_tenant(stack, "anchor-keep")
    anchored_ledger(stack, api, tenant)

    async def attack() -> list[str]:
        refused: list[str] = []
        # The operator's identity: whatever NATS permits it, the stream itself refuses.
        nc = await connect_nats(stack.settings, Service.ADMIN, retry=False, quiet=True)
        jsm = nc.jetstream()
        try:
            last = await jsm.get_last_msg(ANCHOR_STREAM, anchor_subject(tenant.id), direct=True)
            assert last.seq is not None
            for name, call in (
                ("delete", jsm.delete_msg(ANCHOR_STREAM, last.seq)),
                ("purge", jsm.purge_stream(ANCHOR_STREAM)),
                ("purge subject", jsm.purge_stream(ANCHOR_STREAM, subject=last.subject)),
            ):
                try:
                    await call
                except APIError as err:
                    refused.append(f"{name}: {err.description}")
            info = await jsm.stream_info(ANCHOR_STREAM)
            unprotected = dataclasses.replace(info.config, deny_delete=False, deny_purge=False)
            assert isinstance(unprotected, StreamConfig)
            try:
                await jsm.update_stream(unprotected)
            except APIError as err:
                refused.append(f"update: {err.description}")
            still = await jsm.get_last_msg(ANCHOR_STREAM, anchor_subject(tenant.id), direct=True)
            assert still.seq == last.seq
        finally:
            await nc.close()
        return refused

    refused = asyncio.run(attack())
    assert len(refused) == 4, refused
    assert stack.fulcrum("audit", "verify", "--tenant", str(tenant.id)).returncode == 0


def test_a_rehashed_record_at_an_anchored_seq_is_an_anchor_mismatch(
    stack: LiveStack, api: FulcrumProcess, worker: FulcrumProcess
) -> None:
    """The newest record rewritten with a matching hash and its checkpoint deleted: only the
    anchor still knows the original."""
    tenant = new_tenant(stack, "anchor-edit")
    newest = anchored_ledger(stack, api, tenant)
    with psycopg.connect(stack.superuser_dsn()) as su:
        row = su.execute(
            f"SELECT {RECORD_COLUMNS} FROM audit_records WHERE tenant_id = %s AND seq = %s",
            (tenant.id, newest),
        ).fetchone()
    assert row is not None
    record = record_from_row(row)
    forged = dataclasses.replace(
        record.entry, outcome="allow" if record.entry.outcome != "allow" else "deny"
    )
    new_hash = record_hash(record.prev_hash, forged, newest)
    tamper(
        stack,
        "UPDATE audit_records SET outcome = %s, hash = %s WHERE tenant_id = %s AND seq = %s",
        forged.outcome,
        new_hash,
        tenant.id,
        newest,
    )
    tamper(
        stack, "DELETE FROM audit_checkpoints WHERE tenant_id = %s AND seq = %s", tenant.id, newest
    )
    tamper(
        stack, "UPDATE audit_chain_heads SET hash = %s WHERE tenant_id = %s", new_hash, tenant.id
    )

    result = verify(api, tenant)
    assert (result["ok"], result["first_bad_seq"], result["problem"]) == (
        False,
        newest,
        "anchor_mismatch",
    ), result
    cli = stack.fulcrum("audit", "verify", "--tenant", str(tenant.id))
    assert f"FAILED at seq {newest}: anchor_mismatch" in cli.stdout


def test_verification_without_nats_is_never_ok(
    stack: LiveStack, api: FulcrumProcess, worker: FulcrumProcess
) -> None:
    tenant = new_tenant(stack, "anchor-down")
    anchored_ledger(stack, api, tenant)
    stack.devstack.nats.stop()
    try:
        cli = stack.fulcrum("audit", "verify", "--tenant", str(tenant.id))
        result = verify(api, tenant)
    finally:
        stack.devstack.nats.start()
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert "anchors_unavailable" in cli.stdout
    assert (result["ok"], result["problem"]) == (False, "anchors_unavailable"), result
    wait_for(lambda: verify(api, tenant)["ok"], 30, "verification once NATS is back")


def offline(stack: LiveStack, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI pointed at ports where nothing listens: no database, no NATS."""
    env = stack.process_env(
        FULCRUM_DATABASE_PORT=str(free_port()), FULCRUM_NATS_PORT=str(free_port())
    )
    return subprocess.run(
        [sys.executable, "-m", "fulcrum.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_bundle_verifies_offline_and_tampering_fails(
    stack: LiveStack, api: FulcrumProcess, worker: FulcrumProcess, tmp_path: Path
) -> None:
    tenant = new_tenant(stack, "anchor-bundle")
    newest = anchored_ledger(stack, api, tenant)
    bundle = tmp_path / "ledger.jsonl"
    exported = stack.fulcrum("audit", "export", "--tenant", str(tenant.id), "--bundle", str(bundle))
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert f"{newest} records written" in exported.stdout
    keys = tmp_path / "trusted.pem"
    signer = CheckpointSigner(
        Secrets(stack.settings, Service.WORKER).require("audit_signing_key").get()
    )
    keys.write_bytes(signer.public_key_pem())

    # Where the offline commands run, the database cannot be reached:
    assert offline(stack, "audit", "verify", "--tenant", str(tenant.id)).returncode != 0
    trusted = offline(stack, "audit", "verify", "--bundle", str(bundle), "--public-keys", str(keys))
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert f"ok: {newest} records verified" in trusted.stdout
    assert "warning" not in trusted.stdout
    own = offline(stack, "audit", "verify", "--bundle", str(bundle))
    assert own.returncode == 0, own.stdout + own.stderr
    assert "public keys inside the bundle itself" in own.stdout

    lines = bundle.read_text().splitlines()
    types = [json.loads(line)["type"] for line in lines]
    assert types[0] == "header" and "anchor" in types and "checkpoint" in types

    edited = []
    for line in lines:
        fields = json.loads(line)
        if fields["type"] == "record" and fields["seq"] == 5:
            fields["outcome"] = "tampered"
        edited.append(json.dumps(fields))
    changed = tmp_path / "changed.jsonl"
    changed.write_text("\n".join(edited) + "\n")
    result = offline(stack, "audit", "verify", "--bundle", str(changed), "--public-keys", str(keys))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED at seq 5: hash_mismatch" in result.stdout

    # The tail removed with its checkpoints, as in the attack on the database: the
    # anchors in the bundle still pin the newest record.
    cut = [
        line
        for line in lines
        if json.loads(line)["type"] not in ("record", "checkpoint") or json.loads(line)["seq"] <= 3
    ]
    short = tmp_path / "short.jsonl"
    short.write_text("\n".join(cut) + "\n")
    result = offline(stack, "audit", "verify", "--bundle", str(short), "--public-keys", str(keys))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED at seq 4: truncated" in result.stdout

    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text(lines[0] + "\n{not json\n")
    result = offline(stack, "audit", "verify", "--bundle", str(garbage))
    assert result.returncode == 2 and "error: bundle:" in result.stderr, result.stderr


def test_a_forged_anchor_is_a_bad_signature_never_a_false_truncation(
    stack: LiveStack, api: FulcrumProcess, worker: FulcrumProcess
) -> None:
    """Someone who may publish on the tenant's anchor subject, without the signing key,
    claims the ledger was longer: verification names the forgery, not a truncation."""
    tenant = new_tenant(stack, "anchor-forged")
    newest = anchored_ledger(stack, api, tenant)
    impostor = CheckpointSigner(
        Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )
    forged = impostor.sign(tenant.id, newest + 100, bytes(32), dt.datetime.now(dt.UTC))

    async def publish() -> None:
        nc = await connect_nats(stack.settings, Service.ADMIN, retry=False, quiet=True)
        try:
            await publish_anchor(nc.jetstream(), forged)
        finally:
            await nc.close()

    asyncio.run(publish())
    result = verify(api, tenant)
    assert (result["ok"], result["problem"], result["first_bad_seq"]) == (
        False,
        "bad_signature",
        newest + 100,
    ), result
    assert "anchor at record" in result["detail"]
