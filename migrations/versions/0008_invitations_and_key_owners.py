"""Invitations (a member status) and API key owners.

Revision ID: 0008
Revises: 0007

A member row is ``invited`` until the user accepts it (or their Clerk organisation vouches
for it); only ``active`` members sign in, so a tenant adding someone cannot change that
user's other sessions. ``members`` keeps its forced RLS; the user reads their own
invitations through the existing ``member_lookup`` policy (``fulcrum.external_user_id``)
and answers one in a transaction that then names the invitation's tenant.

A key belongs to the member who made it (``owner_member_id``) and works only while that
member is active and their role holds every scope of the key; ``service`` keys belong to
the tenant. Existing keys: made by a user, the user's member (or revoked when that member
is gone); made by a key, that key's owner; made by the platform or an operator (the
tenant's first owner key), a service key.
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE members ADD COLUMN status text NOT NULL DEFAULT 'active' "
        "CHECK (status IN ('invited', 'active'))"
    )
    op.execute("ALTER TABLE members ADD COLUMN invited_by text")
    op.execute("ALTER TABLE api_keys ADD COLUMN owner_member_id uuid")
    op.execute("ALTER TABLE api_keys ADD COLUMN service boolean NOT NULL DEFAULT false")
    # Forced RLS hides every row from the owner without a tenant; the backfill below runs
    # across tenants, then the policy is forced again in the same transaction.
    for table in ("api_keys", "members"):
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
    op.execute(
        """
        WITH RECURSIVE lineage (id, ancestor, created_by) AS (
            SELECT id, id, created_by FROM api_keys
            UNION ALL
            SELECT l.id, p.id, p.created_by
            FROM lineage l JOIN api_keys p ON l.created_by = 'key:' || p.id
        ),
        origin AS (
            SELECT DISTINCT ON (l.id) l.id, l.created_by
            FROM lineage l
            ORDER BY l.id, starts_with(l.created_by, 'key:')
        )
        UPDATE api_keys k SET
            service = NOT (starts_with(o.created_by, 'key:')
                           OR starts_with(o.created_by, 'user:')),
            owner_member_id = m.id,
            revoked_at = CASE
                WHEN starts_with(o.created_by, 'user:') AND m.id IS NULL
                    THEN coalesce(k.revoked_at, now())
                WHEN starts_with(o.created_by, 'key:') THEN coalesce(k.revoked_at, now())
                ELSE k.revoked_at
            END
        FROM origin o
        LEFT JOIN api_keys own ON own.id = o.id
        LEFT JOIN members m
            ON m.tenant_id = own.tenant_id AND o.created_by = 'user:' || m.external_user_id
        WHERE k.id = o.id
        """
    )
    for table in ("api_keys", "members"):
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute("CREATE INDEX api_keys_owner ON api_keys (tenant_id, owner_member_id)")


def downgrade() -> None:
    op.execute("DROP INDEX api_keys_owner")
    op.execute("ALTER TABLE api_keys DROP COLUMN service")
    op.execute("ALTER TABLE api_keys DROP COLUMN owner_member_id")
    op.execute("ALTER TABLE members DROP COLUMN invited_by")
    op.execute("ALTER TABLE members DROP COLUMN status")
