"""The fast canonical JSON is byte-identical to the RFC 8785 reference implementation."""

from __future__ import annotations

import random
from typing import Any

import pytest
import rfc8785

from fulcrum.audit.canonical import canonical_json
from tests.unit.audit.generated import document, text


@pytest.mark.parametrize("seed", range(40))
def test_matches_the_reference_on_generated_documents(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(250):
        value = {"details": document(rng), "seq": rng.randint(1, 10**9), "name": text(rng)}
        assert canonical_json(value) == rfc8785.dumps(value), value


@pytest.mark.parametrize(
    "value",
    [
        {"cost": 0.02, "shadow": [], "matched": True, "policy_version": 3},
        {"b": 1.0, "a": [1, "x", None, False]},
        {"tiny": 1e-7, "huge": 1e21, "neg": -0.0},
        {"unicode": "\u2028\u2029é", "ctl": "\x00\x1f"},
        {"€": 1, "e": 2, "😀": 3},
    ],
)
def test_matches_the_reference_on_edge_cases(value: dict[str, Any]) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_out_of_range_integers_are_refused_like_the_reference() -> None:
    with pytest.raises(ValueError):
        canonical_json({"big": 2**53})
