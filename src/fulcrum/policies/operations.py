"""What can be asked of a tenant's policies."""

from fulcrum.auth.operations import Operation
from fulcrum.auth.scopes import Scope

CREATE = Operation("policies.create", (Scope.POLICIES_WRITE,))
GET = Operation("policies.get", (Scope.POLICIES_READ,))
GET_VERSION = Operation("policies.get_version", (Scope.POLICIES_READ,))
LIST = Operation("policies.list", (Scope.POLICIES_READ,))
UPDATE = Operation("policies.update", (Scope.POLICIES_WRITE,))
SET_STATUS = Operation("policies.set_status", (Scope.POLICIES_WRITE,))  # activate, disable, delete
# A draft against sample requests: every request is evaluated, so each costs a token.
SIMULATE = Operation("policies.simulate", (Scope.POLICIES_READ,), per_item=True)
