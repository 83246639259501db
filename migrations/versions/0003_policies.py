"""Policies, their immutable versions, the tenant's default action and policy revision.

Revision ID: 0003
Revises: 0002

``tenants.policy_revision`` increases with every change to a tenant's active policy set,
so an API server can tell whether its compiled bundle is current with one small read.
"""

from alembic import op

from fulcrum.kit.rls import grant, tenant_isolation

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE tenants
            ADD COLUMN default_action text NOT NULL DEFAULT 'deny'
                CHECK (default_action IN ('allow', 'warn', 'escalate', 'require_approval', 'deny')),
            ADD COLUMN policy_revision bigint NOT NULL DEFAULT 0
        """
    )
    op.execute(
        """
        CREATE TABLE policies (
            tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            id               uuid NOT NULL DEFAULT gen_random_uuid(),
            name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
            status           text NOT NULL DEFAULT 'draft'
                             CHECK (status IN ('draft', 'active', 'disabled', 'deleted')),
            mode             text NOT NULL CHECK (mode IN ('enforce', 'shadow')),
            priority         integer NOT NULL,
            current_version  integer NOT NULL CHECK (current_version >= 1),
            created_at       timestamptz NOT NULL DEFAULT now(),
            updated_at       timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, id)
        )
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX policies_live_name ON policies (tenant_id, name) "
        "WHERE status <> 'deleted'"
    )
    op.execute("CREATE INDEX policies_tenant_created ON policies (tenant_id, created_at, id)")
    for stmt in tenant_isolation("policies"):
        op.execute(stmt)
    op.execute(grant("policies", "SELECT, INSERT, UPDATE"))

    # Versions are immutable: the application may add and read them, never change them.
    op.execute(
        """
        CREATE TABLE policy_versions (
            tenant_id   uuid NOT NULL,
            policy_id   uuid NOT NULL,
            version     integer NOT NULL CHECK (version >= 1),
            document    jsonb NOT NULL,
            author      text NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, policy_id, version),
            FOREIGN KEY (tenant_id, policy_id) REFERENCES policies (tenant_id, id)
                ON DELETE CASCADE
        )
        """
    )
    for stmt in tenant_isolation("policy_versions"):
        op.execute(stmt)
    op.execute(grant("policy_versions", "SELECT, INSERT"))


def downgrade() -> None:
    op.execute("DROP TABLE policy_versions")
    op.execute("DROP TABLE policies")
    op.execute("ALTER TABLE tenants DROP COLUMN policy_revision, DROP COLUMN default_action")
