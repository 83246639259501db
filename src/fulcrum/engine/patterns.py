"""Tenant-written regexes and globs, compiled with RE2 only.

RE2 matches in time linear in the input, so no pattern (``(a+)+$`` and friends) can stall an
evaluation. Python's ``re`` backtracks and must never see a tenant pattern; that also rules out
``fnmatch``, so globs are translated here (``fnmatch.translate`` emits ``\\Z``, which RE2 lacks).
"""

from __future__ import annotations

import string
from typing import Protocol

import re2

_GLOB_CHARS = frozenset("*?[")
_PUNCTUATION = frozenset(string.punctuation)


class Pattern(Protocol):
    def search(self, text: str) -> object | None: ...

    def fullmatch(self, text: str) -> object | None: ...


class PatternError(ValueError):
    """The pattern does not compile; the message is RE2's reason."""


def compile_regex(pattern: str, *, case_insensitive: bool = False) -> Pattern:
    return _compile(pattern, case_insensitive=case_insensitive, dot_matches_newline=False)


def compile_glob(glob: str, *, case_insensitive: bool = False) -> Pattern:
    """A glob compiled for ``fullmatch``; ``*`` crosses dots, slashes and newlines."""
    prefix = glob.rstrip("*")
    if prefix != glob and not is_glob(prefix) and not case_insensitive:
        return _Prefix(prefix)
    return _compile(
        glob_to_regex(glob), case_insensitive=case_insensitive, dot_matches_newline=True
    )


class _Prefix:
    """A glob that is a literal and a trailing ``*`` (``"db.*"``, the usual shape of a tool
    target): its full match is a prefix test, with no RE2 program to build, hold (a few KiB
    each, per tenant) or call (the tool index tests every glob against every exact tool name
    of a bundle when it is compiled)."""

    __slots__ = ("_prefix",)

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix

    def fullmatch(self, text: str) -> object | None:
        return True if text.startswith(self._prefix) else None

    def search(self, text: str) -> object | None:
        return True if self._prefix in text else None


def is_glob(entry: str) -> bool:
    return not _GLOB_CHARS.isdisjoint(entry)


def glob_to_regex(glob: str) -> str:
    """Translate shell-style ``*``, ``?``, ``[abc]``, ``[!abc]`` (as fnmatch does) to RE2 syntax.

    An unclosed ``[`` is a literal, as in fnmatch.
    """
    out: list[str] = []
    i = 0
    while i < len(glob):
        char = glob[i]
        i += 1
        if char == "*":
            if not out or out[-1] != ".*":  # runs of * mean the same; keep the regex small
                out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[" and (end := _class_end(glob, i)) >= 0:
            out.append(_char_class(glob[i:end]))
            i = end + 1
        else:
            out.append(_literal(char))
    return "".join(out)


def _class_end(glob: str, start: int) -> int:
    """Index of the ``]`` closing a class opened just before ``start``, or -1."""
    i = start
    if i < len(glob) and glob[i] == "!":
        i += 1
    if i < len(glob) and glob[i] == "]":  # a leading ] is a member, not the end
        i += 1
    end = glob.find("]", i)
    return end


def _char_class(body: str) -> str:
    negate = body.startswith("!")
    members = body[1:] if negate else body
    escaped = "".join("-" if char == "-" else _literal(char) for char in members)
    return f"[{'^' if negate else ''}{escaped}]"


def _literal(char: str) -> str:
    # RE2 accepts a backslash before ASCII punctuation only (not before "é" or a space).
    return "\\" + char if char in _PUNCTUATION else char


def _compile(regex: str, *, case_insensitive: bool, dot_matches_newline: bool) -> Pattern:
    try:
        compiled: Pattern = re2.compile(
            regex,
            _options(case_insensitive=case_insensitive, dot_matches_newline=dot_matches_newline),
        )
    except re2.error as exc:
        raise PatternError(_reason(exc)) from None
    return compiled


def _options(*, case_insensitive: bool, dot_matches_newline: bool) -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a bad tenant pattern is a validation error, not a log line
    options.case_sensitive = not case_insensitive
    options.dot_nl = dot_matches_newline
    return options


def _reason(exc: Exception) -> str:
    reason = exc.args[0] if exc.args else "does not compile"
    return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
