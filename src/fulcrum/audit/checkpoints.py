"""Signed checkpoints: an Ed25519 signature over a tenant's (seq, hash) at a moment.

A hash chain alone cannot reveal that its newest records were deleted; a signed
checkpoint can, because whoever deletes them cannot forge a checkpoint for the shorter
chain. The verifier accepts several public keys so that checkpoints signed before a key
rotation stay verifiable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import rfc8785
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fulcrum.audit.records import timestamp_text


@dataclass(frozen=True)
class Checkpoint:
    tenant_id: uuid.UUID
    seq: int
    hash: bytes
    created_at: dt.datetime
    key_id: str
    signature: bytes


def checkpoint_payload(
    tenant_id: uuid.UUID, seq: int, hash: bytes, created_at: dt.datetime
) -> bytes:
    """The signed bytes: RFC 8785 canonical JSON of the pinned values."""
    if created_at.utcoffset() is None:
        # A naive time would be read as the host's local time: signer and verifier could differ.
        raise ValueError("created_at must be timezone-aware")
    return rfc8785.dumps(
        {
            "tenant_id": str(tenant_id),
            "seq": seq,
            "hash": hash.hex(),
            "created_at": timestamp_text(created_at),
        }
    )


def _key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class CheckpointSigner:
    """Signs checkpoints with the ``audit_signing_key`` secret (PKCS8 PEM, Ed25519)."""

    def __init__(self, private_key_pem: bytes) -> None:
        try:
            key = serialization.load_pem_private_key(private_key_pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            # The message names no key material: only that the PEM was unusable.
            raise ValueError("audit signing key is not an unencrypted PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"audit signing key must be Ed25519, not {type(key).__name__}")
        self._key = key
        self.key_id = _key_id(key.public_key())

    def sign(
        self, tenant_id: uuid.UUID, seq: int, hash: bytes, created_at: dt.datetime
    ) -> Checkpoint:
        if seq < 1 or len(hash) != 32:
            raise ValueError("a checkpoint pins a record: seq >= 1 and a SHA-256 hash")
        signature = self._key.sign(checkpoint_payload(tenant_id, seq, hash, created_at))
        return Checkpoint(
            tenant_id=tenant_id,
            seq=seq,
            hash=hash,
            created_at=created_at,
            key_id=self.key_id,
            signature=signature,
        )

    def public_key_pem(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class CheckpointVerifier:
    """Checks checkpoint signatures against the current and any retired public keys."""

    def __init__(self, public_key_pems: Iterable[bytes]) -> None:
        self._keys: dict[str, Ed25519PublicKey] = {}
        for pem in public_key_pems:
            try:
                key = serialization.load_pem_public_key(pem)
            except (ValueError, UnsupportedAlgorithm) as exc:
                raise ValueError("audit verification key is not a PEM public key") from exc
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError(
                    f"audit verification key must be Ed25519, not {type(key).__name__}"
                )
            self._keys[_key_id(key)] = key
        if not self._keys:
            raise ValueError("at least one audit verification key is required")

    def public_key_pems(self) -> list[bytes]:
        """The known keys as PEM, e.g. for an offline bundle."""
        return [
            key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            for key in self._keys.values()
        ]

    def verify(self, cp: Checkpoint) -> bool:
        """True only for a checkpoint signed, unaltered, by one of the known keys."""
        key = self._keys.get(cp.key_id)
        if key is None:
            return False
        try:
            key.verify(
                cp.signature, checkpoint_payload(cp.tenant_id, cp.seq, cp.hash, cp.created_at)
            )
        except InvalidSignature:
            return False
        return True
