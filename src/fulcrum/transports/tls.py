"""TLS of the API's own ports (REST and gRPC): which certificate, and its reload on change.

A renewed certificate (cert-manager, certbot, ``fulcrum certs init --force``) is picked up
without a restart: REST loads it again into the same ``SSLContext``, gRPC's dynamic
credentials fetch it on the next handshake. A pair that does not match (one file written,
the other not yet) is ignored until it does, so a half-written renewal never breaks TLS.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from fulcrum.kit.config import Settings
from fulcrum.kit.errors import ConfigurationError
from fulcrum.kit.logging import get_logger

log = get_logger(__name__)

Stamp = tuple[int, int, int, int]


@dataclass(frozen=True)
class CertificatePair:
    cert_file: Path
    key_file: Path

    def stamp(self) -> Stamp:
        cert, key = self.cert_file.stat(), self.key_file.stat()
        return (cert.st_mtime_ns, cert.st_size, key.st_mtime_ns, key.st_size)

    def read(self) -> tuple[bytes, bytes]:
        """Both files, once they hold a certificate and its own key."""
        cert_pem, key_pem = self.cert_file.read_bytes(), self.key_file.read_bytes()
        certificate = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        pem = serialization.Encoding.PEM
        if certificate.public_key().public_bytes(pem, spki) != key.public_key().public_bytes(
            pem, spki
        ):
            raise ValueError(f"{self.key_file} is not the key of {self.cert_file}")
        return cert_pem, key_pem


def api_certificate(settings: Settings) -> CertificatePair | None:
    """The API ports' certificate, or None when a TLS-terminating proxy is declared."""
    if settings.api_tls_terminated_upstream:
        return None
    cert, key = settings.api_tls_cert_file, settings.api_tls_key_file
    if (cert is None or key is None) and settings.is_production:
        raise ConfigurationError(
            "the API serves TLS in production: set FULCRUM_API_TLS_CERT_FILE and "
            "FULCRUM_API_TLS_KEY_FILE, or FULCRUM_API_TLS_TERMINATED_UPSTREAM=true when a "
            "TLS-terminating proxy is in front of the API ports"
        )
    pair = CertificatePair(cert or settings.cert_file("api"), key or settings.key_file("api"))
    for path in (pair.cert_file, pair.key_file):
        if not path.is_file():
            raise ConfigurationError(
                f"TLS file {path} of the API ports is missing: run 'fulcrum certs init', or set "
                "FULCRUM_API_TLS_CERT_FILE and FULCRUM_API_TLS_KEY_FILE (or "
                "FULCRUM_API_TLS_TERMINATED_UPSTREAM=true behind a TLS-terminating proxy)"
            )
    try:
        pair.read()
    except ValueError as exc:
        raise ConfigurationError(f"the API's TLS certificate cannot be used: {exc}") from exc
    return pair


class ReloadingTLS:
    """The server TLS material of both API ports, reloaded when its files change."""

    def __init__(self, pair: CertificatePair, check_every_seconds: float) -> None:
        self.pair = pair
        self.check_every = check_every_seconds
        self.ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.ssl_context.set_alpn_protocols(["http/1.1"])
        self.ssl_context.load_cert_chain(pair.cert_file, pair.key_file)
        self._rest_stamp = self._grpc_stamp = pair.stamp()
        self._lock = threading.Lock()
        self._grpc_checked = time.monotonic()

    def refresh_rest(self) -> None:
        """Load a changed certificate into the REST port's context (new handshakes use it)."""
        changed = self._changed(self._rest_stamp)
        if changed is None:
            return
        try:
            self.ssl_context.load_cert_chain(self.pair.cert_file, self.pair.key_file)
        except (OSError, ssl.SSLError) as exc:  # the files changed again meanwhile: next tick
            log.warning("api.tls_not_reloaded", reason=str(exc))
            return
        self._rest_stamp = changed[0]
        log.info("api.tls_reloaded", port="rest", cert_file=str(self.pair.cert_file))

    def grpc_credentials(self) -> grpc.ServerCredentials:
        cert_pem, key_pem = self.pair.read()
        # The fetcher may return None ("keep the current one", as gRPC documents); the
        # stubs do not say so.
        fetch = cast(Callable[[], grpc.ServerCertificateConfiguration], self._fetch_grpc)
        return grpc.dynamic_ssl_server_credentials(
            grpc.ssl_server_certificate_configuration([(key_pem, cert_pem)]),
            fetch,
            require_client_authentication=False,
        )

    def _fetch_grpc(self) -> grpc.ServerCertificateConfiguration | None:
        # gRPC calls this on every handshake, from its own threads: check the files at most
        # every check_every seconds, and return None (keep the current one) otherwise.
        with self._lock:
            now = time.monotonic()
            if now - self._grpc_checked < self.check_every:
                return None
            self._grpc_checked = now
            changed = self._changed(self._grpc_stamp)
            if changed is None:
                return None
            self._grpc_stamp, (cert_pem, key_pem) = changed
        log.info("api.tls_reloaded", port="grpc", cert_file=str(self.pair.cert_file))
        return grpc.ssl_server_certificate_configuration([(key_pem, cert_pem)])

    def _changed(self, last: Stamp) -> tuple[Stamp, tuple[bytes, bytes]] | None:
        """The files' new stamp and contents when they changed and hold a matching pair."""
        try:
            stamp = self.pair.stamp()
            if stamp == last:
                return None
            return stamp, self.pair.read()
        except (OSError, ValueError) as exc:
            log.warning("api.tls_not_reloaded", reason=str(exc))
            return None
