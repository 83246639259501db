"""What can be asked of a tenant's members and of a user's own invitations."""

from fulcrum.auth.operations import Operation
from fulcrum.auth.scopes import Scope

LIST = Operation("members.list", (Scope.MEMBERS_READ,))
GET = Operation("members.get", (Scope.MEMBERS_READ,))
ADD = Operation("members.add", (Scope.MEMBERS_MANAGE,))
UPDATE_ROLE = Operation("members.update_role", (Scope.MEMBERS_MANAGE,))
REMOVE = Operation("members.remove", (Scope.MEMBERS_MANAGE,))

LIST_INVITATIONS = Operation("invitations.list_mine", (Scope.INVITATIONS_RESPOND,), user_only=True)
ACCEPT_INVITATION = Operation("invitations.accept", (Scope.INVITATIONS_RESPOND,), user_only=True)
DECLINE_INVITATION = Operation("invitations.decline", (Scope.INVITATIONS_RESPOND,), user_only=True)
