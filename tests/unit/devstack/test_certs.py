"""The development CA signs one certificate per service with the right names and usages."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fulcrum.devstack.certs import SERVICE_CERTS, init_certs


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_init_creates_ca_and_every_service(tmp_path: Path) -> None:
    written = init_certs(tmp_path)
    assert len(written) == 2 + 2 * len(SERVICE_CERTS)
    ca = load(tmp_path / "ca.crt")
    for spec in SERVICE_CERTS:
        cert = load(tmp_path / f"{spec.name}.crt")
        cert.verify_directly_issued_by(ca)
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        assert cn == f"fulcrum-{spec.name}"
        usages = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        assert (ExtendedKeyUsageOID.SERVER_AUTH in usages) == spec.server
        assert (ExtendedKeyUsageOID.CLIENT_AUTH in usages) == spec.client
        assert (tmp_path / f"{spec.name}.key").stat().st_mode & 0o077 == 0


def test_init_is_idempotent_and_force_replaces(tmp_path: Path) -> None:
    init_certs(tmp_path)
    first = (tmp_path / "ca.crt").read_bytes()
    assert init_certs(tmp_path) == []
    assert (tmp_path / "ca.crt").read_bytes() == first
    init_certs(tmp_path, force=True)
    assert (tmp_path / "ca.crt").read_bytes() != first
