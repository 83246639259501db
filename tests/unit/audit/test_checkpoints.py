"""Checkpoints: Ed25519 over canonical (tenant, seq, hash, time); several keys verify."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from fulcrum.audit.checkpoints import (
    CheckpointSigner,
    CheckpointVerifier,
    checkpoint_payload,
)
from fulcrum.devstack.dev_secrets import init_secrets
from fulcrum.kit.config import Service, Settings
from tests.unit.audit.ledger import OTHER_TENANT, SIGNED_AT, TENANT, private_key_pem

HASH = hashlib.sha256(b"record 42").digest()


@pytest.fixture
def signer() -> CheckpointSigner:
    return CheckpointSigner(private_key_pem())


def test_the_payload_is_canonical_json_of_the_pinned_values() -> None:
    payload = checkpoint_payload(TENANT, 42, HASH, SIGNED_AT)
    assert payload == (
        b'{"created_at":"2026-11-28T12:00:00.000000Z",'
        b'"hash":"' + HASH.hex().encode() + b'","seq":42,'
        b'"tenant_id":"5f0c6a2e-3b1d-4c8e-9a7f-2d4e6b8c0a13"}'
    )


def test_the_payload_pins_the_instant_whatever_the_zone() -> None:
    tokyo = SIGNED_AT.astimezone(dt.timezone(dt.timedelta(hours=9)))
    assert checkpoint_payload(TENANT, 42, HASH, tokyo) == checkpoint_payload(
        TENANT, 42, HASH, SIGNED_AT
    )


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        checkpoint_payload(TENANT, 42, HASH, dt.datetime(2026, 11, 28, 12, 0))


def test_a_signed_checkpoint_verifies(signer: CheckpointSigner) -> None:
    cp = signer.sign(TENANT, 42, HASH, SIGNED_AT)

    assert (cp.tenant_id, cp.seq, cp.hash, cp.created_at) == (TENANT, 42, HASH, SIGNED_AT)
    assert cp.key_id == signer.key_id
    assert len(cp.signature) == 64
    assert CheckpointVerifier([signer.public_key_pem()]).verify(cp)


def test_the_key_id_is_the_start_of_the_sha256_of_the_raw_public_key() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert CheckpointSigner(pem).key_id == hashlib.sha256(raw).hexdigest()[:16]


def test_the_public_key_is_a_subject_public_key_info_pem(signer: CheckpointSigner) -> None:
    pem = signer.public_key_pem()
    assert pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert isinstance(serialization.load_pem_public_key(pem), ed25519.Ed25519PublicKey)


def test_the_dev_stack_keys_sign_and_verify_only_where_they_belong(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    init_secrets(settings)
    signer = CheckpointSigner(
        (settings.secrets_dir_of(Service.WORKER) / "audit_signing_key").read_bytes()
    )
    cp = signer.sign(TENANT, 1, HASH, SIGNED_AT)
    public = settings.resolved_audit_public_keys_file.read_bytes()
    assert CheckpointVerifier([public]).verify(cp)
    # Only the worker holds the private key.
    assert not (settings.secrets_dir_of(Service.API) / "audit_signing_key").exists()
    assert not (settings.secrets_dir_of(Service.ADMIN) / "audit_signing_key").exists()


@pytest.mark.parametrize(
    "change",
    [
        {"tenant_id": OTHER_TENANT},
        {"seq": 43},
        {"hash": hashlib.sha256(b"record 42, altered").digest()},
        {"created_at": SIGNED_AT + dt.timedelta(microseconds=1)},
        {"signature": bytes(64)},
    ],
    ids=["tenant", "seq", "hash", "created_at", "signature"],
)
def test_any_altered_field_fails_verification(
    signer: CheckpointSigner, change: dict[str, object]
) -> None:
    cp = signer.sign(TENANT, 42, HASH, SIGNED_AT)
    altered = dataclasses.replace(cp, **change)  # type: ignore[arg-type]
    assert not CheckpointVerifier([signer.public_key_pem()]).verify(altered)


def test_a_flipped_signature_bit_fails(signer: CheckpointSigner) -> None:
    cp = signer.sign(TENANT, 42, HASH, SIGNED_AT)
    flipped = bytes([cp.signature[0] ^ 1]) + cp.signature[1:]
    assert not CheckpointVerifier([signer.public_key_pem()]).verify(
        dataclasses.replace(cp, signature=flipped)
    )


def test_an_unknown_key_fails(signer: CheckpointSigner) -> None:
    stranger = CheckpointSigner(private_key_pem())
    cp = stranger.sign(TENANT, 42, HASH, SIGNED_AT)
    verifier = CheckpointVerifier([signer.public_key_pem()])

    assert not verifier.verify(cp)
    # Claiming the trusted key's id does not help: the signature is checked against it.
    assert not verifier.verify(dataclasses.replace(cp, key_id=signer.key_id))


def test_checkpoints_of_a_retired_key_stay_verifiable_after_rotation() -> None:
    old, new = CheckpointSigner(private_key_pem()), CheckpointSigner(private_key_pem())
    before = old.sign(TENANT, 100, HASH, SIGNED_AT)
    after = new.sign(TENANT, 200, HASH, SIGNED_AT + dt.timedelta(days=30))

    both = CheckpointVerifier([new.public_key_pem(), old.public_key_pem()])
    assert both.verify(before)
    assert both.verify(after)

    only_new = CheckpointVerifier([new.public_key_pem()])
    assert not only_new.verify(before)
    assert only_new.verify(after)


@pytest.mark.parametrize(("seq", "hash_"), [(0, HASH), (1, b"short")], ids=["seq-0", "short-hash"])
def test_a_checkpoint_must_pin_a_record(signer: CheckpointSigner, seq: int, hash_: bytes) -> None:
    with pytest.raises(ValueError, match="seq >= 1"):
        signer.sign(TENANT, seq, hash_, SIGNED_AT)


def _pkcs8(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_the_signer_refuses_other_key_types() -> None:
    with pytest.raises(ValueError, match=r"must be Ed25519, not .*RSA"):
        CheckpointSigner(_pkcs8(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    with pytest.raises(ValueError, match="must be Ed25519, not EC"):
        CheckpointSigner(_pkcs8(ec.generate_private_key(ec.SECP256R1())))


def test_the_signer_refuses_unusable_pem_without_echoing_it() -> None:
    encrypted = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    for pem in (b"not a key", encrypted, CheckpointSigner(private_key_pem()).public_key_pem()):
        with pytest.raises(ValueError, match="not an unencrypted PEM private key") as err:
            CheckpointSigner(pem)
        assert "BEGIN" not in str(err.value)


def test_the_verifier_refuses_other_key_types_and_no_keys() -> None:
    rsa_public = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ValueError, match=r"must be Ed25519, not .*RSA"):
        CheckpointVerifier([rsa_public])
    with pytest.raises(ValueError, match="not a PEM public key"):
        CheckpointVerifier([private_key_pem()])
    with pytest.raises(ValueError, match="at least one"):
        CheckpointVerifier([])
