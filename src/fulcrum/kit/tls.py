"""Client-side TLS material for one service identity (mutual TLS to every data store)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from fulcrum.kit.config import Service, Settings
from fulcrum.kit.errors import ConfigurationError


@dataclass(frozen=True)
class ClientTLS:
    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def for_service(cls, settings: Settings, service: Service) -> ClientTLS:
        tls = cls(
            ca_file=settings.ca_file(),
            cert_file=settings.cert_file(service.value),
            key_file=settings.key_file(service.value),
        )
        for path in (tls.ca_file, tls.cert_file, tls.key_file):
            if not path.is_file():
                raise ConfigurationError(
                    f"TLS file {path} is missing: run 'fulcrum certs init' or set "
                    "FULCRUM_CERTS_DIR (FULCRUM_TLS=false disables mTLS for debugging)"
                )
        return tls

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        return ctx
