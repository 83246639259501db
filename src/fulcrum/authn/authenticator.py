"""Turns an ``Authorization`` header into a :class:`Principal`, or refuses it.

API keys are verified against a per-process cache, with no database read per request and
none per key: every ``revision_poll`` seconds (0.5 s) one query reads the credential
revisions of the tenants whose keys the process holds (migration 0010: triggers move a
tenant's revision whenever anything a key check reads changes: the key, its owner's
membership, the tenant's status, plan or limits), and the keys of a tenant whose revision
moved are dropped and read again on their next use. A record is trusted for at most
``key_cache_ttl_seconds`` (1 s) after it was read or last confirmed by a poll, so a
revocation reaches every API server within a second, and when the polls fail the cache
falls back to reading each key again once its record is that old. ``last_used_at`` is
collected in memory and written in one batch per tenant every few seconds. A member's key works only
while its owner is an active member whose role holds all its scopes.

A session token signs in to one tenant through an *active* membership: the tenant its
``org_id`` maps to, else the one named in ``x-fulcrum-tenant``, else the user's only active
membership. An invitation the user has not accepted never counts, so nothing one tenant
does changes the user's sessions in another; a token of the tenant's own Clerk
organisation accepts a pending invitation there on first use (the organisation vouches
for the user). With ``user_only`` the token signs in as the user alone, for their own
invitations.

Platform keys are checked by the database itself, which alone can read their hashes
(migration 0007); the proof travels with the principal to open platform transactions.

Bad credentials must not cost a database query each (src/fulcrum/authn/guard.py): key ids
that do not exist are remembered for ``negative_ttl`` seconds; concurrent lookups of one id
share one query; at most ``max_lookups`` lookups run at once, so a flood of distinct ids
cannot take every pooled connection; and a client address that keeps failing is throttled:
it gets :class:`AuthThrottled` (429 / RESOURCE_EXHAUSTED, no query, answered after
``throttle_delay`` seconds) for any key id not already known, while keys that are known
(verified before) still work from it. Everything is keyed by (kind, key id), whatever
table a kind is read from.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
import uuid
from collections import defaultdict

from fulcrum.api_keys import repository as keys_repo
from fulcrum.auth.api_keys import KeyKind, hash_key, matches, parse_key
from fulcrum.auth.principal import Principal, PrincipalKind
from fulcrum.auth.scopes import PLATFORM_SCOPES, ROLE_SCOPES, USER_SCOPES
from fulcrum.authn.guard import ExpiringSet, FailureThrottle, SingleFlight
from fulcrum.authn.jwt import AuthFailure, JwtVerifier
from fulcrum.authn.repository import StoredCredential, credential_of, credential_revisions
from fulcrum.kit.background import Background
from fulcrum.kit.db import (
    API_KEY_GUC,
    CLERK_ORG_GUC,
    USER_GUC,
    Database,
    PlatformProof,
    enter_tenant,
)
from fulcrum.kit.errors import InvalidArgument, PermissionDenied, ResourceExhausted
from fulcrum.kit.logging import get_logger
from fulcrum.kit.secrets import EnvSecret, FileSecret
from fulcrum.members import repository as members_repo
from fulcrum.members.invitations import accept_for_organisation
from fulcrum.members.models import Member, MemberStatus
from fulcrum.observability.metrics import AUTH_FAILURES, KEY_LOOKUPS
from fulcrum.tenants import repository as tenants_repo
from fulcrum.tenants.models import TenantStatus

log = get_logger(__name__)

MAX_CACHED_KEYS = 50_000
MAX_UNKNOWN_KEYS = 50_000
MAX_CREDENTIAL_LENGTH = 8192


class AuthThrottled(ResourceExhausted):
    """Too many authentication failures from this client address: retry later."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            "too many failed authentications from this address; "
            f"retry after {retry_after_seconds}s",
            retry_after_seconds=retry_after_seconds,
            headers={"Retry-After": str(retry_after_seconds)},
        )


class Authenticator:
    def __init__(
        self,
        db: Database,
        pepper: FileSecret | EnvSecret,
        jwt_verifier: JwtVerifier | None,
        *,
        cache_ttl: float = 1.0,
        revision_poll: float = 0.5,
        flush_interval: float = 5.0,
        negative_ttl: float = 10.0,
        max_lookups: int = 4,
        failure_rate: float = 5.0,
        failure_burst: int = 50,
        max_failing_clients: int = 10_000,
        throttle_delay: float = 0.5,
    ) -> None:
        self._db = db
        self._pepper = pepper
        self._jwt = jwt_verifier
        self._ttl = cache_ttl
        self._cache: dict[tuple[KeyKind, str], tuple[float, StoredCredential]] = {}
        self._confirmed_at = -math.inf  # when the last successful revision poll began
        self._unknown: ExpiringSet[tuple[KeyKind, str]] = ExpiringSet(
            negative_ttl, MAX_UNKNOWN_KEYS
        )
        self._lookups: SingleFlight[tuple[KeyKind, str], StoredCredential | None] = SingleFlight()
        self._lookup_slots = asyncio.Semaphore(max_lookups)
        self._throttle = FailureThrottle(failure_rate, failure_burst, max_failing_clients)
        self._throttle_delay = throttle_delay
        self._used: dict[tuple[uuid.UUID, str], dt.datetime] = {}
        self._background = Background()
        self._background.every(
            flush_interval, self.flush_last_used, failed="auth.last_used_flush_failed"
        )
        self._background.every(
            revision_poll, self.check_revisions, failed="auth.revision_poll_failed"
        )

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._background.start()

    async def stop(self) -> None:
        await self._background.stop()
        await self.flush_last_used()

    # --- entry point --------------------------------------------------------------------

    async def authenticate(
        self,
        authorization: str | None,
        tenant_hint: str | None,
        *,
        user_only: bool = False,
        client: str | None = None,
    ) -> Principal:
        """The caller; with ``user_only`` a session token gives the signed-in user outside
        any tenant (``PrincipalKind.USER``), never a tenant member. ``client`` is the
        caller's address, for throttling repeated failures: the peer address of the
        connection (behind a proxy that is the proxy's: see README)."""
        try:
            return await self._authenticate(authorization, tenant_hint, user_only, client)
        except AuthFailure as failure:
            AUTH_FAILURES.labels(reason=failure.reason).inc()
            # Unknown key ids were charged where they were looked up (see _credential); a
            # request without any credential guesses nothing and costs no lookup.
            if client is not None and failure.reason not in ("missing", "unknown_key"):
                self._throttle.failed(client, time.monotonic())
            raise
        except AuthThrottled:
            AUTH_FAILURES.labels(reason="throttled").inc()
            raise

    async def _authenticate(
        self,
        authorization: str | None,
        tenant_hint: str | None,
        user_only: bool,
        client: str | None,
    ) -> Principal:
        if not authorization:
            raise AuthFailure("missing")
        if len(authorization) > MAX_CREDENTIAL_LENGTH:
            raise AuthFailure("malformed")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthFailure("malformed")
        token = token.strip()
        if token.startswith(("fk_", "fkp_")):
            return await self._from_key(token, client)
        if token.count(".") == 2 and self._jwt is not None:
            if user_only:
                return self._user(token)
            return await self._from_jwt(token, tenant_hint)
        raise AuthFailure("malformed")

    # --- API keys -----------------------------------------------------------------------

    async def _credential(
        self, kind: KeyKind, key_id: str, client: str | None
    ) -> StoredCredential | None:
        key = (kind, key_id)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - max(cached[0], self._confirmed_at) < self._ttl:
            return cached[1]
        if self._unknown.contains(key, now):
            if client is not None:
                self._throttle.failed(client, now)
            return None
        # A key this process has seen (even if its record is due to be read again) still
        # works from a throttled address; an id never seen costs a throttled address no
        # query. The attempt is spent before the lookup, so concurrent requests cannot all
        # slip through while the first lookups are still running; it is given back if the
        # key exists.
        charged = client if cached is None else None
        if charged is not None:
            retry_after = self._throttle.retry_after(charged, now)
            if retry_after is not None:
                # Held a moment first (a sleeping coroutine, no CPU): a client that ignores
                # Retry-After and asks again at once would otherwise turn cheap refusals
                # into a flood of work for the event loop other tenants share.
                await asyncio.sleep(self._throttle_delay)
                raise AuthThrottled(retry_after)
            self._throttle.failed(charged, now)
        credential = await self._lookups.run(key, lambda: self._lookup(kind, key_id))
        if charged is not None and credential is not None:
            self._throttle.refund(charged, time.monotonic())
        return credential

    async def _lookup(self, kind: KeyKind, key_id: str) -> StoredCredential | None:
        """One read of a key's record, remembered in the positive or the negative cache."""
        async with self._lookup_slots, self._db.tx({API_KEY_GUC: key_id}) as conn:
            credential = await credential_of(conn, key_id)
        KEY_LOOKUPS.labels(kind=kind.name.lower(), found=str(credential is not None).lower()).inc()
        key, now = (kind, key_id), time.monotonic()
        if credential is None:
            self._cache.pop(key, None)
            self._unknown.add(key, now)
            return None
        if len(self._cache) >= MAX_CACHED_KEYS:
            self._cache.clear()
        self._cache[key] = (now, credential)
        return credential

    async def _from_platform_key(self, key_id: str, full: str, client: str | None) -> Principal:
        """Checked by the database (the only one that can read platform keys' hashes), with
        the same negative cache and per-address throttle as tenant keys."""
        key, now = (KeyKind.PLATFORM, key_id), time.monotonic()
        if self._unknown.contains(key, now):
            raise AuthFailure("unknown_key")
        if client is not None and (retry_after := self._throttle.retry_after(client, now)):
            await asyncio.sleep(self._throttle_delay)
            raise AuthThrottled(retry_after)
        proof = PlatformProof(key_id, hash_key(self._pepper.get(), full))
        async with self._lookup_slots:
            outcome = await self._db.platform_check(proof)
        KEY_LOOKUPS.labels(kind="platform", found=str(outcome != "unknown_key").lower()).inc()
        if outcome == "unknown_key":
            self._unknown.add(key, time.monotonic())
        if outcome != "ok":
            raise AuthFailure(outcome)
        return Principal(
            kind=PrincipalKind.PLATFORM,
            scopes=PLATFORM_SCOPES,
            actor=f"platform:{key_id}",
            key_id=key_id,
            platform=proof,
        )

    async def _from_key(self, token: str, client: str | None) -> Principal:
        parsed = parse_key(token)
        if parsed is None:
            raise AuthFailure("malformed")
        if parsed.kind is KeyKind.PLATFORM:
            return await self._from_platform_key(parsed.key_id, parsed.full, client)
        credential = await self._credential(parsed.kind, parsed.key_id, client)
        if credential is None:
            raise AuthFailure("unknown_key")
        if not matches(self._pepper.get(), parsed.full, credential.hash):
            raise AuthFailure("bad_secret")
        now = dt.datetime.now(dt.UTC)
        if credential.revoked_at is not None:
            raise AuthFailure("revoked")
        if credential.expires_at is not None and credential.expires_at <= now:
            raise AuthFailure("expired")
        if not credential.owner_allows:
            raise AuthFailure("owner_not_member")
        if not credential.tenant_active:
            raise PermissionDenied("the tenant is suspended")
        self._used[(credential.tenant_id, credential.id)] = now
        return Principal(
            kind=PrincipalKind.API_KEY,
            scopes=credential.scopes,
            actor=f"key:{credential.id}",
            tenant_id=credential.tenant_id,
            key_id=credential.id,
            member_id=credential.owner_member_id,
            limits=credential.limits,
        )

    # --- dashboard users ----------------------------------------------------------------

    def _user(self, token: str) -> Principal:
        assert self._jwt is not None
        verified = self._jwt.verify(token)
        return Principal(
            kind=PrincipalKind.USER,
            scopes=USER_SCOPES,
            actor=f"user:{verified.subject}",
            external_user_id=verified.subject,
        )

    async def _from_jwt(self, token: str, tenant_hint: str | None) -> Principal:
        assert self._jwt is not None
        verified = self._jwt.verify(token)
        member = await self._membership(verified.subject, verified.org_id, tenant_hint)
        async with self._db.tenant_tx(member.tenant_id) as conn:
            tenant = await tenants_repo.get(conn, member.tenant_id)
        if tenant is None or tenant.status is not TenantStatus.ACTIVE:
            raise PermissionDenied("the tenant is suspended")
        return Principal(
            kind=PrincipalKind.MEMBER,
            scopes=ROLE_SCOPES[member.role],
            actor=f"user:{member.external_user_id}",
            tenant_id=member.tenant_id,
            external_user_id=member.external_user_id,
            member_id=member.id,
            limits=tenant.limits,
        )

    async def _membership(self, user: str, org_id: str | None, tenant_hint: str | None) -> Member:
        hinted = None
        if tenant_hint:
            try:
                hinted = uuid.UUID(tenant_hint)
            except ValueError:
                raise InvalidArgument("must be a UUID", field="x-fulcrum-tenant") from None
        if org_id:
            async with self._db.tx({CLERK_ORG_GUC: org_id}) as conn:
                tenant = await tenants_repo.by_clerk_org(conn, org_id)
                if tenant is None:
                    raise AuthFailure("not_a_member")
                if hinted is not None and hinted != tenant.id:
                    raise InvalidArgument(
                        "names another tenant than the token's organisation",
                        field="x-fulcrum-tenant",
                    )
                await enter_tenant(conn, tenant.id)
                members = await members_repo.find_by_user(conn, user)
                if members and members[0].status is MemberStatus.INVITED:
                    members = [await accept_for_organisation(conn, members[0], org_id)]
        elif hinted is not None:
            async with self._db.tenant_tx(hinted) as conn:
                members = _active(await members_repo.find_by_user(conn, user))
        else:
            async with self._db.tx({USER_GUC: user}) as conn:
                members = _active(await members_repo.find_by_user(conn, user))
            if len(members) > 1:
                raise InvalidArgument(
                    "member of several tenants: name one in the x-fulcrum-tenant header",
                    field="x-fulcrum-tenant",
                )
        if not members:
            raise AuthFailure("not_a_member")
        return members[0]

    # --- revisions ----------------------------------------------------------------------

    async def check_revisions(self) -> None:
        """Drop the cached keys of every tenant whose credential revision moved (or who is
        gone); the rest are confirmed as of this poll's start."""
        if not self._cache:
            return
        began = time.monotonic()
        tenants = list({credential.tenant_id for _, credential in self._cache.values()})
        async with self._db.tx() as conn:
            current = await credential_revisions(conn, tenants)
        for key, (_, credential) in list(self._cache.items()):
            if current.get(credential.tenant_id) != credential.revision:
                self._cache.pop(key, None)
        self._confirmed_at = began

    # --- last used ----------------------------------------------------------------------

    async def flush_last_used(self) -> None:
        used, self._used = self._used, {}
        by_tenant: dict[uuid.UUID, dict[str, dt.datetime]] = defaultdict(dict)
        for (tenant_id, key_id), at in used.items():
            by_tenant[tenant_id][key_id] = at
        for tenant_id, batch in by_tenant.items():
            async with self._db.tenant_tx(tenant_id) as conn:
                await keys_repo.touch_last_used(conn, batch)


def _active(members: list[Member]) -> list[Member]:
    return [m for m in members if m.status is MemberStatus.ACTIVE]
