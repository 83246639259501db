"""The row-level-security pattern every tenant-owned table follows (used by migrations)."""

from __future__ import annotations

from fulcrum.kit.config import SERVICE_ROLES
from fulcrum.kit.db import CURRENT_TENANT


def tenant_isolation(table: str, column: str = "tenant_id") -> list[str]:
    """Statements that enable and force RLS on ``table``, keyed on ``column``.

    With no tenant set the predicate is NULL, so the transaction sees no rows and gets no
    error; FORCE makes the policy apply to the table owner as well.
    """
    predicate = f"{column} = {CURRENT_TENANT}"
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_isolation ON {table} USING ({predicate}) WITH CHECK ({predicate})",
    ]


def grant(table: str, privileges: str, roles: tuple[str, ...] = SERVICE_ROLES) -> str:
    """The grant of ``privileges`` on ``table``. Migrations before 0007 granted one
    application role everything; 0007 narrows each service role to what it needs, and every
    later migration names its roles."""
    return f"GRANT {privileges} ON {table} TO {', '.join(roles)}"
