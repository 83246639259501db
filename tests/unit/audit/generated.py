"""Random JSON documents and text for the canonical-encoding tests (seeded, reproducible).

The alphabet holds what RFC 8785 escapes or orders specially: quotes, backslashes, control
characters, DEL, non-ASCII, astral characters and U+2028; the numbers include the float
edge cases where ECMAScript and Python print differently.
"""

from __future__ import annotations

import random
from typing import Any

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
