"""A dev stack of real servers for one test session, under its own directory and ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from fulcrum.devstack.stack import DevStack
from fulcrum.kit.config import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_home(prefix: str = "fulcrum-test-") -> Path:
    # Not pytest's tmp_path: its 0700 parents would keep the PostgreSQL system user out.
    home = Path(tempfile.mkdtemp(prefix=prefix))
    home.chmod(0o755)
    return home


def stack_env(home: Path, *, tls: bool = True) -> dict[str, str]:
    return {
        "FULCRUM_ENV": "test",
        "FULCRUM_HOME": str(home),
        "FULCRUM_TLS": "true" if tls else "false",
        "FULCRUM_DATABASE_PORT": str(free_port()),
        "FULCRUM_REDIS_PORT": str(free_port()),
        "FULCRUM_NATS_PORT": str(free_port()),
    }


def settings_from(env: dict[str, str]) -> Settings:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return Settings()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class LiveStack:
    home: Path
    env: dict[str, str]
    settings: Settings = field(init=False)
    devstack: DevStack = field(init=False)
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.settings = settings_from(self.env)
        self.devstack = DevStack(self.settings)

    def up(self) -> None:
        self.devstack.up(self.lines.append)

    def down(self) -> None:
        self.devstack.down(self.lines.append)

    def destroy(self) -> None:
        self.down()
        shutil.rmtree(self.home, ignore_errors=True)

    def process_env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FULCRUM_")}
        env.update(self.env)
        env.update(extra)
        return env

    def fulcrum(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the ``fulcrum`` command line against this stack."""
        return subprocess.run(
            [sys.executable, "-m", "fulcrum.cli", *args],
            env=self.process_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def superuser_dsn(self) -> str:
        return self.devstack.postgres.superuser_dsn(self.settings.database_name)
