"""One database role per service, least privilege: attacks with each service's own
certificate, and the grant matrix that pins every role x table x privilege.

The attacks are the ones an attacker holding the API's certificate (a compromised API
process) tried: forge a correctly chained ledger record, sign a checkpoint, become platform
administrator with a setting, change platform keys, suspend or re-plan a tenant.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

import psycopg
import pytest
from psycopg import errors

from fulcrum.kit.config import Service
from fulcrum.kit.db import conninfo
from tests.support.stack import LiveStack

TENANT_GUC = "fulcrum.tenant_id"
API = "fulcrum_api"
WORKER = "fulcrum_worker"
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")

# Written out by hand, independently of the migrations: a grant added or lost anywhere
# fails here. (API, worker)
MATRIX: dict[str, tuple[set[str], set[str]]] = {
    "tenants": ({"SELECT", "INSERT", "UPDATE"}, set()),
    "members": ({"SELECT", "INSERT", "UPDATE", "DELETE"}, set()),
    "api_keys": ({"SELECT", "INSERT", "UPDATE"}, set()),
    "platform_api_keys": (set(), set()),
    "platform_sessions": (set(), set()),
    "audit_events": ({"INSERT"}, {"SELECT"}),
    "policies": ({"SELECT", "INSERT", "UPDATE"}, set()),
    "policy_versions": ({"SELECT", "INSERT"}, set()),
    "audit_records": ({"SELECT"}, {"SELECT", "INSERT"}),
    "audit_chain_heads": ({"SELECT"}, {"SELECT", "INSERT", "UPDATE"}),
    "audit_checkpoints": ({"SELECT"}, {"SELECT", "INSERT"}),
    "decisions": ({"SELECT"}, {"INSERT"}),
    "decision_rollups": ({"SELECT"}, {"SELECT", "INSERT", "UPDATE"}),
    "alembic_version": (set(), set()),
}
FUNCTIONS: dict[str, tuple[bool, bool]] = {
    "fulcrum_platform_tx()": (True, False),
    "fulcrum_platform_check(text,bytea)": (True, False),
    "fulcrum_platform_begin(text,bytea)": (True, False),
    "fulcrum_operator_begin()": (False, False),
    "fulcrum_policy_revisions(uuid[])": (True, False),
    "fulcrum_credential_revisions(uuid[])": (True, False),
    "fulcrum_ledger_tenants()": (False, True),
    "fulcrum_ensure_decision_partitions(integer)": (False, True),
    "fulcrum_drop_decision_partitions(integer)": (False, True),
}


@pytest.fixture(scope="module")
def tenant(stack: LiveStack) -> uuid.UUID:
    tid = uuid.uuid4()
    with psycopg.connect(stack.superuser_dsn(), autocommit=True) as su:
        su.execute("INSERT INTO tenants (id, name) VALUES (%s, %s)", (tid, f"roles-{tid}"))
    return tid


def connect(stack: LiveStack, service: Service) -> psycopg.Connection:
    return psycopg.connect(conninfo(stack.settings, service))


def in_tenant(conn: psycopg.Connection, tenant: uuid.UUID) -> None:
    conn.execute("SELECT set_config(%s, %s, true)", (TENANT_GUC, str(tenant)))


def refused(stack: LiveStack, service: Service, tenant: uuid.UUID | None, sql: str, *args: object):  # type: ignore[no-untyped-def]
    """Run ``sql`` as ``service`` in ``tenant``; return the error it raised, or None."""
    with connect(stack, service) as conn:
        try:
            with conn.transaction():
                if tenant is not None:
                    in_tenant(conn, tenant)
                conn.execute(sql, args or None)
        except psycopg.Error as exc:
            return exc
    return None


# --- the grant matrix ---------------------------------------------------------------


def test_every_table_is_in_the_matrix(stack: LiveStack) -> None:
    with psycopg.connect(stack.superuser_dsn()) as su:
        tables = {
            r[0]
            for r in su.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'm', 'v') "
                "AND NOT c.relispartition"
            )
        }
    assert tables == set(MATRIX)


@pytest.mark.parametrize("table", sorted(MATRIX))
def test_grant_matrix(stack: LiveStack, table: str) -> None:
    with psycopg.connect(stack.superuser_dsn()) as su:
        for role, expected in zip((API, WORKER), MATRIX[table], strict=True):
            held = {
                p
                for p in PRIVILEGES
                if su.execute(
                    "SELECT has_table_privilege(%s, %s, %s)", (role, table, p)
                ).fetchone()[0]
            }
            assert held == expected, (role, table)


def test_function_matrix(stack: LiveStack) -> None:
    with psycopg.connect(stack.superuser_dsn()) as su:
        found = {
            r[0]
            for r in su.execute(
                "SELECT p.oid::regprocedure::text FROM pg_proc p "
                "JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = 'public' AND p.prorettype <> 'trigger'::regtype"
            )
        }
        assert set(FUNCTIONS) == found
        for fn, (api, worker) in FUNCTIONS.items():
            for role, expected in ((API, api), (WORKER, worker)):
                held = su.execute(
                    "SELECT has_function_privilege(%s, %s, 'EXECUTE')", (role, fn)
                ).fetchone()[0]
                assert held is expected, (role, fn)


@pytest.mark.parametrize("role", [API, WORKER])
def test_service_roles_own_nothing_and_bypass_nothing(stack: LiveStack, role: str) -> None:
    with psycopg.connect(stack.superuser_dsn()) as su:
        attrs = su.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication "
            "FROM pg_roles WHERE rolname = %s",
            (role,),
        ).fetchone()
        owned = su.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
            "WHERE r.rolname = %s",
            (role,),
        ).fetchone()
    assert attrs == (False, False, False, False, False)
    assert owned == (0,)


# --- the API's certificate cannot forge the ledger ------------------------------------


def test_api_cannot_lock_or_move_the_chain_head(stack: LiveStack, tenant: uuid.UUID) -> None:
    for sql in (
        "SELECT seq, hash FROM audit_chain_heads FOR UPDATE",
        "UPDATE audit_chain_heads SET seq = seq + 1",
        "INSERT INTO audit_chain_heads (tenant_id, seq, hash) "
        "VALUES (current_setting('fulcrum.tenant_id')::uuid, 0, '\\x00')",
    ):
        assert isinstance(refused(stack, Service.API, tenant, sql), errors.InsufficientPrivilege)


def test_api_cannot_insert_a_correctly_chained_record(stack: LiveStack, tenant: uuid.UUID) -> None:
    fake = hashlib.sha256(b"forged").digest()
    error = refused(
        stack,
        Service.API,
        tenant,
        "INSERT INTO audit_records (tenant_id, seq, event_id, kind, occurred_at, trace_id, actor, "
        "action, resource_type, resource_id, outcome, details, prev_hash, hash) VALUES "
        "(%s, 1, %s, 'decision', now(), 't', 'key:x', 'decision.allow', 'tool', 'x', 'allow', "
        "'{}', %s, %s)",
        tenant,
        uuid.uuid4(),
        bytes(32),
        fake,
    )
    assert isinstance(error, errors.InsufficientPrivilege)


def test_api_cannot_write_a_checkpoint(stack: LiveStack, tenant: uuid.UUID) -> None:
    error = refused(
        stack,
        Service.API,
        tenant,
        "INSERT INTO audit_checkpoints (tenant_id, seq, hash, created_at, key_id, signature) "
        "VALUES (%s, 1, %s, now(), 'k', %s)",
        tenant,
        bytes(32),
        bytes(64),
    )
    assert isinstance(error, errors.InsufficientPrivilege)


def test_api_cannot_read_the_outbox_it_writes(stack: LiveStack, tenant: uuid.UUID) -> None:
    error = refused(stack, Service.API, tenant, "SELECT * FROM audit_events")
    assert isinstance(error, errors.InsufficientPrivilege)


# --- nor become platform administrator --------------------------------------------


def test_a_setting_no_longer_makes_the_api_platform_admin(
    stack: LiveStack, tenant: uuid.UUID
) -> None:
    with connect(stack, Service.API) as conn, conn.transaction():
        conn.execute("SELECT set_config('fulcrum.platform_admin', 'on', true)")
        conn.execute("SELECT set_config('fulcrum.maintenance', 'on', true)")
        assert conn.execute("SELECT count(*) FROM tenants").fetchone() == (0,)
        updated = conn.execute("UPDATE tenants SET status = 'suspended' WHERE id = %s", (tenant,))
        assert updated.rowcount == 0


def test_api_cannot_start_an_operator_session(stack: LiveStack) -> None:
    for sql in (
        "SELECT fulcrum_operator_begin()",
        "INSERT INTO platform_sessions VALUES (pg_backend_pid(), pg_current_xact_id(), NULL)",
    ):
        assert isinstance(refused(stack, Service.API, None, sql), errors.InsufficientPrivilege)


def test_api_cannot_touch_platform_keys(stack: LiveStack) -> None:
    for sql in (
        "SELECT id, hash FROM platform_api_keys",
        "UPDATE platform_api_keys SET revoked_at = NULL",
        "INSERT INTO platform_api_keys (id, name, hash) VALUES "
        "('00000000000000000000', 'x', '\\x00')",
    ):
        assert isinstance(refused(stack, Service.API, None, sql), errors.InsufficientPrivilege)


def test_a_made_up_platform_proof_opens_nothing(stack: LiveStack) -> None:
    with connect(stack, Service.API) as conn, conn.transaction():
        outcome = conn.execute(
            "SELECT fulcrum_platform_begin(%s, %s)", ("0" * 20, hashlib.sha256(b"x").digest())
        ).fetchone()
        assert outcome == ("unknown_key",)
        assert conn.execute("SELECT count(*) FROM tenants").fetchone() == (0,)


@pytest.mark.parametrize(
    "change",
    [
        "status = 'suspended'",
        "plan = 'enterprise'",
        "name = 'renamed-by-a-tenant'",
        "clerk_org_id = 'org_someone_else'",
        "limit_per_second = 1000000",
        "limit_burst = 10000000",
        "key_limit_per_second = 1000000",
        "key_limit_burst = 10000000",
    ],
)
def test_a_tenant_cannot_change_what_only_the_platform_may(
    stack: LiveStack, tenant: uuid.UUID, change: str
) -> None:
    error = refused(stack, Service.API, tenant, f"UPDATE tenants SET {change}")
    assert isinstance(error, errors.InsufficientPrivilege), error


def test_a_tenant_transaction_cannot_create_a_tenant(stack: LiveStack) -> None:
    other = uuid.uuid4()
    error = refused(
        stack, Service.API, other, "INSERT INTO tenants (id, name) VALUES (%s, %s)", other, "x"
    )
    assert isinstance(error, errors.InsufficientPrivilege)


# --- the worker touches no identity table ---------------------------------------------


@pytest.mark.parametrize(
    "table", ["tenants", "members", "api_keys", "platform_api_keys", "policies", "policy_versions"]
)
def test_worker_cannot_read_identity_tables(
    stack: LiveStack, tenant: uuid.UUID, table: str
) -> None:
    error = refused(stack, Service.WORKER, tenant, f"SELECT * FROM {table}")
    assert isinstance(error, errors.InsufficientPrivilege)


def test_worker_cannot_erase_the_ledger(stack: LiveStack, tenant: uuid.UUID) -> None:
    for sql in ("DELETE FROM audit_records", "UPDATE audit_records SET outcome = 'x'"):
        assert isinstance(refused(stack, Service.WORKER, tenant, sql), errors.InsufficientPrivilege)


# --- retention sees every tenant ------------------------------------------------------


def test_retention_deletes_old_rollups_of_every_tenant(stack: LiveStack) -> None:
    tenants = [uuid.uuid4() for _ in range(3)]
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    old = now - dt.timedelta(days=90)
    with psycopg.connect(stack.superuser_dsn(), autocommit=True) as su:
        for tid in tenants:
            su.execute("INSERT INTO tenants (id, name) VALUES (%s, %s)", (tid, f"ret-{tid}"))
            for minute in (old, now):
                su.execute(
                    "INSERT INTO decision_rollups (tenant_id, minute, action, decisions) "
                    "VALUES (%s, %s, 'allow', 1)",
                    (tid, minute),
                )
    with connect(stack, Service.WORKER) as conn:
        conn.execute("SELECT fulcrum_drop_decision_partitions(30)")
        conn.commit()
    with psycopg.connect(stack.superuser_dsn()) as su:
        left = su.execute(
            "SELECT tenant_id, minute FROM decision_rollups WHERE tenant_id = ANY(%s)", (tenants,)
        ).fetchall()
    assert sorted(left) == sorted((tid, now) for tid in tenants)
