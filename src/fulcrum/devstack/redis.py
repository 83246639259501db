"""Redis for the dev stack: TLS only (``port 0``), client certificates required, an ACL user
per service, running as its own unprivileged system user.

Redis 7 cannot take a user from a client certificate, so each service also authenticates with
its own password (secret ``redis_password``); the configuration holds only SHA-256 digests of
them. The ``default`` user is off.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from fulcrum.devstack.process import (
    ensure_system_user,
    failure,
    give_to,
    private_copy,
    read_pid,
    run_as,
    spawn_server,
    stop_server,
    wait_until,
)
from fulcrum.kit.config import Service, Settings
from fulcrum.kit.redis import redis_auth, redis_user
from fulcrum.kit.secrets import Secrets
from fulcrum.kit.tls import ClientTLS

SYSTEM_USER = "fulcrum-redis"

# What each identity may do. The API runs the rate-limit script (and the commands it calls)
# on its own key prefix and nothing else; operators may do anything; the worker uses no Redis.
ACL_RULES: dict[Service, str] = {
    Service.API: (
        "resetkeys ~rl:* resetchannels -@all +ping +auth +hello "
        "+client|setname +evalsha +script|load +time +hmget +hset +pexpire"
    ),
    Service.ADMIN: "~* &* +@all",
}


def acl_lines(settings: Settings) -> list[str]:
    lines = ["user default off"]
    for service, rules in ACL_RULES.items():
        secret = Secrets(settings, service).require("redis_password").get()
        digest = hashlib.sha256(secret).hexdigest()
        lines.append(f"user {redis_user(service)} on #{digest} {rules}")
    return lines


@dataclass
class Redis:
    settings: Settings

    @property
    def root(self) -> Path:
        return (self.settings.home / "redis").absolute()

    @property
    def log(self) -> Path:
        return self.root / "redis.log"

    @property
    def pidfile(self) -> Path:
        return self.root / "redis.pid"

    def client(self) -> redis.Redis:
        s = self.settings
        # A probe: one short attempt, no retries, so a wedged port fails fast.
        probe: dict[str, Any] = {
            "host": s.redis_host,
            "port": s.redis_port,
            "socket_timeout": 2,
            "socket_connect_timeout": 2,
            "retry": Retry(NoBackoff(), 0),
            **redis_auth(s, Service.ADMIN),
        }
        if not s.tls:
            return redis.Redis(**probe)
        tls = ClientTLS.for_service(s, Service.ADMIN)
        return redis.Redis(
            **probe,
            ssl=True,
            ssl_ca_certs=str(tls.ca_file),
            ssl_certfile=str(tls.cert_file),
            ssl_keyfile=str(tls.key_file),
            ssl_cert_reqs="required",
        )

    def answers(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except (redis.RedisError, OSError):
            return False

    def is_running(self) -> bool:
        return read_pid(self.pidfile) is not None

    def _config(self) -> str:
        s = self.settings
        lines = [
            "bind 127.0.0.1",
            "protected-mode yes",
            f"dir {self.root / 'data'}",
            f"pidfile {self.pidfile}",
            f"logfile {self.log}",
            "daemonize no",
            "appendonly yes",
            "save ''",
            *acl_lines(s),
        ]
        if s.tls:
            tls = self.root / "tls"
            tls.mkdir(mode=0o700, exist_ok=True)
            give_to(SYSTEM_USER, tls)
            cert = private_copy(s.cert_file("redis"), tls / "redis.crt", SYSTEM_USER)
            key = private_copy(s.key_file("redis"), tls / "redis.key", SYSTEM_USER)
            ca = private_copy(s.ca_file(), tls / "ca.crt", SYSTEM_USER)
            lines += [
                "port 0",
                f"tls-port {s.redis_port}",
                f"tls-cert-file {cert}",
                f"tls-key-file {key}",
                f"tls-ca-cert-file {ca}",
                "tls-auth-clients yes",
                'tls-protocols "TLSv1.2 TLSv1.3"',
            ]
        else:
            lines.append(f"port {s.redis_port}")
        return "\n".join(lines) + "\n"

    def start(self) -> str:
        if self.is_running():
            if not wait_until(self.answers, 5):
                raise failure("redis", "running but not answering", self.log)
            return "already running"
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server not found: apt-get install redis-server")
        ensure_system_user(SYSTEM_USER)
        self.pidfile.unlink(missing_ok=True)  # stale (not running): maybe root's, from before
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        conf = self.root / "redis.conf"
        conf.write_text(self._config())
        conf.chmod(0o600)
        self.log.write_text("")
        # Also what an older stack, run as root, left in the data directory.
        give_to(SYSTEM_USER, self.root, data, conf, self.log, *data.rglob("*"))
        spawn_server("redis", [*run_as(SYSTEM_USER), binary, str(conf)], self.log, self.answers)
        return "started"

    def stop(self) -> str:
        return stop_server("redis", self.pidfile, self.log)
