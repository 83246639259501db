"""The dev stack as one unit: ``fulcrum dev up | down | status``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fulcrum.devstack.certs import init_certs
from fulcrum.devstack.dev_secrets import init_secrets
from fulcrum.devstack.nats import Nats
from fulcrum.devstack.postgres import Postgres
from fulcrum.devstack.redis import Redis
from fulcrum.kit.config import Settings

Report = Callable[[str], None]


@dataclass
class DevStack:
    settings: Settings

    def __post_init__(self) -> None:
        self.postgres = Postgres(self.settings)
        self.redis = Redis(self.settings)
        self.nats = Nats(self.settings)

    @property
    def servers(self) -> dict[str, Postgres | Redis | Nats]:
        return {"postgresql": self.postgres, "redis": self.redis, "nats": self.nats}

    def prepare(self, report: Report) -> None:
        home = self.settings.home.absolute()
        home.mkdir(parents=True, exist_ok=True)
        home.chmod(0o755)  # the PostgreSQL system user must traverse it
        if self.settings.tls:
            written = init_certs(self.settings.resolved_certs_dir)
            if written:
                report(f"certs: wrote {len(written)} files in {self.settings.resolved_certs_dir}")
        written = init_secrets(self.settings)
        if written:
            report(f"secrets: wrote {', '.join(p.name for p in written)}")

    def up(self, report: Report, only: str | None = None) -> None:
        self.prepare(report)
        for name, server in self.servers.items():
            if only and name != only:
                continue
            report(f"{name}: starting ...")
            report(f"{name}: {server.start()}")

    def down(self, report: Report, only: str | None = None) -> None:
        for name, server in reversed(self.servers.items()):
            if only and name != only:
                continue
            report(f"{name}: {server.stop()}")

    def status(self) -> dict[str, str]:
        result = {}
        for name, server in self.servers.items():
            if not server.is_running():
                result[name] = "stopped"
            else:
                result[name] = "ready" if server.answers() else "running, not answering"
        return result
