"""What can be asked of a tenant's API keys, and the scopes each needs."""

from fulcrum.auth.operations import Operation
from fulcrum.auth.scopes import Scope

CREATE = Operation("api_keys.create", (Scope.KEYS_MANAGE,))
GET = Operation("api_keys.get", (Scope.KEYS_READ,))
LIST = Operation("api_keys.list", (Scope.KEYS_READ,))
REVOKE = Operation("api_keys.revoke", (Scope.KEYS_MANAGE,))
ROTATE = Operation("api_keys.rotate", (Scope.KEYS_MANAGE,))
