"""One database role per service, each holding only what it needs; platform administration
proven to the database, not claimed by a setting; retention that sees every tenant.

Revision ID: 0007
Revises: 0006

Before this, the API and the worker shared one role that could write the ledger, and a
session that set ``fulcrum.platform_admin = on`` read and changed every tenant: anyone holding
the API's certificate could forge ledger records or become platform administrator. Now:

- ``fulcrum_api`` reads the ledger and writes the change outbox, never the ledger, its chain
  heads or checkpoints; it has no access to platform keys at all.
- ``fulcrum_worker`` writes the ledger, the decision series and checkpoints, reads the
  outbox, and touches no identity table (tenants, members, API keys, policies).
- Platform administration happens in a transaction that has shown the database a platform
  key: ``fulcrum_platform_begin(key_id, HMAC(pepper, key))`` checks it against the stored hash
  (which the API cannot read) and records this backend and transaction in
  ``platform_sessions``, which only the owner can write. The ``platform`` policy on tenants
  admits exactly such a transaction. A compromised API process can therefore act as platform
  administrator only with a platform key a caller presents to it.
- A tenant's own transaction may read and update its row, but only platform administration
  may change its name, status, plan or Clerk organisation (trigger).
- Cross-tenant housekeeping (retention, the worker's sweep, the revision poll) runs in
  narrow ``SECURITY DEFINER`` functions that set ``fulcrum.maintenance`` for their duration
  only; the ``maintenance`` policies admit the owner role under that setting. Forced RLS
  made such functions see nothing before (retention never deleted roll-ups).
"""

from alembic import op

from fulcrum.kit.config import API_ROLE, OWNER_ROLE, WORKER_ROLE
from fulcrum.kit.db import CURRENT_TENANT

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

LEGACY_ROLE = "fulcrum_app"
MAINTENANCE = "current_setting('fulcrum.maintenance', true) = 'on'"

# table -> (API privileges, worker privileges). Tests pin this matrix (test_grants.py).
GRANTS: dict[str, tuple[str, str]] = {
    "tenants": ("SELECT, INSERT, UPDATE", ""),
    "members": ("SELECT, INSERT, UPDATE, DELETE", ""),
    "api_keys": ("SELECT, INSERT, UPDATE", ""),
    "platform_api_keys": ("", ""),
    "audit_events": ("INSERT", "SELECT"),
    "policies": ("SELECT, INSERT, UPDATE", ""),
    "policy_versions": ("SELECT, INSERT", ""),
    "audit_records": ("SELECT", "SELECT, INSERT"),
    "audit_chain_heads": ("SELECT", "SELECT, INSERT, UPDATE"),
    "audit_checkpoints": ("SELECT", "SELECT, INSERT"),
    "decisions": ("SELECT", "INSERT"),
    "decision_rollups": ("SELECT", "SELECT, INSERT, UPDATE"),
}

# function -> the one role that may call it (the owner calls its own functions).
FUNCTIONS: dict[str, str] = {
    "fulcrum_platform_tx()": API_ROLE,
    "fulcrum_platform_check(text, bytea)": API_ROLE,
    "fulcrum_platform_begin(text, bytea)": API_ROLE,
    "fulcrum_policy_revisions(uuid[])": API_ROLE,
    "fulcrum_ledger_tenants()": WORKER_ROLE,
    "fulcrum_ensure_decision_partitions(integer)": WORKER_ROLE,
    "fulcrum_drop_decision_partitions(integer)": WORKER_ROLE,
}

PLATFORM_FUNCTIONS = """
CREATE UNLOGGED TABLE platform_sessions (
    backend_pid  integer PRIMARY KEY,
    xact         xid8 NOT NULL,
    key_id       text
);
REVOKE ALL ON platform_sessions FROM PUBLIC;

CREATE FUNCTION fulcrum_platform_tx() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT EXISTS (
        SELECT 1 FROM platform_sessions
        WHERE backend_pid = pg_backend_pid() AND xact = pg_current_xact_id_if_assigned())
$$;

CREATE FUNCTION fulcrum_platform_check(p_key_id text, p_proof bytea) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    stored record;
BEGIN
    SELECT hash, revoked_at INTO stored FROM platform_api_keys WHERE id = p_key_id;
    IF NOT FOUND THEN
        RETURN 'unknown_key';
    END IF;
    -- Compare digests, so the comparison's timing says nothing about the stored hash.
    IF sha256(stored.hash) <> sha256(p_proof) THEN
        RETURN 'bad_secret';
    END IF;
    IF stored.revoked_at IS NOT NULL THEN
        RETURN 'revoked';
    END IF;
    UPDATE platform_api_keys SET last_used_at = now()
    WHERE id = p_key_id AND (last_used_at IS NULL OR last_used_at < now() - interval '5 seconds');
    RETURN 'ok';
END $$;

CREATE FUNCTION fulcrum_platform_begin(p_key_id text, p_proof bytea) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    outcome text := fulcrum_platform_check(p_key_id, p_proof);
BEGIN
    IF outcome = 'ok' THEN
        INSERT INTO platform_sessions (backend_pid, xact, key_id)
        VALUES (pg_backend_pid(), pg_current_xact_id(), p_key_id)
        ON CONFLICT (backend_pid) DO UPDATE SET xact = EXCLUDED.xact, key_id = EXCLUDED.key_id;
    END IF;
    RETURN outcome;
END $$;

-- Operators (the owner role, certificate fulcrum-admin) administer without a platform key.
CREATE FUNCTION fulcrum_operator_begin() RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public AS $$
    INSERT INTO platform_sessions (backend_pid, xact, key_id)
    VALUES (pg_backend_pid(), pg_current_xact_id(), NULL)
    ON CONFLICT (backend_pid) DO UPDATE SET xact = EXCLUDED.xact, key_id = NULL
$$;

CREATE FUNCTION fulcrum_guard_tenant_admin_columns() RETURNS trigger
LANGUAGE plpgsql SET search_path = public AS $$
BEGIN
    IF (NEW.id, NEW.name, NEW.status, NEW.plan, NEW.clerk_org_id)
       IS DISTINCT FROM (OLD.id, OLD.name, OLD.status, OLD.plan, OLD.clerk_org_id)
       AND NOT fulcrum_platform_tx() THEN
        RAISE EXCEPTION 'only platform administration may change a tenant''s name, status, '
            'plan or Clerk organisation' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER tenants_admin_columns BEFORE UPDATE ON tenants
    FOR EACH ROW EXECUTE FUNCTION fulcrum_guard_tenant_admin_columns();
"""

# The maintenance policies admit the owner while fulcrum.maintenance is on; these functions
# (run as the owner) turn it on for their own statement only. (A function's SET clause
# cannot name a custom setting without a superuser.)
MAINTENANCE_FUNCTIONS = """
CREATE FUNCTION fulcrum_policy_revisions(ids uuid[])
RETURNS TABLE (tenant_id uuid, revision bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    PERFORM set_config('fulcrum.maintenance', 'on', true);
    RETURN QUERY SELECT t.id, t.policy_revision FROM tenants t WHERE t.id = ANY(ids);
    PERFORM set_config('fulcrum.maintenance', '', true);
END $$;

-- Tenants the worker's housekeeping sweep looks at: those with a ledger, and those with
-- changes in the outbox not yet chained.
CREATE FUNCTION fulcrum_ledger_tenants() RETURNS SETOF uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    PERFORM set_config('fulcrum.maintenance', 'on', true);
    RETURN QUERY
        SELECT h.tenant_id FROM audit_chain_heads h
        UNION
        SELECT DISTINCT e.tenant_id FROM audit_events e
        WHERE NOT EXISTS (SELECT 1 FROM audit_records r
                          WHERE r.tenant_id = e.tenant_id AND r.event_id = e.id);
    PERFORM set_config('fulcrum.maintenance', '', true);
END $$;
"""

RETENTION_FUNCTION = """
CREATE OR REPLACE FUNCTION fulcrum_drop_decision_partitions(retention_days integer)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    part record;
    dropped integer := 0;
    cutoff date := (now() AT TIME ZONE 'UTC')::date - retention_days;
BEGIN
    IF retention_days < 1 THEN
        RAISE EXCEPTION 'retention_days must be at least 1';
    END IF;
    FOR part IN
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = 'decisions' AND c.relname ~ '^decisions_[0-9]{8}$'
    LOOP
        IF to_date(substr(part.relname, 11), 'YYYYMMDD') < cutoff THEN
            EXECUTE format('DROP TABLE %I', part.relname);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    -- Every tenant's roll-ups: the maintenance policy admits this function's owner.
    PERFORM set_config('fulcrum.maintenance', 'on', true);
    DELETE FROM decision_rollups WHERE minute < cutoff::timestamptz;
    PERFORM set_config('fulcrum.maintenance', '', true);
    RETURN dropped;
END $$;
"""


def _is_table(name: str) -> bool:
    row = (
        op.get_bind()
        .exec_driver_sql(f"SELECT relkind FROM pg_class WHERE oid = to_regclass('{name}')")
        .first()
    )
    return bool(row and row[0] in ("r", "p"))


def upgrade() -> None:
    rollups_table = _is_table("decision_rollups")
    op.execute(PLATFORM_FUNCTIONS)
    op.execute(MAINTENANCE_FUNCTIONS)
    if rollups_table:
        op.execute(RETENTION_FUNCTION)

    # Start from nothing: what earlier migrations granted, every function's default EXECUTE
    # for PUBLIC. Then each role gets exactly its column of GRANTS.
    roles = f"{API_ROLE}, {WORKER_ROLE}"
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {roles}")
    op.execute(f"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC, {roles}")
    op.execute(
        f"""
        DO $$ BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{LEGACY_ROLE}') THEN
                REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {LEGACY_ROLE};
                REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM {LEGACY_ROLE};
                REVOKE ALL ON SCHEMA public FROM {LEGACY_ROLE};
                EXECUTE format('REVOKE ALL ON DATABASE %I FROM {LEGACY_ROLE}',
                               current_database());
            END IF;
        END $$
        """
    )
    for table, (api, writes) in GRANTS.items():
        # TimescaleDB's continuous aggregate: the database keeps it, the worker only reads.
        worker = "SELECT" if table == "decision_rollups" and not rollups_table else writes
        for role, privileges in ((API_ROLE, api), (WORKER_ROLE, worker)):
            if privileges:
                op.execute(f"GRANT {privileges} ON {table} TO {role}")

    op.execute("DROP POLICY tenant_isolation ON tenants")
    op.execute("DROP POLICY platform_admin ON tenants")
    op.execute(f"CREATE POLICY tenant_read ON tenants FOR SELECT USING (id = {CURRENT_TENANT})")
    op.execute(
        f"CREATE POLICY tenant_update ON tenants FOR UPDATE "
        f"USING (id = {CURRENT_TENANT}) WITH CHECK (id = {CURRENT_TENANT})"
    )
    op.execute(
        "CREATE POLICY platform ON tenants "
        "USING ((SELECT fulcrum_platform_tx())) WITH CHECK ((SELECT fulcrum_platform_tx()))"
    )
    for table in ("tenants", "audit_events", "audit_records", "audit_chain_heads"):
        op.execute(
            f"CREATE POLICY maintenance ON {table} FOR SELECT TO {OWNER_ROLE} USING ({MAINTENANCE})"
        )
    if rollups_table:
        op.execute(
            f"CREATE POLICY maintenance ON decision_rollups TO {OWNER_ROLE} USING ({MAINTENANCE})"
        )

    functions = dict(FUNCTIONS)
    if not rollups_table:
        functions = {f: r for f, r in functions.items() if "decision_partitions" not in f}
    for fn, role in functions.items():
        op.execute(f"GRANT EXECUTE ON FUNCTION {fn} TO {role}")


def downgrade() -> None:
    raise NotImplementedError("0007 separates the service roles; restore from a backup instead")
