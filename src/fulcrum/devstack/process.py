"""Process helpers shared by the dev stack's servers: pid files, log tails, waiting."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from fulcrum.kit.config import Settings
from fulcrum.kit.errors import FulcrumError


class DevStackError(FulcrumError):
    """A server of the dev stack failed; the message names it and carries its log tail."""

    code = "devstack"


def ensure_system_user(name: str) -> None:
    """As root, create the unprivileged system user a server runs as (idempotent)."""
    if os.geteuid() != 0:
        return
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )


def run_as(name: str) -> list[str]:
    """The command prefix that runs a server as ``name`` when Fulcrum runs as root.

    ``setpriv`` changes user and then executes the server in its own place, so the pid that
    is started is the server's (``runuser`` would stay as its parent, and be left stopped
    when the server is signalled directly)."""
    if os.geteuid() != 0:
        return []
    entry = pwd.getpwnam(name)
    return [
        "setpriv",
        f"--reuid={entry.pw_uid}",
        f"--regid={entry.pw_gid}",
        "--init-groups",
        "--",
    ]


def give_to(name: str, *paths: Path) -> None:
    """As root, hand ``paths`` to the system user ``name``."""
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam(name)
    for path in paths:
        os.chown(path, entry.pw_uid, entry.pw_gid)


def private_copy(source: Path, dest: Path, owner: str) -> Path:
    """A copy of a key or certificate that only the server's user can read: the originals
    under <home>/certs stay root's."""
    shutil.copyfile(source, dest)
    dest.chmod(0o600)
    give_to(owner, dest)
    return dest


def server_tls(settings: Settings, root: Path, name: str, owner: str) -> tuple[Path, Path, Path]:
    """The server ``name``'s certificate, key and CA, copied into ``root/tls`` for its system
    user ``owner`` alone: (cert, key, ca)."""
    tls = root / "tls"
    tls.mkdir(mode=0o700, exist_ok=True)
    give_to(owner, tls)
    return (
        private_copy(settings.cert_file(name), tls / f"{name}.crt", owner),
        private_copy(settings.key_file(name), tls / f"{name}.key", owner),
        private_copy(settings.ca_file(), tls / "ca.crt", owner),
    )


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        content = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(content[-lines:]) or f"(log {path} is empty)"


def failure(service: str, reason: str, log: Path) -> DevStackError:
    return DevStackError(
        f"{service} failed: {reason}\n--- last lines of {log} ---\n{log_tail(log)}"
    )


def read_pid(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


def terminate(pid: int, timeout: float = 15.0) -> bool:
    """SIGTERM, wait, then SIGKILL. Returns True when the process is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    if wait_until(lambda: not pid_alive(pid), timeout):
        return True
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    return wait_until(lambda: not pid_alive(pid), 5.0)


def spawn_server(
    service: str, argv: list[str], log: Path, answers: Callable[[], bool], *, timeout: float = 20
) -> None:
    """Start a server in its own session (it outlives the CLI), output appended to ``log``,
    and wait until it answers; raise naming it, with its log tail, if it exits or hangs."""
    with log.open("a") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    if not wait_until(lambda: proc.poll() is not None or answers(), timeout, 0.2):
        raise failure(service, f"did not answer within {timeout:.0f}s", log)
    if proc.poll() is not None:
        raise failure(service, f"exited with status {proc.returncode}", log)


def stop_server(service: str, pidfile: Path, log: Path) -> str:
    pid = read_pid(pidfile)
    if pid is None:
        return "not running"
    if not terminate(pid):
        raise failure(service, f"pid {pid} did not stop", log)
    return "stopped"


@dataclass
class SpawnedServer(ABC):
    """A server the stack runs as its own system user, with its configuration, data, log and
    pid file under ``<home>/<name>``. Subclasses say how to configure, run and probe it."""

    settings: Settings
    name: ClassVar[str]
    system_user: ClassVar[str]
    data_dir: ClassVar[str]  # below the root; handed to the system user

    @property
    def root(self) -> Path:
        return (self.settings.home / self.name).absolute()

    @property
    def log(self) -> Path:
        return self.root / f"{self.name}.log"

    @property
    def pidfile(self) -> Path:
        return self.root / f"{self.name}.pid"

    @abstractmethod
    def config(self) -> str:
        """The server's configuration file."""

    @abstractmethod
    def command(self, conf: Path) -> list[str]:
        """The command that runs the server with ``conf`` (its binary found first)."""

    @abstractmethod
    def answers(self) -> bool:
        """Whether the server answers a client as the stack's own services would."""

    def is_running(self) -> bool:
        return read_pid(self.pidfile) is not None

    def start(self) -> str:
        if self.is_running():
            if not wait_until(self.answers, 5):
                raise failure(self.name, "running but not answering", self.log)
            return "already running"
        conf = self.root / f"{self.name}.conf"
        command = self.command(conf)  # finds the binary first: a missing one says so
        ensure_system_user(self.system_user)
        self.pidfile.unlink(missing_ok=True)  # stale (not running): maybe root's, from before
        data = self.root / self.data_dir
        data.mkdir(parents=True, exist_ok=True)
        conf.write_text(self.config())
        conf.chmod(0o600)
        self.log.write_text("")
        # Also what an older stack, run as root, left in the data directory.
        give_to(self.system_user, self.root, data, conf, self.log, *data.rglob("*"))
        spawn_server(self.name, [*run_as(self.system_user), *command], self.log, self.answers)
        return "started"

    def stop(self) -> str:
        return stop_server(self.name, self.pidfile, self.log)
