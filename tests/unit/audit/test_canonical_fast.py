"""The fast canonical JSON is byte-identical to the RFC 8785 reference implementation."""

from __future__ import annotations

import random
from typing import Any

import pytest
import rfc8785

from fulcrum.audit.canonical import canonical_json

ALPHABET = 'aZ09 _-."\\/\n\t\r\b\f\x01\x1f\x7fé€😀\u2028'


def text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))


def number(rng: random.Random) -> float | int:
    choice = rng.randint(0, 6)
    if choice == 0:
        return rng.randint(-(2**53) + 1, 2**53 - 1)
    if choice == 1:
        return float(rng.randint(-(10**15), 10**15))
    if choice == 2:
        return rng.uniform(-1e3, 1e3)
    if choice == 3:
        return rng.uniform(-1, 1) * 10 ** rng.randint(-12, 20)
    if choice == 4:
        return round(rng.uniform(0, 100), rng.randint(0, 6))
    if choice == 5:
        return rng.choice(
            [0.0, -0.0, 1e-4, 9.999e-5, 1e16, 1e15 + 0.5, 5e-324, 1.7976931348623157e308]
        )
    return rng.randint(-1000, 1000)


def document(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randint(0, 7 if depth < 4 else 4)
    if kind == 0:
        return text(rng)
    if kind == 1:
        return number(rng)
    if kind == 2:
        return rng.choice([True, False, None])
    if kind in (3, 4):
        return number(rng)
    if kind == 5:
        return [document(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = [text(rng) or "k" for _ in range(rng.randint(0, 5))]
    if rng.random() < 0.2:
        keys.append(rng.choice(["é", "€", "😀", "Z", "a\u00ff"]))
    return {key: document(rng, depth + 1) for key in keys}


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
