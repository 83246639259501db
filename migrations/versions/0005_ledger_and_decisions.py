"""The audit ledger (hash-chained, append-only), its signed checkpoints, and the decision
time series (native range partitions, or a TimescaleDB hypertable where available).

Revision ID: 0005
Revises: 0004
"""

from alembic import op

from fulcrum.kit.config import SERVICE_ROLES
from fulcrum.kit.rls import grant, tenant_isolation

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

APPEND_ONLY = """
CREATE FUNCTION fulcrum_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'retention is a separate, audited procedure (docs/AUDIT.md)';
END $$;
"""


def _append_only(table: str) -> None:
    op.execute(
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION fulcrum_refuse_change()"
    )
    op.execute(
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION fulcrum_refuse_change()"
    )


def upgrade() -> None:
    op.execute(APPEND_ONLY)

    op.execute(
        """
        CREATE TABLE audit_records (
            tenant_id      uuid NOT NULL REFERENCES tenants (id),
            seq            bigint NOT NULL CHECK (seq >= 1),
            event_id       uuid NOT NULL,
            kind           text NOT NULL CHECK (kind IN ('decision', 'change')),
            occurred_at    timestamptz NOT NULL,
            recorded_at    timestamptz NOT NULL DEFAULT now(),
            trace_id       text NOT NULL,
            actor          text NOT NULL,
            action         text NOT NULL,
            resource_type  text NOT NULL,
            resource_id    text NOT NULL,
            outcome        text NOT NULL,
            agent_id       text NOT NULL DEFAULT '',
            tool_name      text NOT NULL DEFAULT '',
            details        jsonb NOT NULL,
            prev_hash      bytea NOT NULL CHECK (length(prev_hash) = 32),
            hash           bytea NOT NULL CHECK (length(hash) = 32),
            PRIMARY KEY (tenant_id, seq),
            UNIQUE (tenant_id, event_id)
        )
        """
    )
    op.execute("CREATE INDEX audit_records_time ON audit_records (tenant_id, occurred_at)")
    op.execute("CREATE INDEX audit_records_trace ON audit_records (tenant_id, trace_id)")
    for stmt in tenant_isolation("audit_records"):
        op.execute(stmt)
    op.execute(grant("audit_records", "SELECT, INSERT"))
    _append_only("audit_records")

    op.execute(
        """
        CREATE TABLE audit_chain_heads (
            tenant_id   uuid PRIMARY KEY REFERENCES tenants (id),
            seq         bigint NOT NULL,
            hash        bytea NOT NULL,
            updated_at  timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    for stmt in tenant_isolation("audit_chain_heads"):
        op.execute(stmt)
    op.execute(grant("audit_chain_heads", "SELECT, INSERT, UPDATE"))

    op.execute(
        """
        CREATE TABLE audit_checkpoints (
            tenant_id   uuid NOT NULL REFERENCES tenants (id),
            seq         bigint NOT NULL,
            hash        bytea NOT NULL,
            created_at  timestamptz NOT NULL,
            key_id      text NOT NULL,
            signature   bytea NOT NULL,
            PRIMARY KEY (tenant_id, seq)
        )
        """
    )
    for stmt in tenant_isolation("audit_checkpoints"):
        op.execute(stmt)
    op.execute(grant("audit_checkpoints", "SELECT, INSERT"))
    _append_only("audit_checkpoints")

    _decision_series()


def _decision_series() -> None:
    timescale = (
        op.get_bind()
        .exec_driver_sql("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
        .first()
    )
    if timescale:
        _timescale_series()
    else:
        _native_series()
    for stmt in tenant_isolation("decisions"):
        op.execute(stmt)
    op.execute(grant("decisions", "SELECT, INSERT"))


DECISION_COLUMNS = """
    tenant_id        uuid NOT NULL,
    decided_at       timestamptz NOT NULL,
    decision_id      uuid NOT NULL,
    agent_id         text NOT NULL,
    tool_name        text NOT NULL,
    action           text NOT NULL,
    policy_id        text NOT NULL,
    policy_version   integer NOT NULL,
    rule_id          text NOT NULL,
    matched          boolean NOT NULL,
    evaluation_ns    bigint NOT NULL,
    trace_id         text NOT NULL,
    -- Time first: the key also serves the per-tenant time-range reads of the dashboard.
    PRIMARY KEY (tenant_id, decided_at, decision_id)
"""


def _native_series() -> None:
    op.execute(f"CREATE TABLE decisions ({DECISION_COLUMNS}) PARTITION BY RANGE (decided_at)")
    op.execute(
        """
        CREATE TABLE decision_rollups (
            tenant_id  uuid NOT NULL,
            minute     timestamptz NOT NULL,
            action     text NOT NULL,
            decisions  bigint NOT NULL,
            PRIMARY KEY (tenant_id, minute, action)
        )
        """
    )
    # Partition upkeep runs as the owner through narrow SECURITY DEFINER functions, so the
    # worker (application role, owning nothing) can create partitions ahead and drop old ones.
    op.execute(
        """
        CREATE FUNCTION fulcrum_ensure_decision_partitions(days_ahead integer)
        RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
        DECLARE
            day date;
            created integer := 0;
            name text;
        BEGIN
            IF days_ahead < 0 OR days_ahead > 60 THEN
                RAISE EXCEPTION 'days_ahead must be between 0 and 60';
            END IF;
            FOR i IN -1..days_ahead LOOP
                day := (now() AT TIME ZONE 'UTC')::date + i;
                name := 'decisions_' || to_char(day, 'YYYYMMDD');
                IF to_regclass(name) IS NULL THEN
                    EXECUTE format(
                        'CREATE TABLE %I PARTITION OF decisions FOR VALUES FROM (%L) TO (%L)',
                        name, day::timestamptz AT TIME ZONE 'UTC',
                        (day + 1)::timestamptz AT TIME ZONE 'UTC');
                    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', name);
                    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', name);
                    created := created + 1;
                END IF;
            END LOOP;
            RETURN created;
        END $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION fulcrum_drop_decision_partitions(retention_days integer)
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
            DELETE FROM decision_rollups WHERE minute < cutoff::timestamptz;
            RETURN dropped;
        END $$
        """
    )
    for stmt in tenant_isolation("decision_rollups"):
        op.execute(stmt)
    op.execute(grant("decision_rollups", "SELECT, INSERT, UPDATE"))
    for fn in ("fulcrum_ensure_decision_partitions", "fulcrum_drop_decision_partitions"):
        op.execute(f"REVOKE ALL ON FUNCTION {fn}(integer) FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {fn}(integer) TO {', '.join(SERVICE_ROLES)}")
    op.execute("SELECT fulcrum_ensure_decision_partitions(7)")
    # Rows outside every daily partition (a worker catching up after a long outage) land
    # here instead of failing the write.
    op.execute("CREATE TABLE decisions_default PARTITION OF decisions DEFAULT")
    op.execute("ALTER TABLE decisions_default ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE decisions_default FORCE ROW LEVEL SECURITY")


def _timescale_series() -> None:
    # Untested here: TimescaleDB is not installable on the development machines (README).
    op.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    op.execute(f"CREATE TABLE decisions ({DECISION_COLUMNS})")
    op.execute("SELECT create_hypertable('decisions', 'decided_at')")
    op.execute(
        """
        CREATE MATERIALIZED VIEW decision_rollups WITH (timescaledb.continuous) AS
        SELECT tenant_id, time_bucket('1 minute', decided_at) AS minute, action,
               count(*) AS decisions
        FROM decisions GROUP BY tenant_id, minute, action
        """
    )
    # A continuous aggregate cannot carry RLS: the application reads it only through the
    # tenant-filtered repository, and gets SELECT alone.
    op.execute(grant("decision_rollups", "SELECT"))


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS decision_rollups CASCADE")
    op.execute("DROP TABLE IF EXISTS decisions CASCADE")
    op.execute("DROP FUNCTION IF EXISTS fulcrum_ensure_decision_partitions(integer)")
    op.execute("DROP FUNCTION IF EXISTS fulcrum_drop_decision_partitions(integer)")
    op.execute("DROP TABLE audit_checkpoints")
    op.execute("DROP TABLE audit_chain_heads")
    op.execute("DROP TABLE audit_records")
    op.execute("DROP FUNCTION fulcrum_refuse_change()")
