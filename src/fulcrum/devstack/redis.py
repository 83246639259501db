"""Redis for the dev stack: TLS only (``port 0``), client certificates required."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from fulcrum.devstack.process import failure, read_pid, spawn_server, stop_server, wait_until
from fulcrum.kit.config import Service, Settings
from fulcrum.kit.tls import ClientTLS


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
        ]
        if s.tls:
            lines += [
                "port 0",
                f"tls-port {s.redis_port}",
                f"tls-cert-file {s.cert_file('redis')}",
                f"tls-key-file {s.key_file('redis')}",
                f"tls-ca-cert-file {s.ca_file()}",
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
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        conf = self.root / "redis.conf"
        conf.write_text(self._config())
        self.log.write_text("")
        spawn_server("redis", [binary, str(conf)], self.log, self.answers)
        return "started"

    def stop(self) -> str:
        return stop_server("redis", self.pidfile, self.log)
