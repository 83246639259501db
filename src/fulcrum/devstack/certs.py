"""``fulcrum certs init``: a development CA and one certificate per service.

Server certificates (postgres, redis, nats, api) carry ``localhost`` and ``127.0.0.1`` as
subject alternative names. Client certificates (api, worker, admin) carry the common name
``fulcrum-<service>``: PostgreSQL maps that name to a database role (``pg_ident.conf``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=825)


@dataclass(frozen=True)
class CertSpec:
    name: str
    server: bool
    client: bool

    @property
    def common_name(self) -> str:
        return f"fulcrum-{self.name}"


SERVICE_CERTS = (
    CertSpec("postgres", server=True, client=False),
    CertSpec("redis", server=True, client=False),
    CertSpec("nats", server=True, client=False),
    CertSpec("api", server=True, client=True),
    CertSpec("worker", server=False, client=True),
    CertSpec("admin", server=False, client=True),
)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Fulcrum development"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def create_ca(
    common_name: str = "Fulcrum development CA",
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue(
    spec: CertSpec, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    usages = []
    if spec.server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if spec.client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(spec.common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName(spec.common_name),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
    )
    return builder.sign(ca_key, hashes.SHA256()), key


def certificate_subject(path: Path) -> str:
    """A certificate's subject as NATS names users mapped from certificates (RFC 4514)."""
    return x509.load_pem_x509_certificate(path.read_bytes()).subject.rfc4514_string()


def init_certs(certs_dir: Path, *, force: bool = False) -> list[Path]:
    """Create the CA and every service certificate; keep existing ones unless ``force``.

    Returns the files written (empty when everything already existed).
    """
    certs_dir.mkdir(parents=True, exist_ok=True)
    certs_dir.chmod(0o755)
    ca_crt, ca_keyfile = certs_dir / "ca.crt", certs_dir / "ca.key"
    written: list[Path] = []
    if force or not (ca_crt.exists() and ca_keyfile.exists()):
        ca_cert, ca_key = create_ca()
        _write_cert(ca_crt, ca_cert)
        _write_key(ca_keyfile, ca_key)
        written += [ca_crt, ca_keyfile]
        force = True  # a new CA invalidates every certificate it did not sign
    else:
        ca_cert = x509.load_pem_x509_certificate(ca_crt.read_bytes())
        loaded = serialization.load_pem_private_key(ca_keyfile.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{ca_keyfile} is not an EC private key")
        ca_key = loaded
    for spec in SERVICE_CERTS:
        crt, keyfile = certs_dir / f"{spec.name}.crt", certs_dir / f"{spec.name}.key"
        if not force and crt.exists() and keyfile.exists():
            continue
        cert, key = issue(spec, ca_cert, ca_key)
        _write_cert(crt, cert)
        _write_key(keyfile, key)
        written += [crt, keyfile]
    return written
