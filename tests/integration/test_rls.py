"""Row-level security, as the application role: tenants cannot see or touch each other."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from fulcrum.kit.config import Service
from fulcrum.kit.db import TENANT_GUC, conninfo
from tests.support.stack import LiveStack


@pytest.fixture(scope="module")
def tenants(stack: LiveStack) -> Iterator[tuple[uuid.UUID, uuid.UUID]]:
    a, b = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(stack.superuser_dsn(), autocommit=True) as su:
        for tid, name in ((a, "rls-a"), (b, "rls-b")):
            su.execute("INSERT INTO tenants (id, name) VALUES (%s, %s)", (tid, f"{name}-{tid}"))
            su.execute(
                "INSERT INTO members (tenant_id, external_user_id, role) VALUES (%s, %s, 'owner')",
                (tid, f"user_{name}"),
            )
    yield a, b
    with psycopg.connect(stack.superuser_dsn(), autocommit=True) as su:
        su.execute("DELETE FROM tenants WHERE id = ANY(%s)", ([a, b],))


@pytest.fixture
def app(stack: LiveStack) -> Iterator[psycopg.Connection]:
    with psycopg.connect(conninfo(stack.settings, Service.API)) as conn:
        yield conn


def as_tenant(conn: psycopg.Connection, tenant: uuid.UUID) -> None:
    conn.execute("SELECT set_config(%s, %s, true)", (TENANT_GUC, str(tenant)))


def b_members(stack: LiveStack, b: uuid.UUID) -> list[tuple[str, str]]:
    with psycopg.connect(stack.superuser_dsn()) as su:
        return su.execute(
            "SELECT external_user_id, role FROM members WHERE tenant_id = %s ORDER BY 1", (b,)
        ).fetchall()


def test_tenant_sees_only_its_own_rows(app: psycopg.Connection, tenants: tuple) -> None:
    a, _b = tenants
    with app.transaction():
        as_tenant(app, a)
        member_tenants = {r[0] for r in app.execute("SELECT tenant_id FROM members")}
        tenant_ids = {r[0] for r in app.execute("SELECT id FROM tenants")}
    assert member_tenants == {a}
    assert tenant_ids == {a}


def test_no_tenant_set_sees_nothing_and_no_error(app: psycopg.Connection, tenants: tuple) -> None:
    with app.transaction():
        assert app.execute("SELECT count(*) FROM members").fetchone() == (0,)
        assert app.execute("SELECT count(*) FROM tenants").fetchone() == (0,)


def test_tenant_setting_ends_with_the_transaction(app: psycopg.Connection, tenants: tuple) -> None:
    a, _ = tenants
    with app.transaction():
        as_tenant(app, a)
        assert app.execute("SELECT count(*) FROM members").fetchone() == (1,)
    with app.transaction():
        assert app.execute("SELECT count(*) FROM members").fetchone() == (0,)


def test_cannot_update_or_delete_other_tenants_rows(
    stack: LiveStack, app: psycopg.Connection, tenants: tuple
) -> None:
    a, b = tenants
    before = b_members(stack, b)
    with app.transaction():
        as_tenant(app, a)
        updated = app.execute(
            "UPDATE members SET role = 'viewer' WHERE tenant_id = %s", (b,)
        ).rowcount
        deleted = app.execute("DELETE FROM members WHERE tenant_id = %s", (b,)).rowcount
    assert (updated, deleted) == (0, 0)
    assert b_members(stack, b) == before


def test_cannot_insert_a_row_for_another_tenant(
    stack: LiveStack, app: psycopg.Connection, tenants: tuple
) -> None:
    a, b = tenants
    before = b_members(stack, b)
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"),
        app.transaction(),
    ):
        as_tenant(app, a)
        app.execute(
            "INSERT INTO members (tenant_id, external_user_id, role) VALUES (%s, 'x', 'owner')",
            (b,),
        )
    assert b_members(stack, b) == before


def test_cannot_move_own_row_to_another_tenant(
    stack: LiveStack, app: psycopg.Connection, tenants: tuple
) -> None:
    a, b = tenants
    with pytest.raises(psycopg.errors.InsufficientPrivilege), app.transaction():
        as_tenant(app, a)
        app.execute("UPDATE members SET tenant_id = %s WHERE tenant_id = %s", (b, a))


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE members ADD COLUMN x int",
        "ALTER TABLE members DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE members NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON members",
        "DROP TABLE members",
        "CREATE ROLE intruder",
        "CREATE TABLE sneaky (id int)",
        "SET ROLE fulcrum_owner",
        "INSERT INTO tenants (id, name) VALUES (gen_random_uuid(), 'sneaky')",
    ],
)
def test_app_role_cannot_change_schema_or_roles(app: psycopg.Connection, statement: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege), app.transaction():
        app.execute(statement)


def test_app_role_owns_nothing_and_cannot_bypass_rls(app: psycopg.Connection) -> None:
    row = app.execute(
        "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles "
        "WHERE rolname = current_user"
    ).fetchone()
    assert row == (False, False, False, False)
    owned = app.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
        "WHERE r.rolname = current_user"
    ).fetchone()
    assert owned == (0,)


def test_every_tenant_table_forces_rls(stack: LiveStack) -> None:
    """Holds for every later migration: a table with tenant_id must enable and force RLS."""
    with psycopg.connect(stack.superuser_dsn()) as su:
        rows = su.execute(
            """
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
              AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                           AND a.attname = 'tenant_id' AND NOT a.attisdropped)
                   OR c.relname = 'tenants')
            """
        ).fetchall()
    assert rows, "no tenant tables found"
    assert [r for r in rows if not (r[1] and r[2])] == []
