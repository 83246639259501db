"""PostgreSQL for the dev stack: ``initdb`` once, TLS with client certificates, roles.

PostgreSQL refuses to run as root, so when Fulcrum runs as root the cluster belongs to a
dedicated system user (``fulcrum-pg``) and every server command runs through ``runuser``.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg

from fulcrum.devstack.process import (
    ensure_system_user,
    failure,
    give_to,
    run_as,
    wait_until,
)
from fulcrum.kit.config import API_ROLE, OWNER_ROLE, SERVICE_ROLES, WORKER_ROLE, Settings

SYSTEM_USER = "fulcrum-pg"
SUPERUSER = "postgres"


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for bindir in versions:
        if (bindir / name).exists():
            return str(bindir / name)
    raise FileNotFoundError(f"{name} not found: install PostgreSQL (apt-get install postgresql)")


@dataclass
class Postgres:
    settings: Settings

    @property
    def root(self) -> Path:
        return (self.settings.home / "postgres").absolute()

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    # --- identity -----------------------------------------------------------------------

    def _as_owner(self) -> list[str]:
        return run_as(SYSTEM_USER)

    def _ensure_system_user(self) -> None:
        ensure_system_user(SYSTEM_USER)

    def _chown(self, *paths: Path) -> None:
        give_to(SYSTEM_USER, *paths)

    # --- lifecycle ----------------------------------------------------------------------

    def is_running(self) -> bool:
        result = subprocess.run(
            [*self._as_owner(), _pg_bin("pg_ctl"), "status", "-D", str(self.data)],
            capture_output=True,
            check=False,
        )
        return result.returncode == 0

    def answers(self) -> bool:
        try:
            with psycopg.connect(self.superuser_dsn(), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def superuser_dsn(self, dbname: str = "postgres") -> str:
        return (
            f"host={self.socket_dir} port={self.settings.database_port} "
            f"user={SUPERUSER} dbname={dbname}"
        )

    def start(self) -> str:
        self._ensure_system_user()
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        if self.is_running():
            if not self.answers():
                raise failure("postgresql", "running but not answering", self.log)
            return "already running"
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        self._configure()
        result = subprocess.run(
            [
                *self._as_owner(),
                _pg_bin("pg_ctl"),
                "start",
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "30",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or not wait_until(self.answers, 30):
            raise failure("postgresql", (result.stderr or result.stdout).strip(), self.log)
        self.bootstrap()
        return "started"

    def stop(self) -> str:
        if not self.data.exists() or not self.is_running():
            return "not running"
        result = subprocess.run(
            [
                *self._as_owner(),
                _pg_bin("pg_ctl"),
                "stop",
                "-D",
                str(self.data),
                "-m",
                "fast",
                "-w",
                "-t",
                "30",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise failure("postgresql", f"pg_ctl stop: {result.stderr.strip()}", self.log)
        return "stopped"

    def _initdb(self) -> None:
        if self.data.exists():
            shutil.rmtree(self.data)
        self.data.mkdir(mode=0o700)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        self.log.touch()
        self._chown(self.data, self.socket_dir, self.log)
        result = subprocess.run(
            [
                *self._as_owner(),
                _pg_bin("initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=reject",
                "--encoding=UTF8",
                "--locale=C",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            shutil.rmtree(self.data, ignore_errors=True)
            raise failure("postgresql", f"initdb: {result.stderr.strip()}", self.log)

    def _configure(self) -> None:
        """(Re)write TLS material, postgresql.conf additions, pg_hba and pg_ident."""
        s = self.settings
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        self._chown(self.socket_dir)
        lines = [
            "listen_addresses = '127.0.0.1'",
            f"port = {s.database_port}",
            f"unix_socket_directories = '{self.socket_dir}'",
            "max_connections = 200",
            "fsync = on",
            f"ssl = {'on' if s.tls else 'off'}",
        ]
        if s.tls:
            tls_files = {
                "server.crt": s.cert_file("postgres"),
                "server.key": s.key_file("postgres"),
                "root.crt": s.ca_file(),
            }
            for target, source in tls_files.items():
                dest = self.data / target
                shutil.copyfile(source, dest)
                dest.chmod(0o600)
                self._chown(dest)
            lines += [
                "ssl_cert_file = 'server.crt'",
                "ssl_key_file = 'server.key'",
                "ssl_ca_file = 'root.crt'",
                "ssl_min_protocol_version = 'TLSv1.2'",
            ]
        (self.data / "fulcrum.conf").write_text("\n".join(lines) + "\n")
        conf = self.data / "postgresql.conf"
        include = "include = 'fulcrum.conf'"
        if include not in conf.read_text():
            with conf.open("a") as fh:
                fh.write(f"\n{include}\n")
        # The superuser is reachable only over the private unix socket. Over TCP every
        # client must present a certificate from our CA whose CN maps to its role.
        hba = ["local all all trust"]
        if s.tls:
            hba.append("hostssl all all 127.0.0.1/32 cert map=fulcrum")
        else:
            hba.append("host all all 127.0.0.1/32 trust")
        (self.data / "pg_hba.conf").write_text("\n".join(hba) + "\n")
        # One role per certificate: the API's certificate cannot log in as the worker
        # (which writes the ledger) nor as the owner.
        ident = [
            f"fulcrum fulcrum-api {API_ROLE}",
            f"fulcrum fulcrum-worker {WORKER_ROLE}",
            f"fulcrum fulcrum-admin {OWNER_ROLE}",
        ]
        (self.data / "pg_ident.conf").write_text("\n".join(ident) + "\n")
        for name in ("fulcrum.conf", "pg_hba.conf", "pg_ident.conf"):
            self._chown(self.data / name)

    def bootstrap(self) -> None:
        """Create the owner and service roles and the database (idempotent; superuser)."""
        dbname = self.settings.database_name
        with psycopg.connect(self.superuser_dsn(), autocommit=True) as conn:
            for role in (OWNER_ROLE, *SERVICE_ROLES):
                exists = conn.execute(
                    "SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)
                ).fetchone()
                if not exists:
                    conn.execute(
                        f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
                        "NOBYPASSRLS NOREPLICATION"
                    )
            if not conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)
            ).fetchone():
                conn.execute(f'CREATE DATABASE "{dbname}" OWNER "{OWNER_ROLE}"')
            conn.execute(f'REVOKE ALL ON DATABASE "{dbname}" FROM PUBLIC')
            for role in SERVICE_ROLES:
                conn.execute(f'GRANT CONNECT ON DATABASE "{dbname}" TO "{role}"')
        with psycopg.connect(self.superuser_dsn(dbname), autocommit=True) as conn:
            conn.execute(f'ALTER SCHEMA public OWNER TO "{OWNER_ROLE}"')
            conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
            for role in SERVICE_ROLES:
                conn.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
