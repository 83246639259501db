"""The size estimate the bundle cache bounds its memory by: it grows with what a bundle
holds and stops at what bundles share (types, modules, code, globals)."""

from __future__ import annotations

from fulcrum.engine import Action, PolicySource, compile_bundle
from fulcrum.engine.footprint import bundle_footprint
from tests.unit.engine.policies import leaf, policy, rule


def bundle_of(rules: int, *, regex: bool = False) -> int:
    when = leaf("tool.args.q", "regex", r"(?i)drop\s+table") if regex else None
    documents = [
        policy(
            *(
                rule(
                    f"r{n}",
                    target={"tools": [f"svc{n}.get", f"svc{n}.*"]},
                    **({"when": when} if when else {}),
                )
                for n in range(rules)
            ),
            name=f"p{rules}",
        )
    ]
    bundle = compile_bundle(
        [PolicySource(f"policy-{i}", 1, d) for i, d in enumerate(documents)], Action.DENY
    )
    return bundle_footprint(bundle)


def test_the_estimate_grows_with_the_rules_a_bundle_holds() -> None:
    small, large = bundle_of(2), bundle_of(100)
    assert large > 10 * small  # fifty times the rules
    assert 500 * 100 < large < 10_000 * 100  # hundreds of bytes to a few KiB per rule


def test_the_walk_stops_at_what_bundles_share() -> None:
    # A walk into module globals, types or code objects would count megabytes.
    assert bundle_of(1) < 32 * 1024


def test_an_re2_pattern_counts_its_native_memory() -> None:
    assert bundle_of(1, regex=True) - bundle_of(1) > 12 * 1024


def test_the_same_documents_give_the_same_estimate() -> None:
    assert bundle_of(30) == bundle_of(30)
