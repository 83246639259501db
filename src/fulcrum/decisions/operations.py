"""What can be asked of the decision path."""

from fulcrum.auth.operations import Operation
from fulcrum.auth.scopes import Scope

EVALUATE = Operation("decisions.evaluate", (Scope.DECISIONS_EVALUATE,))
EVALUATE_BATCH = Operation("decisions.evaluate_batch", (Scope.DECISIONS_EVALUATE,), per_item=True)
