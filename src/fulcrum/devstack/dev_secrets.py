"""Development secrets written as files, the way Kubernetes or Vault Agent would mount them.

Each service gets a directory of its own (``<home>/secrets/<service>``) holding only what it
needs, as each deployment would mount only its own secrets: the worker alone holds the
audit signing key, the API only the key pepper and its Redis password. Public keys that
others verify with go to ``<home>/public``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from fulcrum.kit.config import Service, Settings


def _token() -> bytes:
    return secrets.token_urlsafe(48).encode()


def _ed25519_pem() -> bytes:
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _rsa_pem() -> bytes:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


GENERATORS: dict[str, Callable[[], bytes]] = {
    "key_pepper": _token,
    "redis_password": _token,
    "audit_signing_key": _ed25519_pem,
    "dev_jwt_signing_key": _rsa_pem,
}

# What each service's directory holds. A secret two services share (the pepper) has one value.
SERVICE_SECRETS: dict[Service, tuple[str, ...]] = {
    Service.API: ("key_pepper", "redis_password"),
    Service.WORKER: ("audit_signing_key",),
    Service.ADMIN: ("key_pepper", "dev_jwt_signing_key", "redis_password"),
}
# Per service, not shared: each service authenticates to Redis with its own password.
PER_SERVICE = frozenset({"redis_password"})


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _shared_value(settings: Settings, name: str) -> bytes:
    """The value a shared secret already has in some service's directory (or in the flat
    ``<home>/secrets`` layout of older dev stacks, so existing API keys stay valid)."""
    root = settings.home.absolute() / "secrets"
    for candidate in (
        *(settings.secrets_dir_of(s) / name for s in SERVICE_SECRETS),
        root / name,
    ):
        if candidate.is_file():
            return candidate.read_bytes()
    return GENERATORS[name]()


def init_secrets(settings: Settings) -> list[Path]:
    """Create each missing secret file (mode 0600) and the public keys; never overwrite."""
    written: list[Path] = []
    shared: dict[str, bytes] = {}
    for service, names in SERVICE_SECRETS.items():
        directory = settings.secrets_dir_of(service)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)
        for name in names:
            path = directory / name
            if path.exists():
                continue
            if name in PER_SERVICE:
                value = GENERATORS[name]()
            else:
                value = shared.setdefault(name, _shared_value(settings, name))
            _write_new(path, value, 0o600)
            written.append(path)
    written += _publish_public_keys(settings)
    return written


def _publish_public_keys(settings: Settings) -> list[Path]:
    settings.public_dir.mkdir(parents=True, exist_ok=True)
    sources = {
        settings.resolved_audit_public_keys_file: settings.secrets_dir_of(Service.WORKER)
        / "audit_signing_key",
        settings.resolved_dev_jwt_public_key_file: settings.secrets_dir_of(Service.ADMIN)
        / "dev_jwt_signing_key",
    }
    written = []
    for public, private in sources.items():
        if public.exists():
            continue
        key = serialization.load_pem_private_key(private.read_bytes(), password=None)
        pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        _write_new(public, pem, 0o644)
        written.append(public)
    return written
