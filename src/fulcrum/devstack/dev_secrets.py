"""Development secrets written as files, the way Kubernetes or Vault Agent would mount them."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa


def _pepper() -> bytes:
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
    "key_pepper": _pepper,
    "audit_signing_key": _ed25519_pem,
    "dev_jwt_signing_key": _rsa_pem,
}


def init_secrets(secrets_dir: Path) -> list[Path]:
    """Create each missing secret file (mode 0600); never overwrite an existing one."""
    secrets_dir.mkdir(parents=True, exist_ok=True)
    secrets_dir.chmod(0o700)
    written = []
    for name, generate in GENERATORS.items():
        path = secrets_dir / name
        if path.exists():
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(generate())
        written.append(path)
    return written
