"""Operations: each thing a caller can ask of Fulcrum, with the scopes it needs.

Each domain declares its operations once, in its ``operations`` module. The REST route
and the gRPC method that serve an operation name it (their gates check its scopes before
reading the request), and the service method checks it again with
:meth:`Principal.authorize`, so all three require the same scopes by construction;
tests/security/test_operations.py holds them to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from fulcrum.auth.scopes import Scope


@dataclass(frozen=True)
class Operation:
    name: str  # "<domain>.<verb>", as logged and documented
    scopes: tuple[Scope, ...]
    # For a signed-in user outside any tenant (their own invitations): the doors
    # authenticate the user alone, and no other operation accepts that principal.
    user_only: bool = False
    # Evaluates many requests in one call: one rate-limit token per item, charged all at
    # once after the number of items is checked against the batch limit.
    per_item: bool = False

    def __post_init__(self) -> None:
        if not self.scopes:
            raise ValueError(f"operation {self.name} must declare at least one scope")
