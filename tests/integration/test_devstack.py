"""The dev stack is idempotent and names the server that failed, with its log tail."""

from __future__ import annotations

import os
import pwd
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from fulcrum.devstack.process import DevStackError
from tests.support.stack import LiveStack, new_home, stack_env


def test_up_twice_is_harmless(stack: LiveStack) -> None:
    lines: list[str] = []
    stack.devstack.up(lines.append)
    assert "postgresql: already running" in lines
    assert "redis: already running" in lines
    assert "nats: already running" in lines
    assert stack.devstack.status() == {"postgresql": "ready", "redis": "ready", "nats": "ready"}


def test_state_lives_under_one_directory(stack: LiveStack) -> None:
    home = stack.home
    for path in (
        "certs/ca.crt",
        "secrets/api/key_pepper",
        "secrets/worker/audit_signing_key",
        "public/audit_public_keys.pem",
        "postgres/data/PG_VERSION",
        "redis/redis.conf",
        "nats/nats.conf",
        "nats/jetstream",
    ):
        assert (home / path).exists(), path


@pytest.fixture
def blocked_stack() -> Iterator[tuple[LiveStack, socket.socket]]:
    home = new_home("fulcrum-blocked-")
    test_stack = LiveStack(home, stack_env(home))
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    yield test_stack, blocker
    blocker.close()
    test_stack.destroy()


@pytest.mark.parametrize(
    ("service", "port_setting"),
    [("redis", "redis_port"), ("postgresql", "database_port"), ("nats", "nats_port")],
)
def test_failure_names_the_server_and_shows_its_log(
    blocked_stack: tuple[LiveStack, socket.socket], service: str, port_setting: str
) -> None:
    test_stack, blocker = blocked_stack
    blocker.bind(("127.0.0.1", getattr(test_stack.settings, port_setting)))
    blocker.listen()
    with pytest.raises(DevStackError) as err:
        test_stack.devstack.up(lambda _: None, only=service)
    message = err.value.message
    assert message.startswith(f"{service} failed")
    assert "--- last lines of" in message
    assert "in use" in message.lower()


@pytest.mark.skipif(os.geteuid() != 0, reason="servers change user only when started as root")
def test_servers_run_as_unprivileged_system_users(stack: LiveStack) -> None:
    pidfiles = {
        "fulcrum-pg": stack.home / "postgres" / "data" / "postmaster.pid",
        "fulcrum-redis": stack.home / "redis" / "redis.pid",
        "fulcrum-nats": stack.home / "nats" / "nats.pid",
    }
    for user, pidfile in pidfiles.items():
        pid = int(pidfile.read_text().split()[0])
        status = Path(f"/proc/{pid}/status").read_text()
        uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
        assert uid == pwd.getpwnam(user).pw_uid, (user, pidfile)
        assert uid != 0
