"""How much memory a compiled bundle holds, estimated once when it is built.

The estimate is the deep size of the bundle's own Python objects (``sys.getsizeof`` of each
object reachable from it, each counted once) plus, for every RE2 pattern among them, the
native memory RE2 allocates outside Python's view. The walk stops at what bundles share
rather than own: types, modules, code objects, a function's globals, builtins and enum
members. Objects shared with other bundles all the same (an interned string, an RE2 pattern
from re2's cache) are counted in each bundle that reaches them, so the estimate errs high.
It does not count allocator slack (free space left in pymalloc arenas): compare it with the
process's RSS (benchmarks/tenants_bench.py prints both).
"""

from __future__ import annotations

import gc
import sys
import types
from enum import Enum

import re2

from fulcrum.engine.bundle import Bundle

__all__ = ["bundle_footprint", "deep_size"]

# Native memory of one compiled RE2 pattern, calibrated on this engine's kinds of pattern (a
# glob like "svc1\.reports\..*", 24 instructions; a regex like "(?i)drop\s+table|truncate",
# 27; a secret detector of 136): RSS grew by 3.1, 3.9 and 13.9 KiB per pattern after
# compiling 10,000 distinct ones of a kind, and by 6.0, 9.1 and 18.2 KiB once each had also
# matched five texts (its DFA then holds a few states). The formula gives 6.0, 6.2 and
# 14.6 KiB. A pattern matched against many distinct inputs grows its DFA cache further, up
# to RE2's ``max_mem`` budget; that growth is not counted. Identical patterns of several
# tenants may share one RE2 object (re2's own cache of 128): each bundle counts it.
_RE2_BASE_BYTES = 4096
_RE2_BYTES_PER_INSTRUCTION = 80

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
    return deep_size(bundle)


def deep_size(root: object) -> int:
    seen: set[int] = set()
    pending: list[object] = [root]
    total = 0
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
            total += _RE2_BASE_BYTES + _RE2_BYTES_PER_INSTRUCTION * obj.programsize
        pending.extend(gc.get_referents(obj))
    return total
