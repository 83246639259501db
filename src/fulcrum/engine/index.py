"""Which rules can apply to a tool, found without looking at the others.

Rules targeting exact tool names sit in a dict. For every exact name the index precomputes the
full candidate list (its rules, the glob-targeted rules whose glob matches the name, and the
untargeted rules), already sorted, so a known tool costs one dict lookup however many rules
the bundle holds. Only a tool no rule names exactly pays for a pass over the distinct globs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fulcrum.engine.compiled import CompiledRule
from fulcrum.engine.patterns import Pattern, compile_glob, is_glob

SortKey = Callable[[CompiledRule], Any]


class ToolIndex:
    def __init__(
        self, targeted: Iterable[tuple[CompiledRule, tuple[str, ...] | None]], order: SortKey
    ) -> None:
        self._order = order
        exact: dict[str, list[CompiledRule]] = {}
        by_glob: dict[str, list[CompiledRule]] = {}
        untargeted: list[CompiledRule] = []
        for rule, tools in targeted:
            if tools is None:
                untargeted.append(rule)
                continue
            for tool in tools:
                (by_glob if is_glob(tool) else exact).setdefault(tool, []).append(rule)
        self._globs: tuple[tuple[Pattern, tuple[CompiledRule, ...]], ...] = tuple(
            (compile_glob(glob), tuple(rules)) for glob, rules in by_glob.items()
        )
        self._untargeted = tuple(untargeted)
        self._fallback = self._merge(())
        self._by_tool = {
            tool: self._merge([*rules, *self._glob_rules(tool)]) for tool, rules in exact.items()
        }

    def candidates(self, tool_name: str) -> tuple[CompiledRule, ...]:
        """Every rule whose tool target admits ``tool_name``, in the index's order."""
        known = self._by_tool.get(tool_name)
        if known is not None:
            return known
        if not self._globs:
            return self._fallback
        matched = self._glob_rules(tool_name)
        return self._merge(matched) if matched else self._fallback

    def _glob_rules(self, tool_name: str) -> list[CompiledRule]:
        return [
            rule
            for glob, rules in self._globs
            if glob.fullmatch(tool_name) is not None
            for rule in rules
        ]

    def _merge(self, rules: Iterable[CompiledRule]) -> tuple[CompiledRule, ...]:
        # A rule listing several matching entries ("db.query" and "db.*") appears once.
        unique = {id(rule): rule for rule in (*rules, *self._untargeted)}
        return tuple(sorted(unique.values(), key=self._order))
