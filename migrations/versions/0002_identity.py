"""Identity: API keys, platform keys, Clerk organisations, the change log.

Revision ID: 0002
Revises: 0001

Authentication has to find one key (or one member) before the tenant is known. Rather
than a role that bypasses RLS, narrow SELECT-only policies admit exactly the row whose id
the authenticating transaction names in a setting (``fulcrum.api_key_id``,
``fulcrum.external_user_id``, ``fulcrum.clerk_org_id``); a query that forgets its WHERE
clause still sees nothing but its own tenant. Platform administration reads and updates
tenant rows when ``fulcrum.platform_admin`` is on, which only the platform service sets
after authenticating a platform key.
"""

from alembic import op

from fulcrum.kit.rls import grant, tenant_isolation

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _setting(name: str) -> str:
    return f"NULLIF(current_setting('fulcrum.{name}', true), '')"


def upgrade() -> None:
    op.execute("ALTER TABLE tenants ADD COLUMN clerk_org_id text UNIQUE")
    op.execute(
        f"""
        CREATE POLICY platform_admin ON tenants
            USING ({_setting("platform_admin")} = 'on')
            WITH CHECK ({_setting("platform_admin")} = 'on')
        """
    )
    op.execute(
        f"CREATE POLICY org_lookup ON tenants FOR SELECT "
        f"USING (clerk_org_id = {_setting('clerk_org_id')})"
    )
    op.execute(grant("tenants", "SELECT, INSERT, UPDATE"))

    op.execute(
        f"CREATE POLICY member_lookup ON members FOR SELECT "
        f"USING (external_user_id = {_setting('external_user_id')})"
    )

    op.execute(
        """
        CREATE TABLE api_keys (
            tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            id            text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{20}$'),
            name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
            hash          bytea NOT NULL CHECK (length(hash) = 32),
            scopes        text[] NOT NULL,
            created_at    timestamptz NOT NULL DEFAULT now(),
            created_by    text NOT NULL,
            expires_at    timestamptz,
            revoked_at    timestamptz,
            last_used_at  timestamptz,
            rotated_from  text REFERENCES api_keys (id)
        )
        """
    )
    op.execute("CREATE INDEX api_keys_tenant_created ON api_keys (tenant_id, created_at, id)")
    for stmt in tenant_isolation("api_keys"):
        op.execute(stmt)
    op.execute(
        f"CREATE POLICY key_lookup ON api_keys FOR SELECT USING (id = {_setting('api_key_id')})"
    )
    op.execute(grant("api_keys", "SELECT, INSERT, UPDATE"))

    op.execute(
        """
        CREATE TABLE platform_api_keys (
            id            text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{20}$'),
            name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
            hash          bytea NOT NULL CHECK (length(hash) = 32),
            created_at    timestamptz NOT NULL DEFAULT now(),
            revoked_at    timestamptz,
            last_used_at  timestamptz
        )
        """
    )
    op.execute(grant("platform_api_keys", "SELECT, INSERT, UPDATE"))

    # Append-only: the application may add and read change records, never alter them.
    op.execute(
        """
        CREATE TABLE audit_events (
            tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            id             uuid NOT NULL DEFAULT gen_random_uuid(),
            occurred_at    timestamptz NOT NULL DEFAULT now(),
            trace_id       text NOT NULL,
            actor          text NOT NULL,
            action         text NOT NULL,
            resource_type  text NOT NULL,
            resource_id    text NOT NULL,
            outcome        text NOT NULL DEFAULT 'success',
            details        jsonb NOT NULL DEFAULT '{}'::jsonb,
            PRIMARY KEY (tenant_id, id)
        )
        """
    )
    op.execute("CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, occurred_at)")
    for stmt in tenant_isolation("audit_events"):
        op.execute(stmt)
    op.execute(grant("audit_events", "SELECT, INSERT"))


def downgrade() -> None:
    op.execute("DROP TABLE audit_events")
    op.execute("DROP TABLE platform_api_keys")
    op.execute("DROP TABLE api_keys")
    op.execute("DROP POLICY member_lookup ON members")
    op.execute("REVOKE INSERT, UPDATE ON tenants FROM fulcrum_app")
    op.execute("DROP POLICY org_lookup ON tenants")
    op.execute("DROP POLICY platform_admin ON tenants")
    op.execute("ALTER TABLE tenants DROP COLUMN clerk_org_id")
