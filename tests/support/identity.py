"""Tenants, keys and clients for tests of the identity surface."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import psycopg

from fulcrum.admin import create_platform_key, create_tenant, dev_token
from fulcrum.authn.jwt import DevIssuer
from fulcrum.kit.config import Service
from fulcrum.kit.secrets import Secrets
from fulcrum.pb.v1 import (
    api_keys_pb2_grpc,
    invitations_pb2_grpc,
    members_pb2_grpc,
    tenants_pb2_grpc,
)
from tests.support.processes import FulcrumProcess
from tests.support.stack import LiveStack


@dataclass(frozen=True)
class TenantFixture:
    id: uuid.UUID
    name: str
    owner_key: str
    owner_user: str


def new_tenant(stack: LiveStack, prefix: str = "t") -> TenantFixture:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    owner_user = f"user_{name}_owner"
    tenant, issued = asyncio.run(create_tenant(stack.settings, name, owner_user))
    return TenantFixture(tenant.id, name, issued.secret, owner_user)


def enterprise_plan(stack: LiveStack, tenant: TenantFixture) -> None:
    """Move a tenant to the enterprise plan (no API does: plans are billing's), for tests
    that send thousands of decisions, each of which costs a rate-limit token."""
    with psycopg.connect(stack.superuser_dsn()) as su:
        su.execute("SELECT fulcrum_operator_begin()")  # only the platform changes plans
        su.execute("UPDATE tenants SET plan = 'enterprise' WHERE id = %s", (tenant.id,))
    time.sleep(1.0)  # the key cache (0.5 s) carries the limits; wait it out


def platform_key(stack: LiveStack) -> str:
    return asyncio.run(create_platform_key(stack.settings, f"platform-{uuid.uuid4().hex[:6]}"))


def member_token(stack: LiveStack, tenant: TenantFixture, role: str, user: str) -> str:
    return asyncio.run(dev_token(stack.settings, str(tenant.id), role, user))


def user_token(stack: LiveStack, user: str, org_id: str | None = None) -> str:
    """A session token for ``user`` that makes no membership (unlike :func:`member_token`)."""
    issuer = DevIssuer(Secrets(stack.settings, Service.ADMIN).require("dev_jwt_signing_key").get())
    return issuer.sign(user, org_id=org_id)


def rest(api: FulcrumProcess, credential: str | None, **headers: str) -> httpx.Client:
    return api.http(credential, headers=headers)


@dataclass
class GrpcClients:
    tenants: tenants_pb2_grpc.TenantServiceStub
    members: members_pb2_grpc.MemberServiceStub
    api_keys: api_keys_pb2_grpc.ApiKeyServiceStub
    invitations: invitations_pb2_grpc.InvitationServiceStub
    metadata: tuple[tuple[str, str], ...]


@contextmanager
def grpc_clients(
    api: FulcrumProcess, credential: str | None, **metadata: str
) -> Iterator[GrpcClients]:
    md = [(k.replace("_", "-"), v) for k, v in metadata.items()]
    if credential:
        md.append(("authorization", f"Bearer {credential}"))
    with api.channel() as channel:
        yield GrpcClients(
            tenants_pb2_grpc.TenantServiceStub(channel),
            members_pb2_grpc.MemberServiceStub(channel),
            api_keys_pb2_grpc.ApiKeyServiceStub(channel),
            invitations_pb2_grpc.InvitationServiceStub(channel),
            tuple(md),
        )
