"""Anchors: every signed checkpoint, copied outside PostgreSQL into a JetStream stream that
refuses deletes and purges.

A checkpoint sits beside the records it protects: whoever can delete the newest records
(a database superuser) can delete their checkpoints too and move the chain head back, and
the shorter chain verifies. Its anchor, in ``FULCRUM_ANCHORS``, survives that; verification
compares the database with the anchors (``audit.verify_chain``) and names the truncation.

Publishing uses the subject ``fulcrum.anchors.<tenant_id>`` only, and reading uses only
JetStream direct get (``$JS.API.DIRECT.GET.FULCRUM_ANCHORS...``), so NATS permissions can
be written for exactly those. The codec (RFC 8785 JSON) is the same for the stream and for
offline bundles (``audit.bundle``).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import rfc8785
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from fulcrum.audit.checkpoints import Checkpoint
from fulcrum.audit.records import timestamp_text
from fulcrum.audit.verify_chain import AnchorLog

ANCHOR_STREAM = "FULCRUM_ANCHORS"
ANCHOR_SUBJECTS = ["fulcrum.anchors.*"]
ANCHOR_FORMAT = 1
_MAX_ANCHOR_BYTES = 1024  # an anchor is about 330 bytes


def anchor_subject(tenant_id: uuid.UUID) -> str:
    return f"fulcrum.anchors.{tenant_id}"


def anchor_msg_id(cp: Checkpoint) -> str:
    """Nats-Msg-Id: the writer and the housekeeper's catch-up may both publish one."""
    return f"anchor:{cp.tenant_id}:{cp.seq}"


def anchor_stream_config(*, per_tenant: int) -> StreamConfig:
    """The one definition of the stream; ``per_tenant`` newest anchors are kept per tenant
    (the newest one alone pins the whole chain before it)."""
    return StreamConfig(
        name=ANCHOR_STREAM,
        subjects=ANCHOR_SUBJECTS,
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        max_msgs_per_subject=per_tenant,
        max_msg_size=_MAX_ANCHOR_BYTES,
        duplicate_window=120.0,
        # JetStream refuses to delete or purge messages, and refuses an update that would
        # turn either back off.
        deny_delete=True,
        deny_purge=True,
        allow_direct=True,
        num_replicas=1,
    )


class MalformedAnchor(ValueError):
    """Bytes that are not an anchor (nothing a genuine writer would publish)."""


def encode_anchor(cp: Checkpoint) -> bytes:
    return rfc8785.dumps(anchor_fields(cp))


def anchor_fields(cp: Checkpoint) -> dict[str, Any]:
    return {
        "format": ANCHOR_FORMAT,
        "tenant_id": str(cp.tenant_id),
        "seq": cp.seq,
        "hash": cp.hash.hex(),
        "created_at": timestamp_text(cp.created_at),
        "key_id": cp.key_id,
        "signature": cp.signature.hex(),
    }


def decode_anchor(data: bytes) -> Checkpoint:
    try:
        fields = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedAnchor("not JSON") from exc
    return anchor_from_fields(fields)


def anchor_from_fields(fields: object) -> Checkpoint:
    """The checkpoint an anchor carries; :class:`MalformedAnchor` for anything else."""
    if not isinstance(fields, dict):
        raise MalformedAnchor("not a JSON object")
    if set(fields) - {"type"} != {
        "format",
        "tenant_id",
        "seq",
        "hash",
        "created_at",
        "key_id",
        "signature",
    }:
        raise MalformedAnchor("unexpected or missing fields")
    if fields["format"] != ANCHOR_FORMAT:
        raise MalformedAnchor(f"unknown format {fields['format']!r}")
    seq = fields["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise MalformedAnchor("seq must be a positive integer")
    try:
        tenant_id = uuid.UUID(fields["tenant_id"])
        hash_ = bytes.fromhex(fields["hash"])
        signature = bytes.fromhex(fields["signature"])
        created_at = dt.datetime.fromisoformat(fields["created_at"])
    except (TypeError, ValueError, AttributeError) as exc:
        raise MalformedAnchor(f"bad field value ({exc})") from exc
    if len(hash_) != 32 or created_at.utcoffset() is None or not isinstance(fields["key_id"], str):
        raise MalformedAnchor("hash, created_at or key_id is not well formed")
    return Checkpoint(tenant_id, seq, hash_, created_at, fields["key_id"], signature)


async def read_anchors(
    nc: NatsClient | None, tenant_id: uuid.UUID, *, reply_seconds: float = 5.0
) -> AnchorLog:
    """Every anchor of the tenant the stream holds, by direct get (one message a request)."""
    if nc is None or not nc.is_connected:
        return AnchorLog(unavailable="NATS is not connected")
    js = nc.jetstream(timeout=reply_seconds)
    subject = anchor_subject(tenant_id)
    anchors: list[Checkpoint] = []
    malformed = 0
    next_seq = 1
    try:
        while True:
            try:
                msg = await js.get_msg(
                    ANCHOR_STREAM, seq=next_seq, subject=subject, direct=True, next=True
                )
            except NotFoundError:
                break
            assert msg.seq is not None
            next_seq = msg.seq + 1
            try:
                anchors.append(decode_anchor(msg.data or b""))
            except MalformedAnchor:
                malformed += 1
    except (NatsError, TimeoutError, OSError, KeyError, TypeError) as exc:
        # KeyError, TypeError: a reply without the headers of a direct get's answer.
        return AnchorLog(unavailable=f"{ANCHOR_STREAM} cannot be read ({type(exc).__name__})")
    return AnchorLog(tuple(anchors), malformed)


async def newest_anchor(js: JetStreamContext, tenant_id: uuid.UUID) -> Checkpoint | None:
    """The tenant's last published anchor (None if none, or if it is not an anchor)."""
    try:
        msg = await js.get_last_msg(ANCHOR_STREAM, anchor_subject(tenant_id), direct=True)
    except NotFoundError:
        return None
    try:
        return decode_anchor(msg.data or b"")
    except MalformedAnchor:
        return None


async def publish_anchor(
    js: JetStreamContext, cp: Checkpoint, *, reply_seconds: float = 5.0
) -> None:
    await js.publish(
        anchor_subject(cp.tenant_id),
        encode_anchor(cp),
        stream=ANCHOR_STREAM,
        headers={"Nats-Msg-Id": anchor_msg_id(cp)},
        timeout=reply_seconds,
    )
