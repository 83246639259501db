"""Scopes and the roles that bundle them.

A principal holds a set of scopes; every route and RPC declares the scopes it needs
(``HasScope``). Nobody can grant a scope they do not hold, and ``tenants:admin`` belongs
to platform keys only: no tenant key or role can ever carry it. ``invitations:respond``
belongs to a signed-in user acting on their own invitations, outside any tenant: no key
or role carries it either.
"""

from __future__ import annotations

from enum import StrEnum

from fulcrum.kit.errors import InvalidArgument


class Scope(StrEnum):
    TENANTS_ADMIN = "tenants:admin"
    MEMBERS_READ = "members:read"
    MEMBERS_MANAGE = "members:manage"
    OWNERSHIP_MANAGE = "ownership:manage"
    KEYS_READ = "keys:read"
    KEYS_MANAGE = "keys:manage"
    POLICIES_READ = "policies:read"
    POLICIES_WRITE = "policies:write"
    DECISIONS_EVALUATE = "decisions:evaluate"
    AUDIT_READ = "audit:read"
    APPROVALS_READ = "approvals:read"
    APPROVALS_DECIDE = "approvals:decide"
    SETTINGS_READ = "settings:read"
    SETTINGS_MANAGE = "settings:manage"
    INVITATIONS_RESPOND = "invitations:respond"


PLATFORM_SCOPES = frozenset({Scope.TENANTS_ADMIN})
USER_SCOPES = frozenset({Scope.INVITATIONS_RESPOND})
TENANT_SCOPES = frozenset(Scope) - PLATFORM_SCOPES - USER_SCOPES


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    POLICY_AUTHOR = "policy_author"
    APPROVER = "approver"
    AUDITOR = "auditor"
    AGENT = "agent"
    VIEWER = "viewer"


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.OWNER: TENANT_SCOPES,
    # Only owners hold ownership:manage, so only owners can make (or unmake) owners.
    Role.ADMIN: TENANT_SCOPES - {Scope.OWNERSHIP_MANAGE},
    Role.POLICY_AUTHOR: frozenset(
        {Scope.POLICIES_READ, Scope.POLICIES_WRITE, Scope.DECISIONS_EVALUATE, Scope.AUDIT_READ}
    ),
    Role.APPROVER: frozenset(
        {Scope.APPROVALS_READ, Scope.APPROVALS_DECIDE, Scope.POLICIES_READ, Scope.AUDIT_READ}
    ),
    Role.AUDITOR: frozenset(
        {
            Scope.AUDIT_READ,
            Scope.POLICIES_READ,
            Scope.MEMBERS_READ,
            Scope.KEYS_READ,
            Scope.APPROVALS_READ,
            Scope.SETTINGS_READ,
        }
    ),
    Role.AGENT: frozenset({Scope.DECISIONS_EVALUATE}),
    Role.VIEWER: frozenset(
        {
            Scope.POLICIES_READ,
            Scope.MEMBERS_READ,
            Scope.KEYS_READ,
            Scope.APPROVALS_READ,
            Scope.SETTINGS_READ,
        }
    ),
}


def parse_role(value: str, field: str = "role") -> Role:
    try:
        return Role(value)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise InvalidArgument(
            f"unknown role {value!r}; expected one of: {allowed}", field=field
        ) from None


def parse_tenant_scopes(values: list[str], field: str = "scopes") -> frozenset[Scope]:
    """Validate scopes requested for a tenant key; unknown or platform scopes are refused."""
    if not values:
        raise InvalidArgument("at least one scope is required", field=field)
    scopes = set()
    for i, value in enumerate(values):
        try:
            scope = Scope(value)
        except ValueError:
            raise InvalidArgument(
                f"unknown scope {str(value)[:64]!r}", field=f"{field}[{i}]"
            ) from None
        if scope in PLATFORM_SCOPES:
            raise InvalidArgument(
                f"scope {scope} belongs to platform keys and cannot be granted to a tenant key",
                field=f"{field}[{i}]",
            )
        if scope in USER_SCOPES:
            raise InvalidArgument(
                f"scope {scope} belongs to signed-in users and cannot be granted to a key",
                field=f"{field}[{i}]",
            )
        scopes.add(scope)
    return frozenset(scopes)
