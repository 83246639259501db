"""Dashboard users: Clerk session JWTs (RS256), verified locally.

Keys come from a configured PEM public key or a JWKS URL; the JWKS is cached and fetched
only when a token names an unknown ``kid`` (at most once per ``min_refresh``), so after the
first fetch a request waits on Clerk only when Clerk has rotated its keys. Only RS256 is
accepted: ``alg: none`` and HS256 tokens (including ones "signed" with the public key as an
HMAC secret) are refused.

Without Clerk, outside production, :class:`DevIssuer` signs tokens with a local RSA key so
the dashboard and the tests work offline.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fulcrum.kit.errors import Unauthenticated

ALGORITHM = "RS256"
DEV_ISSUER = "https://fulcrum.dev.local"
DEV_AUTHORIZED_PARTY = "http://127.0.0.1:3000"
REQUIRED_CLAIMS = ["exp", "iat", "iss", "sub"]


class AuthFailure(Unauthenticated):
    """An authentication failure with a bounded ``reason`` label for metrics."""

    def __init__(self, reason: str, message: str = "invalid credentials") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class VerifiedToken:
    subject: str
    org_id: str | None
    claims: dict[str, Any]


class KeySource(Protocol):
    def key_for(self, kid: str | None) -> rsa.RSAPublicKey: ...


class PemKeySource:
    def __init__(self, pem: bytes) -> None:
        key = serialization.load_pem_public_key(pem)
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("the Clerk public key must be an RSA public key")
        self._key = key

    def key_for(self, kid: str | None) -> rsa.RSAPublicKey:
        return self._key


class JwksKeySource:
    """A JWKS fetched once, then again only for an unknown ``kid``."""

    def __init__(self, url: str, *, min_refresh: float = 30.0, timeout: float = 5.0) -> None:
        self._url = url
        self._min_refresh = min_refresh
        self._timeout = timeout
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def _fetch(self) -> None:
        if not self._url.startswith(("https://", "http://")):
            raise ValueError("the JWKS URL must be http(s)")
        # Count the attempt, not the success: a broken endpoint must not be hammered by
        # tokens with made-up kids.
        self._fetched_at = time.monotonic()
        with urllib.request.urlopen(self._url, timeout=self._timeout) as response:  # noqa: S310
            document = json.load(response)
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise ValueError("the JWKS document has no 'keys' list")
        keys: dict[str, rsa.RSAPublicKey] = {}
        for jwk in entries:
            if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or "kid" not in jwk:
                continue
            try:
                key = jwt.algorithms.RSAAlgorithm.from_jwk(jwk)
            except (jwt.PyJWTError, ValueError):
                continue
            if isinstance(key, rsa.RSAPublicKey):
                keys[str(jwk["kid"])] = key
        self._keys = keys

    def key_for(self, kid: str | None) -> rsa.RSAPublicKey:
        if kid is None:
            raise AuthFailure("jwt_no_kid")
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:
            if kid not in self._keys and time.monotonic() - self._fetched_at >= self._min_refresh:
                try:
                    self._fetch()
                except (OSError, ValueError, http.client.HTTPException) as exc:
                    raise AuthFailure("jwks_unavailable") from exc
        key = self._keys.get(kid)
        if key is None:
            raise AuthFailure("jwt_unknown_kid")
        return key


class JwtVerifier:
    def __init__(
        self,
        issuer: str,
        authorized_parties: frozenset[str],
        keys: KeySource,
        *,
        leeway: float = 5.0,
    ) -> None:
        self._issuer = issuer
        self._authorized_parties = authorized_parties
        self._keys = keys
        self._leeway = leeway

    def verify(self, token: str) -> VerifiedToken:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthFailure("jwt_malformed") from exc
        if header.get("alg") != ALGORITHM:
            raise AuthFailure("jwt_bad_algorithm")
        key = self._keys.key_for(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": REQUIRED_CLAIMS, "verify_aud": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthFailure("jwt_expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AuthFailure("jwt_not_yet_valid") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthFailure("jwt_wrong_issuer") from exc
        except jwt.PyJWTError as exc:
            raise AuthFailure("jwt_invalid") from exc
        azp = claims.get("azp")
        if self._authorized_parties and (
            not isinstance(azp, str) or azp not in self._authorized_parties
        ):
            raise AuthFailure("jwt_wrong_azp")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 200:
            raise AuthFailure("jwt_invalid")
        org = claims.get("org_id")
        return VerifiedToken(subject, org if isinstance(org, str) else None, claims)


class DevIssuer:
    """Signs development tokens shaped like Clerk's (never available in production)."""

    KID = "fulcrum-dev"

    def __init__(self, private_pem: bytes) -> None:
        key = serialization.load_pem_private_key(private_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the development signing key must be an RSA private key")
        self._key = key

    def sign(self, subject: str, *, org_id: str | None = None, ttl: float = 3600) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": DEV_ISSUER,
            "sub": subject,
            "azp": DEV_AUTHORIZED_PARTY,
            "iat": now,
            "nbf": now,
            "exp": now + int(ttl),
        }
        if org_id:
            claims["org_id"] = org_id
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.KID})

    def public_pem(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def verifier(self) -> JwtVerifier:
        return JwtVerifier(
            DEV_ISSUER, frozenset({DEV_AUTHORIZED_PARTY}), PemKeySource(self.public_pem())
        )
