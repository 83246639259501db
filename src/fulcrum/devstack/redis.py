"""Redis for the dev stack: TLS only (``port 0``), client certificates required, an ACL user
per service, running as its own unprivileged system user.

Redis 7 cannot take a user from a client certificate, so each service also authenticates with
its own password (secret ``redis_password``); the configuration holds only SHA-256 digests of
them. The ``default`` user is off.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from fulcrum.devstack.process import SpawnedServer, server_tls
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


class Redis(SpawnedServer):
    name = "redis"
    system_user = SYSTEM_USER
    data_dir = "data"

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

    def config(self) -> str:
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
            cert, key, ca = server_tls(s, self.root, "redis", SYSTEM_USER)
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

    def command(self, conf: Path) -> list[str]:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server not found: apt-get install redis-server")
        return [binary, str(conf)]
