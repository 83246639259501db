"""Custom limits: the platform may give a tenant ceilings of its own instead of its plan's.

Revision ID: 0009
Revises: 0008

A tenant's ceilings are its plan's, or the platform's custom ones (``limit_*``); the
tenant's own overrides (``rate_limit_*``, from 0004) can only lower them. Like the plan,
the custom ceilings change only in a platform transaction: the guard trigger of 0007 now
covers them too.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_GUARD = """
CREATE OR REPLACE FUNCTION fulcrum_guard_tenant_admin_columns() RETURNS trigger
LANGUAGE plpgsql SET search_path = public AS $$
BEGIN
    IF (NEW.id, NEW.name, NEW.status, NEW.plan, NEW.clerk_org_id{extra_new})
       IS DISTINCT FROM (OLD.id, OLD.name, OLD.status, OLD.plan, OLD.clerk_org_id{extra_old})
       AND NOT fulcrum_platform_tx() THEN
        RAISE EXCEPTION 'only platform administration may change a tenant''s name, status, '
            '{what}' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
"""
_CEILINGS = ("limit_per_second", "limit_burst", "key_limit_per_second", "key_limit_burst")


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE tenants
            ADD COLUMN limit_per_second double precision CHECK (limit_per_second >= 0),
            ADD COLUMN limit_burst integer CHECK (limit_burst >= 1),
            ADD COLUMN key_limit_per_second double precision CHECK (key_limit_per_second >= 0),
            ADD COLUMN key_limit_burst integer CHECK (key_limit_burst >= 1)
        """
    )
    op.execute(
        _GUARD.format(
            extra_new="".join(f", NEW.{c}" for c in _CEILINGS),
            extra_old="".join(f", OLD.{c}" for c in _CEILINGS),
            what="plan, limits or Clerk organisation",
        )
    )


def downgrade() -> None:
    op.execute(_GUARD.format(extra_new="", extra_old="", what="plan or Clerk organisation"))
    op.execute("ALTER TABLE tenants " + ", ".join(f"DROP COLUMN {c}" for c in _CEILINGS))
