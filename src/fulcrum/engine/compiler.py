"""Compile a tenant's active policies into a ``Bundle``, once per policy change.

Documents are validated again here: a stored document is trusted no more than one arriving
over the API, and a bad one fails compilation (the caller then fails closed) rather than
evaluating in some unintended way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from fulcrum.engine.bundle import Bundle
from fulcrum.engine.compiled import CompiledRule, compile_rule
from fulcrum.engine.document import PolicyDocument
from fulcrum.engine.index import ToolIndex
from fulcrum.engine.limits import MAX_RULES_PER_BUNDLE
from fulcrum.engine.model import Action, Mode, PolicySource
from fulcrum.engine.schema import parse_policy
from fulcrum.kit.errors import InvalidArgument

__all__ = ["Bundle", "compile_bundle"]


@dataclass(frozen=True)
class _Policy:
    policy_id: str
    version: int
    document: PolicyDocument


def compile_bundle(policies: Sequence[PolicySource], default_action: Action) -> Bundle:
    parsed = _parse_all(policies)
    content_hash = _bundle_hash(parsed, default_action)
    enforced: list[tuple[CompiledRule, tuple[str, ...] | None]] = []
    shadowed: list[tuple[CompiledRule, tuple[str, ...] | None]] = []
    ranked = sorted(parsed, key=lambda p: (-p.document.priority, p.policy_id))
    for policy_rank, policy in enumerate(ranked):
        into = shadowed if policy.document.mode is Mode.SHADOW else enforced
        for rule_index, rule in enumerate(policy.document.rules):
            compiled = compile_rule(
                rule,
                policy_id=policy.policy_id,
                policy_version=policy.version,
                policy_rank=policy_rank,
                rule_index=rule_index,
                bundle_hash=content_hash,
            )
            into.append((compiled, rule.target.tools))
    return Bundle(
        hash=content_hash,
        default_action=default_action,
        rule_count=len(enforced) + len(shadowed),
        enforced=ToolIndex(enforced, order=lambda rule: rule.severity_first),
        shadowed=ToolIndex(shadowed, order=lambda rule: rule.policy_first) if shadowed else None,
    )


def _parse_all(sources: Sequence[PolicySource]) -> list[_Policy]:
    parsed: list[_Policy] = []
    seen: set[str] = set()
    rule_count = 0
    for source in sources:
        if source.policy_id in seen:
            raise InvalidArgument(f"duplicate policy id {source.policy_id[:64]!r}", field="bundle")
        seen.add(source.policy_id)
        try:
            document = parse_policy(source.document)
        except InvalidArgument as exc:
            where = f"policies[{source.policy_id[:64]}]"
            field = f"{where}.{exc.field}" if exc.field else where
            raise InvalidArgument(exc.message, field=field) from exc
        rule_count += len(document.rules)
        if rule_count > MAX_RULES_PER_BUNDLE:
            raise InvalidArgument(
                f"a tenant's active policies may hold at most {MAX_RULES_PER_BUNDLE} rules",
                field="bundle",
            )
        parsed.append(_Policy(source.policy_id, source.version, document))
    return parsed


def _bundle_hash(policies: Sequence[_Policy], default_action: Action) -> str:
    """sha256 of canonical JSON: policies sorted by id, each as (id, version, canonical
    document), plus the default action. Input order and document formatting do not matter."""
    payload = {
        "default_action": default_action.value,
        "policies": [
            {"policy_id": p.policy_id, "version": p.version, "document": p.document.to_dict()}
            for p in sorted(policies, key=lambda p: p.policy_id)
        ],
    }
    canonical = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
