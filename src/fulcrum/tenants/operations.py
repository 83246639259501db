"""What can be asked of tenants (platform administration) and of a tenant's settings."""

from fulcrum.auth.operations import Operation
from fulcrum.auth.scopes import Scope

CREATE = Operation("tenants.create", (Scope.TENANTS_ADMIN,))
GET = Operation("tenants.get", (Scope.TENANTS_ADMIN,))
LIST = Operation("tenants.list", (Scope.TENANTS_ADMIN,))
SET_STATUS = Operation("tenants.set_status", (Scope.TENANTS_ADMIN,))  # suspend, resume
SET_PLAN = Operation("tenants.set_plan", (Scope.TENANTS_ADMIN,))
SET_LIMITS = Operation("tenants.set_limits", (Scope.TENANTS_ADMIN,))  # custom ceilings

GET_SETTINGS = Operation("settings.get", (Scope.SETTINGS_READ,))
UPDATE_SETTINGS = Operation("settings.update", (Scope.SETTINGS_MANAGE,))
