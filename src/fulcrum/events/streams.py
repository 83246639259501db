"""The JetStream stream that carries every event, with explicit limits."""

from __future__ import annotations

import uuid

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

STREAM = "FULCRUM_EVENTS"
SUBJECTS = ["fulcrum.events.>"]
SCHEMA_VERSION = 1


def subject(tenant_id: uuid.UUID | str, kind: str) -> str:
    """Subjects carry the tenant, so consumers and NATS permissions can be scoped to one."""
    return f"fulcrum.events.{tenant_id}.{kind}"


def stream_config(*, max_bytes: int, max_age_seconds: float) -> StreamConfig:
    return StreamConfig(
        name=STREAM,
        subjects=SUBJECTS,
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        # When full, refuse new events (the API then sheds load) instead of silently
        # discarding old ones the worker may not have written yet.
        discard=DiscardPolicy.NEW,
        max_bytes=max_bytes,
        max_age=max_age_seconds,
        max_msg_size=64 * 1024,
        duplicate_window=120.0,
        num_replicas=1,
        # Nobody, operators included, can erase events through the JetStream API: a purge
        # before the worker chained them would erase decisions that were answered.
        deny_delete=True,
        deny_purge=True,
    )


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream, or bring an existing one's limits up to date (idempotent). Only
    an operator may (``fulcrum events setup``): the services' NATS users cannot."""
    assert config.name is not None
    try:
        await js.stream_info(config.name)
    except NotFoundError:
        await js.add_stream(config)
    else:
        await js.update_stream(config)
