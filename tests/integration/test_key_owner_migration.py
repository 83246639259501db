"""Migration 0008 on a database holding keys made before keys had owners.

In a scratch database of the session's PostgreSQL: migrate to 0006, insert the kinds of
keys that existed (the tenant's first key from the platform, a member's key, a key made
with that key, a key of a member since removed, a key made with that one), then upgrade
and read what each key became.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from fulcrum.kit.config import Settings
from fulcrum.kit.migrate import migrate
from tests.support.stack import LiveStack


@pytest.fixture
def scratch(stack: LiveStack) -> Iterator[Settings]:
    name = f"fulcrum_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(stack.superuser_dsn(), autocommit=True) as su:
        su.execute(f'CREATE DATABASE "{name}" OWNER fulcrum_owner')
    with psycopg.connect(stack.devstack.postgres.superuser_dsn(name), autocommit=True) as su:
        su.execute("ALTER SCHEMA public OWNER TO fulcrum_owner")
    yield stack.settings.model_copy(update={"database_name": name})
    with psycopg.connect(stack.superuser_dsn(), autocommit=True) as su:
        su.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_existing_keys_get_their_owners(stack: LiveStack, scratch: Settings) -> None:
    migrate(scratch, "0006")
    tenant, alice = uuid.uuid4(), uuid.uuid4()
    keys = {
        name: f"{i:020x}"
        for i, name in enumerate(
            ("first", "alice", "alice_child", "gone", "gone_child", "platform_child"), start=1
        )
    }
    made_by = {
        "first": "platform:" + "f" * 20,
        "alice": "user:user_alice",
        "alice_child": f"key:{keys['alice']}",
        "gone": "user:user_gone",
        "gone_child": f"key:{keys['gone']}",
        "platform_child": f"key:{keys['first']}",
    }
    dsn = stack.devstack.postgres.superuser_dsn(scratch.database_name)
    with psycopg.connect(dsn, autocommit=True) as su:
        su.execute("INSERT INTO tenants (id, name) VALUES (%s, 'mig')", (tenant,))
        su.execute(
            "INSERT INTO members (tenant_id, id, external_user_id, role) "
            "VALUES (%s, %s, 'user_alice', 'admin')",
            (tenant, alice),
        )
        for name, key_id in keys.items():
            su.execute(
                "INSERT INTO api_keys (tenant_id, id, name, hash, scopes, created_by) "
                "VALUES (%s, %s, %s, %s, '{keys:read}', %s)",
                (tenant, key_id, name, b"\0" * 32, made_by[name]),
            )

    migrate(scratch)

    with psycopg.connect(dsn) as su:
        rows = su.execute(
            "SELECT name, owner_member_id, service, revoked_at IS NOT NULL FROM api_keys"
        ).fetchall()
        forced = su.execute(
            "SELECT relname, relforcerowsecurity FROM pg_class "
            "WHERE relname IN ('api_keys', 'members')"
        ).fetchall()
        statuses = su.execute("SELECT status FROM members").fetchall()
    assert {name: (owner, service, revoked) for name, owner, service, revoked in rows} == {
        "first": (None, True, False),
        "platform_child": (None, True, False),
        "alice": (alice, False, False),
        "alice_child": (alice, False, False),
        # A user's key whose member is gone must not become an immortal service key.
        "gone": (None, False, True),
        "gone_child": (None, False, True),
    }
    assert dict(forced) == {"api_keys": True, "members": True}
    assert statuses == [("active",)]
