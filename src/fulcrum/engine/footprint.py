"""How much memory a compiled bundle holds, estimated once when it is built.

The estimate is the deep size of the bundle's own Python objects (``sys.getsizeof`` of each
object reachable from it, each counted once) times the allocator's slack, plus, for every
RE2 pattern among them, the native memory RE2 allocates outside Python's view. The walk
stops at what bundles share rather than own: types, modules, code objects, a function's
globals, builtins and enum members. Objects shared with other bundles all the same (an
interned string, an RE2 pattern from re2's cache) are counted in each bundle that reaches
them, so the estimate errs high. benchmarks/tenants_bench.py prints it beside the API's RSS.
"""

from __future__ import annotations

import gc
import sys
import types
from enum import Enum

import re2

from fulcrum.engine.bundle import Bundle

__all__ = ["bundle_footprint"]

# Measured with 1,000 bundles of tenants_bench.py's 20 policies (100 rules), each having
# answered 50 decisions: RSS grew by 192 KiB per bundle, of which the walk counts 140 KiB of
# Python objects and 2 RE2 patterns; the rest is pymalloc's slack (partly used pools and
# arenas) and the patterns' native memory.
_ALLOCATOR_SLACK = 1.25

# Native memory of one compiled RE2 pattern, calibrated on the engine's kinds of regex:
# "(?i)drop\s+table|truncate" (27 instructions), a secret detector "(?i)(password|...)\s*[:=]"
# (54) and a longer one (136). After compiling 5,000-10,000 distinct ones of a kind, RSS grew
# by 3.9, 8.3 and 13.9 KiB per pattern; once each had also searched three to five texts (its
# DFA then holds some states), by 9.1, 19.7 and 18.2 KiB. The formula gives 14.6, 17.2 and
# 25.1 KiB. A pattern matched against many distinct inputs grows its DFA cache further, up
# to RE2's ``max_mem`` budget; that growth is not counted. Globs of the usual shape ("db.*")
# are prefix tests, with no RE2 program (engine.patterns).
_RE2_BASE_BYTES = 12 * 1024
_RE2_BYTES_PER_INSTRUCTION = 100

_SHARED = (
    type,
    types.ModuleType,
    types.CodeType,
    types.BuiltinFunctionType,
    types.WrapperDescriptorType,
    types.MethodDescriptorType,
    Enum,
    bool,
)


def bundle_footprint(bundle: Bundle) -> int:
    """Estimated bytes ``bundle`` holds (see the module's docstring for what is counted)."""
    python, native = _walk(bundle)
    return int(python * _ALLOCATOR_SLACK) + native


def _walk(root: object) -> tuple[int, int]:
    """Bytes of the Python objects reachable from ``root``, and of its RE2 patterns."""
    seen: set[int] = set()
    pending: list[object] = [root]
    total = native = 0
    while pending:
        obj = pending.pop()
        if id(obj) in seen or obj is None or isinstance(obj, _SHARED):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, types.FunctionType):
            # Its closure and defaults are the bundle's; its code and globals are the module's.
            pending.extend(obj.__closure__ or ())
            pending.extend(obj.__defaults__ or ())
            pending.extend((obj.__kwdefaults__ or {}).values())
            continue
        if isinstance(obj, types.MethodType):
            pending.append(obj.__self__)
            pending.append(obj.__func__)
            continue
        if isinstance(obj, re2._Regexp):
            native += _RE2_BASE_BYTES + _RE2_BYTES_PER_INSTRUCTION * obj.programsize
        pending.extend(gc.get_referents(obj))
    return total, native
