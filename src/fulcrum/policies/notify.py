"""Tells every API server that a tenant's active policy set changed.

A core NATS message (``fulcrum.control.policies``) carries the tenant and its new revision;
servers reload that tenant's bundle at once. The message is only a hint: servers also poll
the revisions of the tenants they hold, so a lost message delays a swap by one poll period
instead of forever.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from nats.aio.client import Client as NatsClient

from fulcrum.kit.logging import get_logger

log = get_logger(__name__)

SUBJECT = "fulcrum.control.policies"


@dataclass(frozen=True)
class PolicyChange:
    tenant_id: uuid.UUID
    revision: int

    def encode(self) -> bytes:
        return json.dumps({"tenant_id": str(self.tenant_id), "revision": self.revision}).encode()

    @classmethod
    def decode(cls, data: bytes) -> PolicyChange:
        body = json.loads(data)
        return cls(uuid.UUID(body["tenant_id"]), int(body["revision"]))


class PolicyChangeNotifier:
    def __init__(self, nats: Callable[[], NatsClient | None]) -> None:
        self._nats = nats

    async def notify(self, change: PolicyChange) -> None:
        client = self._nats()
        if client is None or not client.is_connected:
            log.warning("policies.notify_skipped", tenant_id=str(change.tenant_id))
            return
        try:
            await client.publish(SUBJECT, change.encode())
            await client.flush(timeout=1)
        except Exception as exc:
            log.warning("policies.notify_failed", error=type(exc).__name__)
