"""Clerk session JWTs: only well-formed, unexpired RS256 tokens from a trusted key pass.

Every refusal is an :class:`AuthFailure` with a bounded ``reason`` label and the same
generic message, so a caller learns nothing about why a token was rejected. Keys come from
a PEM public key or from a JWKS served by a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fulcrum.authn.jwt import (
    DEV_AUTHORIZED_PARTY,
    DEV_ISSUER,
    AuthFailure,
    DevIssuer,
    JwksKeySource,
    JwtVerifier,
    PemKeySource,
)
from fulcrum.kit.errors import Unauthenticated

ISSUER = "https://clerk.example.test"
APP = "https://app.example.test"
OTHER_APP = "https://admin.example.test"
PARTIES = frozenset({APP, OTHER_APP})
LEEWAY = 5


# --------------------------------------------------------------------------- helpers


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def private_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def jwk_for(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk["kid"] = kid
    return jwk


def claims(**overrides: Any) -> dict[str, Any]:
    """Clerk-shaped claims valid for a minute; an override of ``None`` drops the claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user_123",
        "azp": APP,
        "iat": now,
        "nbf": now,
        "exp": now + 60,
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def sign(key: rsa.RSAPrivateKey, payload: dict[str, Any], *, kid: str | None = None) -> str:
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(payload, key, algorithm="RS256", headers=headers)


def unsigned_token(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{b64url_json(header)}.{b64url_json(payload)}."


def hs256_token(secret: bytes, payload: dict[str, Any], *, kid: str | None = None) -> str:
    header: dict[str, Any] = {"alg": "HS256", "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    signing_input = f"{b64url_json(header)}.{b64url_json(payload)}"
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def assert_refused(verifier: JwtVerifier, token: str, reason: str) -> AuthFailure:
    with pytest.raises(AuthFailure) as caught:
        verifier.verify(token)
    failure = caught.value
    assert failure.reason == reason
    assert str(failure) == "invalid credentials"
    assert failure.message == "invalid credentials"
    assert isinstance(failure, Unauthenticated)
    assert failure.code == "unauthenticated"
    return failure


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return new_rsa_key()


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return new_rsa_key()


@pytest.fixture(scope="module")
def dev_issuer() -> DevIssuer:
    return DevIssuer(private_pem(new_rsa_key()))


@pytest.fixture
def verifier(key: rsa.RSAPrivateKey) -> JwtVerifier:
    return JwtVerifier(ISSUER, PARTIES, PemKeySource(public_pem(key)))


class JwksServer:
    """A real JWKS endpoint on 127.0.0.1 that counts the requests it serves."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.status = 200
        self.body: bytes | None = None  # overrides the JSON document when set
        self.raw: bytes | None = None  # written as-is instead of an HTTP response
        self.requests = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server._lock:
                    server.requests += 1
                if server.raw is not None:
                    self.wfile.write(server.raw)
                    return
                body = server.body
                if body is None:
                    body = json.dumps({"keys": server.keys}).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/.well-known/jwks.json"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def add(self, key: rsa.RSAPrivateKey, kid: str) -> None:
        self.keys.append(jwk_for(key, kid))

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    server = JwksServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A local URL whose port is bound but not listening, so connecting is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/.well-known/jwks.json"
    finally:
        sock.close()


def jwks_verifier(url: str, *, min_refresh: float = 30.0) -> JwtVerifier:
    return JwtVerifier(ISSUER, PARTIES, JwksKeySource(url, min_refresh=min_refresh, timeout=2.0))


# --------------------------------------------------------------------------- valid tokens


def test_dev_issuer_token_verifies(dev_issuer: DevIssuer) -> None:
    token = dev_issuer.sign("user_dev", org_id="org_42")
    assert jwt.get_unverified_header(token)["kid"] == DevIssuer.KID
    verified = dev_issuer.verifier().verify(token)
    assert verified.subject == "user_dev"
    assert verified.org_id == "org_42"
    assert verified.claims["iss"] == DEV_ISSUER
    assert verified.claims["azp"] == DEV_AUTHORIZED_PARTY
    assert verified.claims["sub"] == "user_dev"
    assert verified.claims["org_id"] == "org_42"
    assert verified.claims["exp"] - verified.claims["iat"] == 3600


def test_dev_issuer_token_without_org(dev_issuer: DevIssuer) -> None:
    verified = dev_issuer.verifier().verify(dev_issuer.sign("user_dev"))
    assert verified.subject == "user_dev"
    assert verified.org_id is None
    assert "org_id" not in verified.claims


def test_dev_issuer_short_ttl_expires(dev_issuer: DevIssuer) -> None:
    token = dev_issuer.sign("user_dev", ttl=-60)
    assert_refused(dev_issuer.verifier(), token, "jwt_expired")


def test_dev_issuer_public_pem_is_its_public_key(dev_issuer: DevIssuer) -> None:
    loaded = serialization.load_pem_public_key(dev_issuer.public_pem())
    assert isinstance(loaded, rsa.RSAPublicKey)
    token = dev_issuer.sign("user_dev")
    decoded = jwt.decode(token, loaded, algorithms=["RS256"], options={"verify_aud": False})
    assert decoded["sub"] == "user_dev"


def test_dev_token_is_refused_by_a_verifier_with_another_key(
    dev_issuer: DevIssuer, key: rsa.RSAPrivateKey, verifier: JwtVerifier
) -> None:
    # The signature is checked before any claim, so the foreign issuer is never looked at.
    assert_refused(verifier, dev_issuer.sign("user_dev"), "jwt_invalid")
    keys = PemKeySource(public_pem(key))
    same_claims = JwtVerifier(DEV_ISSUER, frozenset({DEV_AUTHORIZED_PARTY}), keys)
    assert_refused(same_claims, dev_issuer.sign("user_dev"), "jwt_invalid")


def test_dev_issuer_requires_an_rsa_private_key() -> None:
    with pytest.raises(ValueError, match="RSA private key"):
        DevIssuer(private_pem(ec.generate_private_key(ec.SECP256R1())))


def test_pem_source_requires_an_rsa_public_key() -> None:
    ec_public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ValueError, match="RSA public key"):
        PemKeySource(ec_public)


def test_pem_source_token_verifies_with_custom_issuer_and_parties(
    key: rsa.RSAPrivateKey, verifier: JwtVerifier
) -> None:
    for azp in (APP, OTHER_APP):
        token = sign(key, claims(sub="user_abc", azp=azp, org_id="org_9", role="admin"))
        verified = verifier.verify(token)
        assert verified.subject == "user_abc"
        assert verified.org_id == "org_9"
        assert verified.claims["azp"] == azp
        assert verified.claims["iss"] == ISSUER
        assert verified.claims["role"] == "admin"


def test_pem_source_ignores_the_kid(key: rsa.RSAPrivateKey, verifier: JwtVerifier) -> None:
    assert verifier.verify(sign(key, claims(), kid="anything")).subject == "user_123"


def test_non_string_org_id_is_dropped(key: rsa.RSAPrivateKey, verifier: JwtVerifier) -> None:
    verified = verifier.verify(sign(key, claims(org_id=42)))
    assert verified.org_id is None
    assert verified.claims["org_id"] == 42


def test_no_authorized_parties_means_azp_is_not_checked(key: rsa.RSAPrivateKey) -> None:
    open_verifier = JwtVerifier(ISSUER, frozenset(), PemKeySource(public_pem(key)))
    assert open_verifier.verify(sign(key, claims(azp=None))).subject == "user_123"
    assert open_verifier.verify(sign(key, claims(azp="https://x.test"))).subject == "user_123"


def test_nbf_is_optional(key: rsa.RSAPrivateKey, verifier: JwtVerifier) -> None:
    assert verifier.verify(sign(key, claims(nbf=None))).subject == "user_123"


# --------------------------------------------------------------------------- time claims


def test_expired_token_is_refused(key: rsa.RSAPrivateKey, verifier: JwtVerifier) -> None:
    now = int(time.time())
    token = sign(key, claims(iat=now - 120, nbf=now - 120, exp=now - LEEWAY - 30))
    assert_refused(verifier, token, "jwt_expired")


def test_recently_expired_token_is_within_leeway(
    key: rsa.RSAPrivateKey, verifier: JwtVerifier
) -> None:
    now = int(time.time())
    token = sign(key, claims(iat=now - 120, nbf=now - 120, exp=now - 1))
    assert verifier.verify(token).subject == "user_123"


def test_not_yet_valid_token_is_refused(key: rsa.RSAPrivateKey, verifier: JwtVerifier) -> None:
    now = int(time.time())
    token = sign(key, claims(nbf=now + LEEWAY + 30, exp=now + 600))
    assert_refused(verifier, token, "jwt_not_yet_valid")


def test_slightly_early_token_is_within_leeway(
    key: rsa.RSAPrivateKey, verifier: JwtVerifier
) -> None:
    now = int(time.time())
    token = sign(key, claims(nbf=now + 1, exp=now + 600))
    assert verifier.verify(token).subject == "user_123"


def test_token_issued_in_the_future_is_refused(
    key: rsa.RSAPrivateKey, verifier: JwtVerifier
) -> None:
    now = int(time.time())
    token = sign(key, claims(iat=now + 3600, nbf=None, exp=now + 7200))
    assert_refused(verifier, token, "jwt_not_yet_valid")


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
def test_non_numeric_time_claim_is_refused(
    key: rsa.RSAPrivateKey, verifier: JwtVerifier, claim: str
) -> None:
    assert_refused(verifier, sign(key, claims(**{claim: "soon"})), "jwt_invalid")


# --------------------------------------------------------------------------- iss and azp


def test_wrong_issuer_is_refused(key: rsa.RSAPrivateKey, verifier: JwtVerifier) -> None:
    token = sign(key, claims(iss="https://evil.example.test"))
    assert_refused(verifier, token, "jwt_wrong_issuer")


def test_issuer_match_is_exact(key: rsa.RSAPrivateKey, verifier: JwtVerifier) -> None:
    assert_refused(verifier, sign(key, claims(iss=ISSUER + "/")), "jwt_wrong_issuer")
    assert_refused(verifier, sign(key, claims(iss=ISSUER.upper())), "jwt_wrong_issuer")


def test_wrong_azp_is_refused(key: rsa.RSAPrivateKey, verifier: JwtVerifier) -> None:
    token = sign(key, claims(azp="https://evil.example.test"))
    assert_refused(verifier, token, "jwt_wrong_azp")


def test_missing_azp_is_refused_when_parties_are_configured(
    key: rsa.RSAPrivateKey, verifier: JwtVerifier
) -> None:
    assert_refused(verifier, sign(key, claims(azp=None)), "jwt_wrong_azp")


def test_non_string_azp_is_refused(key: rsa.RSAPrivateKey, verifier: JwtVerifier) -> None:
    assert_refused(verifier, sign(key, claims(azp=42)), "jwt_wrong_azp")


# --------------------------------------------------------------------------- algorithms


def test_alg_none_token_is_refused(verifier: JwtVerifier) -> None:
    token = unsigned_token({"alg": "none", "typ": "JWT"}, claims())
    assert token.endswith(".")
    assert_refused(verifier, token, "jwt_bad_algorithm")


@pytest.mark.parametrize("alg", ["None", "NONE", "rs256", "RS384", "RS512", "PS256", "ES256"])
def test_other_algorithms_are_refused(verifier: JwtVerifier, alg: str) -> None:
    token = unsigned_token({"alg": alg, "typ": "JWT"}, claims())
    assert_refused(verifier, token, "jwt_bad_algorithm")


def test_missing_alg_is_refused(verifier: JwtVerifier) -> None:
    assert_refused(verifier, unsigned_token({"typ": "JWT"}, claims()), "jwt_bad_algorithm")


def test_hs256_signed_with_the_public_key_is_refused(
    key: rsa.RSAPrivateKey, verifier: JwtVerifier
) -> None:
    token = hs256_token(public_pem(key), claims())
    # The forgery is well-formed: only the algorithm gives it away.
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == "user_123"
    assert_refused(verifier, token, "jwt_bad_algorithm")


def test_rs256_token_signed_by_another_key_is_refused(
    other_key: rsa.RSAPrivateKey, verifier: JwtVerifier
) -> None:
    assert_refused(verifier, sign(other_key, claims()), "jwt_invalid")


# --------------------------------------------------------------------------- malformed


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "not.a.jwt",
        "a.b",
        "...",
        "eyJhbGciOiJSUzI1NiJ9",
        "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
        b64url(b"[1,2]") + ".e30.c2ln",
        b64url(b"not json") + ".e30.c2ln",
        b64url_json({"alg": "RS256", "typ": "JWT"}) + ".!!!.!!!",
    ],
)
def test_garbage_is_refused_as_malformed(verifier: JwtVerifier, token: str) -> None:
    assert_refused(verifier, token, "jwt_malformed")


def test_rs256_header_with_unusable_payload_is_refused(verifier: JwtVerifier) -> None:
    header = b64url_json({"alg": "RS256", "typ": "JWT"})
    assert_refused(verifier, f"{header}.{b64url(b'not json')}.c2ln", "jwt_invalid")
    assert_refused(verifier, f"{header}.{b64url_json([1, 2])}.c2ln", "jwt_invalid")
    assert_refused(verifier, f"{header}.{b64url_json(claims())}.", "jwt_invalid")


def test_tampered_payload_is_refused(key: rsa.RSAPrivateKey, verifier: JwtVerifier) -> None:
    header, _, signature = sign(key, claims(sub="user_123")).split(".")
    forged = b64url_json(claims(sub="user_admin", org_id="org_victim"))
    assert_refused(verifier, f"{header}.{forged}.{signature}", "jwt_invalid")


def test_tampered_header_is_refused(key: rsa.RSAPrivateKey, verifier: JwtVerifier) -> None:
    _, payload, signature = sign(key, claims()).split(".")
    header = b64url_json({"alg": "RS256", "typ": "JWT", "kid": "injected"})
    assert_refused(verifier, f"{header}.{payload}.{signature}", "jwt_invalid")


def test_tampered_signature_is_refused(key: rsa.RSAPrivateKey, verifier: JwtVerifier) -> None:
    header, payload, signature = sign(key, claims()).split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    assert_refused(verifier, f"{header}.{payload}.{b64url(bytes(raw))}", "jwt_invalid")


# --------------------------------------------------------------------------- required claims


@pytest.mark.parametrize("claim", ["sub", "exp", "iat", "iss"])
def test_missing_required_claim_is_refused(
    key: rsa.RSAPrivateKey, verifier: JwtVerifier, claim: str
) -> None:
    assert_refused(verifier, sign(key, claims(**{claim: None})), "jwt_invalid")


@pytest.mark.parametrize("subject", ["", 42, ["user_123"], "u" * 201])
def test_unusable_subject_is_refused(
    key: rsa.RSAPrivateKey, verifier: JwtVerifier, subject: Any
) -> None:
    assert_refused(verifier, sign(key, claims(sub=subject)), "jwt_invalid")


def test_subject_of_200_characters_is_accepted(
    key: rsa.RSAPrivateKey, verifier: JwtVerifier
) -> None:
    assert verifier.verify(sign(key, claims(sub="u" * 200))).subject == "u" * 200


# --------------------------------------------------------------------------- JWKS


def test_jwks_token_with_known_kid_verifies(
    jwks: JwksServer, key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    jwks.add(key, "kid-1")
    jwks.add(other_key, "kid-2")
    verifier = jwks_verifier(jwks.url)
    assert verifier.verify(sign(key, claims(sub="user_a"), kid="kid-1")).subject == "user_a"
    assert verifier.verify(sign(other_key, claims(sub="user_b"), kid="kid-2")).subject == "user_b"
    assert verifier.verify(sign(key, claims(sub="user_c"), kid="kid-1")).subject == "user_c"
    assert jwks.requests == 1  # fetched once, then served from the cache


def test_jwks_token_signed_by_a_key_other_than_its_kid_is_refused(
    jwks: JwksServer, key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    jwks.add(key, "kid-1")
    verifier = jwks_verifier(jwks.url)
    assert_refused(verifier, sign(other_key, claims(), kid="kid-1"), "jwt_invalid")


def test_jwks_unknown_kid_is_refused(jwks: JwksServer, key: rsa.RSAPrivateKey) -> None:
    jwks.add(key, "kid-1")
    verifier = jwks_verifier(jwks.url, min_refresh=0)
    assert_refused(verifier, sign(key, claims(), kid="kid-unknown"), "jwt_unknown_kid")
    assert jwks.requests == 1


def test_jwks_key_rotation_is_picked_up(
    jwks: JwksServer, key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    jwks.add(key, "kid-1")
    verifier = jwks_verifier(jwks.url, min_refresh=0)
    assert verifier.verify(sign(key, claims(), kid="kid-1")).subject == "user_123"
    assert_refused(verifier, sign(other_key, claims(), kid="kid-2"), "jwt_unknown_kid")

    jwks.add(other_key, "kid-2")
    rotated = sign(other_key, claims(sub="user_rotated"), kid="kid-2")
    assert verifier.verify(rotated).subject == "user_rotated"
    assert verifier.verify(sign(key, claims(), kid="kid-1")).subject == "user_123"
    assert jwks.requests == 3


def test_jwks_key_removed_upstream_is_forgotten_after_a_refetch(
    jwks: JwksServer, key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    jwks.add(key, "kid-1")
    verifier = jwks_verifier(jwks.url, min_refresh=0)
    assert verifier.verify(sign(key, claims(), kid="kid-1")).subject == "user_123"

    jwks.keys = [jwk_for(other_key, "kid-2")]
    assert verifier.verify(sign(other_key, claims(), kid="kid-2")).subject == "user_123"
    assert_refused(verifier, sign(key, claims(), kid="kid-1"), "jwt_unknown_kid")


def test_jwks_unknown_kid_does_not_refetch_within_min_refresh(
    jwks: JwksServer, key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    jwks.add(key, "kid-1")
    verifier = jwks_verifier(jwks.url, min_refresh=3600)
    assert verifier.verify(sign(key, claims(), kid="kid-1")).subject == "user_123"
    assert jwks.requests == 1

    jwks.add(other_key, "kid-2")  # rotated upstream, but the cache is still fresh
    for kid in ("kid-2", "kid-3", "kid-4"):
        assert_refused(verifier, sign(other_key, claims(), kid=kid), "jwt_unknown_kid")
    assert jwks.requests == 1


def test_jwks_concurrent_unknown_kids_fetch_once(jwks: JwksServer, key: rsa.RSAPrivateKey) -> None:
    jwks.add(key, "kid-1")
    verifier = jwks_verifier(jwks.url, min_refresh=3600)
    tokens = [sign(key, claims(), kid=f"kid-x{i}") for i in range(8)]
    reasons: list[str] = []
    barrier = threading.Barrier(len(tokens))

    def attempt(token: str) -> None:
        barrier.wait()
        try:
            verifier.verify(token)
        except AuthFailure as failure:
            reasons.append(failure.reason)

    threads = [threading.Thread(target=attempt, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert reasons == ["jwt_unknown_kid"] * len(tokens)
    assert jwks.requests == 1


def test_jwks_token_without_kid_is_refused(jwks: JwksServer, key: rsa.RSAPrivateKey) -> None:
    jwks.add(key, "kid-1")
    verifier = jwks_verifier(jwks.url)
    assert_refused(verifier, sign(key, claims()), "jwt_no_kid")
    assert jwks.requests == 0


def test_jwks_server_down_is_unavailable(dead_url: str, key: rsa.RSAPrivateKey) -> None:
    verifier = jwks_verifier(dead_url)
    assert_refused(verifier, sign(key, claims(), kid="kid-1"), "jwks_unavailable")


def test_jwks_stopped_after_first_fetch_keeps_serving_cached_keys(
    jwks: JwksServer, key: rsa.RSAPrivateKey
) -> None:
    jwks.add(key, "kid-1")
    verifier = jwks_verifier(jwks.url, min_refresh=0)
    assert verifier.verify(sign(key, claims(), kid="kid-1")).subject == "user_123"
    jwks.stop()
    assert verifier.verify(sign(key, claims(), kid="kid-1")).subject == "user_123"
    assert_refused(verifier, sign(key, claims(), kid="kid-2"), "jwks_unavailable")


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, b"{}"), (404, b"not found"), (200, b"not json"), (200, b"\xff\xfe")],
)
def test_jwks_bad_response_is_unavailable(
    jwks: JwksServer, key: rsa.RSAPrivateKey, status: int, body: bytes
) -> None:
    jwks.status = status
    jwks.body = body
    verifier = jwks_verifier(jwks.url)
    assert_refused(verifier, sign(key, claims(), kid="kid-1"), "jwks_unavailable")
    assert jwks.requests == 1


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/jwks", "jwks.json"])
def test_jwks_url_must_be_http(url: str, key: rsa.RSAPrivateKey) -> None:
    verifier = jwks_verifier(url)
    failure = assert_refused(verifier, sign(key, claims(), kid="kid-1"), "jwks_unavailable")
    assert isinstance(failure.__cause__, ValueError)


def test_jwks_skips_non_rsa_and_kidless_keys(jwks: JwksServer, key: rsa.RSAPrivateKey) -> None:
    kidless = jwk_for(key, "ignored")
    del kidless["kid"]
    ec_jwk: dict[str, Any] = jwt.algorithms.ECAlgorithm.to_jwk(
        ec.generate_private_key(ec.SECP256R1()).public_key(), as_dict=True
    )
    ec_jwk["kid"] = "kid-ec"
    jwks.keys = [kidless, ec_jwk, jwk_for(key, "kid-1")]
    verifier = jwks_verifier(jwks.url, min_refresh=3600)
    assert verifier.verify(sign(key, claims(), kid="kid-1")).subject == "user_123"
    assert_refused(verifier, sign(key, claims(), kid="kid-ec"), "jwt_unknown_kid")


def test_jwks_private_jwk_is_not_used_as_a_key(jwks: JwksServer, key: rsa.RSAPrivateKey) -> None:
    private_jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(key, as_dict=True)
    private_jwk["kid"] = "kid-private"
    jwks.keys = [private_jwk]
    verifier = jwks_verifier(jwks.url)
    assert_refused(verifier, sign(key, claims(), kid="kid-private"), "jwt_unknown_kid")


def test_jwks_refuses_bad_algorithms_before_fetching(
    jwks: JwksServer, key: rsa.RSAPrivateKey
) -> None:
    jwks.add(key, "kid-1")
    verifier = jwks_verifier(jwks.url)
    none_token = unsigned_token({"alg": "none", "typ": "JWT", "kid": "kid-1"}, claims())
    assert_refused(verifier, none_token, "jwt_bad_algorithm")
    hs_token = hs256_token(json.dumps(jwk_for(key, "kid-1")).encode(), claims(), kid="kid-1")
    assert_refused(verifier, hs_token, "jwt_bad_algorithm")
    assert jwks.requests == 0


# --------------------------------------------------------------------------- robustness
# Each test below describes intended behaviour that jwt.py does not yet have. They are strict


def test_jwks_failed_fetch_is_also_rate_limited(jwks: JwksServer, key: rsa.RSAPrivateKey) -> None:
    jwks.status = 500
    verifier = jwks_verifier(jwks.url, min_refresh=3600)
    assert_refused(verifier, sign(key, claims(), kid="kid-1"), "jwks_unavailable")
    for kid in ("kid-2", "kid-3", "kid-4"):
        with pytest.raises(AuthFailure) as caught:
            verifier.verify(sign(key, claims(), kid=kid))
        assert caught.value.reason in {"jwks_unavailable", "jwt_unknown_kid"}
        assert str(caught.value) == "invalid credentials"
    assert jwks.requests == 1  # one outbound fetch per min_refresh, even while failing


@pytest.mark.parametrize("body", [b"[]", b'{"keys": {"kid": "x"}}'])
def test_jwks_document_of_wrong_shape_is_unavailable(
    jwks: JwksServer, key: rsa.RSAPrivateKey, body: bytes
) -> None:
    jwks.body = body
    verifier = jwks_verifier(jwks.url)
    assert_refused(verifier, sign(key, claims(), kid="kid-1"), "jwks_unavailable")


def test_jwks_entries_that_are_not_objects_are_skipped(
    jwks: JwksServer, key: rsa.RSAPrivateKey
) -> None:
    jwks.body = b'{"keys": ["x", 1, null]}'
    verifier = jwks_verifier(jwks.url)
    assert_refused(verifier, sign(key, claims(), kid="kid-1"), "jwt_unknown_kid")


def test_jwks_malformed_key_does_not_hide_valid_keys(
    jwks: JwksServer, key: rsa.RSAPrivateKey
) -> None:
    jwks.keys = [{"kty": "RSA", "kid": "kid-broken"}, jwk_for(key, "kid-1")]
    verifier = jwks_verifier(jwks.url)
    assert verifier.verify(sign(key, claims(), kid="kid-1")).subject == "user_123"
    assert_refused(verifier, sign(key, claims(), kid="kid-broken"), "jwt_unknown_kid")


@pytest.mark.parametrize(
    "raw",
    [b"garbage\r\n\r\n", b'HTTP/1.0 200 OK\r\nContent-Length: 500\r\n\r\n{"keys": ['],
)
def test_jwks_protocol_error_is_unavailable(
    jwks: JwksServer, key: rsa.RSAPrivateKey, raw: bytes
) -> None:
    jwks.raw = raw
    verifier = jwks_verifier(jwks.url)
    assert_refused(verifier, sign(key, claims(), kid="kid-1"), "jwks_unavailable")


@pytest.mark.parametrize("azp", [[APP], {"party": APP}])
def test_unhashable_azp_is_refused(key: rsa.RSAPrivateKey, verifier: JwtVerifier, azp: Any) -> None:
    assert_refused(verifier, sign(key, claims(azp=azp)), "jwt_wrong_azp")
