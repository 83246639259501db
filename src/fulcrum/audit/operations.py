"""What can be asked of a tenant's audit ledger."""

from fulcrum.auth.operations import Operation
from fulcrum.auth.scopes import Scope

LIST = Operation("audit.list", (Scope.AUDIT_READ,))
GET = Operation("audit.get", (Scope.AUDIT_READ,))
EXPORT = Operation("audit.export", (Scope.AUDIT_READ,))
VERIFY = Operation("audit.verify", (Scope.AUDIT_READ,))
