"""Secrets come from files: Kubernetes secret mounts or Vault-Agent-rendered files.

A secret named ``key_pepper`` is found, in order, at:

1. the path in ``FULCRUM_KEY_PEPPER_FILE``;
2. ``<secrets dir>/key_pepper`` (``FULCRUM_SECRETS_DIR``, default ``<home>/secrets/<service>``:
   each service reads its own directory, so the API never holds the worker's signing key).

Outside production a plain ``FULCRUM_KEY_PEPPER`` variable is accepted as a last resort
for debugging. In production the process refuses to start when any secret-like variable is
set, because environment variables leak into crash dumps, ``/proc`` and child processes.
Files are re-read when they change, so a rotated secret is picked up without a restart.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fulcrum.kit.config import Service, Settings
from fulcrum.kit.errors import ConfigurationError

KNOWN_SECRETS = frozenset(
    {
        "database_password",
        "redis_password",
        "key_pepper",
        "audit_signing_key",
        "dev_jwt_signing_key",
    }
)
_SECRET_LIKE = re.compile(r"^FULCRUM_\w*(PASSWORD|SECRET|PEPPER|TOKEN|PRIVATE_KEY|SIGNING_KEY)$")


def secret_env_name(name: str) -> str:
    return f"FULCRUM_{name.upper()}"


def refuse_env_secrets(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    """In production, fail when a secret arrives as a plain environment variable."""
    if not settings.is_production:
        return
    env = os.environ if environ is None else environ
    offenders = sorted(
        var
        for var in env
        if var in {secret_env_name(n) for n in KNOWN_SECRETS} or _SECRET_LIKE.match(var)
    )
    if offenders:
        var = offenders[0]
        raise ConfigurationError(
            f"{var} is a secret and must not be passed as an environment variable in "
            f"production. Mount it as a file (Kubernetes secret or Vault Agent) and set "
            f"{var}_FILE=/path/to/file, or place it in FULCRUM_SECRETS_DIR as "
            f"'{var.removeprefix('FULCRUM_').lower()}'. Unset {var}.",
            field=var,
        )


@dataclass
class FileSecret:
    """A secret backed by a file; re-read when the file's mtime or size changes."""

    path: Path
    _stamp: tuple[int, int] | None = field(default=None, init=False, repr=False)
    _value: bytes = field(default=b"", init=False, repr=False)

    def get(self) -> bytes:
        try:
            st = self.path.stat()
        except FileNotFoundError as exc:
            raise ConfigurationError(f"secret file {self.path} does not exist") from exc
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._value = self.path.read_bytes().strip()
            self._stamp = stamp
        return self._value


@dataclass
class EnvSecret:
    """Development-only fallback; :func:`refuse_env_secrets` forbids it in production."""

    value: bytes = field(repr=False)

    def get(self) -> bytes:
        return self.value


class Secrets:
    """Resolves named secrets for one service's process."""

    def __init__(
        self, settings: Settings, service: Service, environ: Mapping[str, str] | None = None
    ) -> None:
        refuse_env_secrets(settings, environ)
        self._dir = settings.secrets_dir_of(service)
        self._env = os.environ if environ is None else environ

    def source(self, name: str) -> FileSecret | EnvSecret | None:
        if name not in KNOWN_SECRETS:
            raise ValueError(f"unknown secret {name!r}")
        env_name = secret_env_name(name)
        explicit = self._env.get(f"{env_name}_FILE")
        if explicit:
            return FileSecret(Path(explicit))
        candidate = self._dir / name
        if candidate.is_file():
            return FileSecret(candidate)
        if env_name in self._env:
            return EnvSecret(self._env[env_name].encode())
        return None

    def require(self, name: str) -> FileSecret | EnvSecret:
        src = self.source(name)
        if src is None:
            env_name = secret_env_name(name)
            raise ConfigurationError(
                f"secret {name!r} is not configured: set {env_name}_FILE to a file holding it "
                f"or place it at {self._dir / name}"
            )
        return src
