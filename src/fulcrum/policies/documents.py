"""Validating a policy document for storage: the engine's parser, flattened for the service."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fulcrum.engine.schema import parse_policy
from fulcrum.kit.errors import InvalidArgument


@dataclass(frozen=True)
class ValidatedDocument:
    name: str
    mode: str
    priority: int
    document: dict[str, Any]  # canonical form, as stored in policy_versions


def validated_document(raw: str | bytes | Mapping[str, Any]) -> ValidatedDocument:
    try:
        parsed = parse_policy(raw)
    except InvalidArgument as exc:
        if exc.field is None:  # size, syntax or shape of the whole document
            raise InvalidArgument(exc.message, field="document") from exc
        raise
    return ValidatedDocument(parsed.name, parsed.mode.value, parsed.priority, parsed.to_dict())
