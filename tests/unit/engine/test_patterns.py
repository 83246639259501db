"""Globs and regexes run on RE2: same answers as fnmatch for globs, linear time for regexes."""

from __future__ import annotations

import fnmatch
import time
from pathlib import Path

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from fulcrum.engine.patterns import (
    PatternError,
    _options,
    compile_glob,
    compile_regex,
    glob_to_regex,
)

GLOBS = [
    "shell.*",
    "*",
    "a?c",
    "[abc]x",
    "[!abc]x",
    "[]]x",
    "[!]]x",
    "[a-c]*",
    "x[",
    "a*b*c",
    "*.[ch]",
    "é?",
    "a.b",
    "(a)+",
    "a\\b",
    "db.[q]uery",
    "$^",
    "a**b",
    "[-a]",
    "a{1}",
]
NAMES = [
    "shell.exec",
    "shell",
    "abc",
    "axc",
    "ac",
    "ax",
    "bx",
    "dx",
    "]x",
    "x[",
    "aXbYc",
    "f.c",
    "f.h",
    "f.py",
    "éa",
    "a.b",
    "axb",
    "(a)+",
    "a\\b",
    "db.query",
    "$^",
    "ab",
    "-a",
    "a{1}",
    "",
    "a\nb",
]


@pytest.mark.parametrize("glob", GLOBS)
def test_globs_match_what_fnmatch_matches(glob: str) -> None:
    compiled = compile_glob(glob)
    for name in NAMES:
        expected = fnmatch.fnmatchcase(name, glob)  # the oracle; tests only, never tenant input
        assert (compiled.fullmatch(name) is not None) is expected, (glob, name)


def test_glob_translation_is_re2_syntax() -> None:
    assert glob_to_regex("shell.*") == "shell\\..*"
    assert glob_to_regex("a***b") == "a.*b"
    assert glob_to_regex("[!a-c]") == "[^a-c]"


def test_invalid_patterns_raise_pattern_error_with_re2_reason() -> None:
    with pytest.raises(PatternError, match="missing \\)"):
        compile_regex("(a")
    with pytest.raises(PatternError, match="invalid character class range"):
        compile_glob("[z-a]")


def test_pathological_regex_runs_in_linear_time() -> None:
    # (a+)+$ backtracks exponentially in Python's re on "aaa…b"; RE2 has no backtracking, so
    # the search is one linear pass even over 100,000 characters.
    regex = compile_regex("(a+)+$")
    text = "a" * 100_000 + "b"
    started = time.perf_counter()
    assert regex.search(text) is None
    assert regex.search(text[:-1]) is not None
    assert time.perf_counter() - started < 1.0


def test_the_engine_never_imports_pythons_regex_modules() -> None:
    engine = Path(__file__).parents[3] / "src" / "fulcrum" / "engine"
    for source in engine.glob("*.py"):
        for line in source.read_text().splitlines():
            words = line.split()
            assert words[:2] not in (["import", "re"], ["import", "fnmatch"]), source.name
            assert words[:2] not in (["from", "re"], ["from", "fnmatch"]), source.name


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.text(alphabet=st.sampled_from("ab.-_/é\n$^()\\{}+|"), max_size=6),
    stars=st.integers(min_value=1, max_value=3),
    texts=st.lists(st.text(alphabet=st.sampled_from("ab.-_/é\n$^()\\{}+|"), max_size=8)),
)
def test_a_literal_and_trailing_star_glob_matches_as_re2_does(
    prefix: str, stars: int, texts: list[str]
) -> None:
    glob = prefix + "*" * stars
    fast = compile_glob(glob)
    assert not isinstance(fast, re2._Regexp)  # the prefix test, no RE2 program
    slow = re2.compile(
        glob_to_regex(glob), _options(case_insensitive=False, dot_matches_newline=True)
    )
    for text in [*texts, prefix, prefix + "x", prefix[:-1]]:
        assert (fast.fullmatch(text) is not None) is (slow.fullmatch(text) is not None), text
        assert (fast.search(text) is not None) is (slow.search(text) is not None), text
