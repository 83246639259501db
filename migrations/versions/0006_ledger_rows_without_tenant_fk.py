"""Ledger records without a per-row foreign key to tenants.

The key checked every ledger row against ``tenants`` one row at a time, a fifth of the
cost of storing a batch. Each record is written in a transaction that first locks, and if
need be creates, its tenant's chain head (``audit_chain_heads.tenant_id`` still references
``tenants``), and row-level security makes every row of that transaction carry the same
tenant: a record for an unknown tenant fails at the head, before any row is written, and a
tenant with a ledger cannot be deleted. Records are never updated or deleted (trigger).

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE audit_records DROP CONSTRAINT audit_records_tenant_id_fkey")


def downgrade() -> None:
    op.execute(
        "ALTER TABLE audit_records ADD CONSTRAINT audit_records_tenant_id_fkey "
        "FOREIGN KEY (tenant_id) REFERENCES tenants (id)"
    )
