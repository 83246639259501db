"""Rate limits: each tenant has a plan and optional lower overrides.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE tenants
            ADD COLUMN plan text NOT NULL DEFAULT 'standard'
                CHECK (plan IN ('free', 'standard', 'enterprise')),
            ADD COLUMN rate_limit_per_second double precision CHECK (rate_limit_per_second >= 0),
            ADD COLUMN rate_limit_burst integer CHECK (rate_limit_burst >= 1),
            ADD COLUMN key_rate_limit_per_second double precision
                CHECK (key_rate_limit_per_second >= 0),
            ADD COLUMN key_rate_limit_burst integer CHECK (key_rate_limit_burst >= 1)
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE tenants DROP COLUMN plan, DROP COLUMN rate_limit_per_second,
            DROP COLUMN rate_limit_burst, DROP COLUMN key_rate_limit_per_second,
            DROP COLUMN key_rate_limit_burst
        """
    )
