"""Simulation: how would a draft policy change the tenant's decisions?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fulcrum.auth.principal import Principal
from fulcrum.engine.compiler import compile_bundle
from fulcrum.engine.model import Action, DecisionRequest, Evaluation, PolicySource
from fulcrum.kit.db import Database
from fulcrum.kit.errors import NotFound
from fulcrum.kit.validation import batch_size
from fulcrum.policies import operations as ops
from fulcrum.policies import repository as policies_repo
from fulcrum.policies.documents import validated_document

DRAFT_ID = "draft"


@dataclass(frozen=True)
class Simulation:
    with_draft: Evaluation
    current: Evaluation


class SimulationService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def simulate(
        self,
        principal: Principal,
        raw: str | bytes | dict[str, Any],
        requests: Sequence[DecisionRequest],
    ) -> list[Simulation]:
        principal.authorize(ops.SIMULATE)
        tenant_id = principal.require_tenant()
        draft = validated_document(raw)
        batch_size(len(requests))
        async with self._db.tenant_tx(tenant_id) as conn:
            active = await policies_repo.active_set(conn)
            names = {
                str(p.policy_id): p.document.get("name")
                for p in (active.policies if active else [])
            }
        if active is None:
            raise NotFound("tenant not found")
        default = Action(active.default_action)
        current_sources = [
            PolicySource(str(p.policy_id), p.version, p.document) for p in active.policies
        ]
        # A draft named like an active policy previews an update of that policy.
        draft_sources = [s for s in current_sources if names[s.policy_id] != draft.name]
        draft_sources.append(PolicySource(DRAFT_ID, 0, draft.document))
        current = compile_bundle(current_sources, default)
        with_draft = compile_bundle(draft_sources, default)
        return [Simulation(with_draft.evaluate(r), current.evaluate(r)) for r in requests]
