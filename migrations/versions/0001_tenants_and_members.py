"""Tenants and members: the pattern every tenant-owned table follows.

Revision ID: 0001
Revises:
"""

from alembic import op

from fulcrum.kit.rls import grant, tenant_isolation

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE tenants (
            id          uuid PRIMARY KEY,
            name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
            status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
            created_at  timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    # A tenant sees its own row only; the key column is the tenant's own id.
    for stmt in tenant_isolation("tenants", column="id"):
        op.execute(stmt)
    op.execute(grant("tenants", "SELECT"))

    op.execute(
        """
        CREATE TABLE members (
            tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
            id                uuid NOT NULL DEFAULT gen_random_uuid(),
            external_user_id  text NOT NULL CHECK (length(external_user_id) BETWEEN 1 AND 200),
            role              text NOT NULL,
            created_at        timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, id),
            UNIQUE (tenant_id, external_user_id)
        )
        """
    )
    for stmt in tenant_isolation("members"):
        op.execute(stmt)
    op.execute(grant("members", "SELECT, INSERT, UPDATE, DELETE"))


def downgrade() -> None:
    op.execute("DROP TABLE members")
    op.execute("DROP TABLE tenants")
