"""Hostile raw documents are refused before the schema sees them."""

from __future__ import annotations

import json
import time

import pytest

from fulcrum.engine.limits import MAX_DOCUMENT_BYTES
from fulcrum.engine.schema import parse_policy
from fulcrum.kit.errors import InvalidArgument
from tests.unit.engine.policies import policy


def refusal(raw: str | bytes | dict[str, object]) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        parse_policy(raw)
    return caught.value


def test_yaml_that_is_not_a_mapping() -> None:
    error = refusal("- a\n- b\n")
    assert error.field is None
    assert error.message == "expected a mapping, got a list"


def test_size_is_checked_before_parsing() -> None:
    # Unparseable on purpose: the size refusal must come first.
    oversized = "name: [" + "x" * MAX_DOCUMENT_BYTES
    assert "larger than 262144 bytes" in refusal(oversized).message
    assert "larger than" in refusal(oversized.encode()).message


def test_size_counts_utf8_bytes_not_characters() -> None:
    text = "name: p\ndescription: " + "é" * (MAX_DOCUMENT_BYTES // 2) + "\n"
    assert len(text) < MAX_DOCUMENT_BYTES < len(text.encode())
    assert "larger than" in refusal(text).message


def test_decoded_mappings_obey_the_size_limit_too() -> None:
    assert "larger than" in refusal(policy(description="x" * MAX_DOCUMENT_BYTES)).message


def test_yaml_alias_bombs_are_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    started = time.perf_counter()
    error = refusal("\n".join(lines) + "\nname: *a9\nrules: []\n")
    assert time.perf_counter() - started < 1
    assert "aliases" in error.message


def test_duplicate_keys_are_refused_in_yaml_and_json() -> None:
    yaml_text = "name: p\nrules:\n  - id: r\n    action: allow\n    action: deny\n    reason: x\n"
    assert refusal(yaml_text).message == "duplicate key 'action' at line 5"
    json_text = '{"name": "p", "name": "q", "rules": []}'
    assert refusal(json_text).message == "duplicate key 'name'"


def test_invalid_utf8() -> None:
    assert refusal(b"name: \xff\xfe").message == "the policy document must be UTF-8 text"


def test_invalid_yaml_names_the_line_without_echoing_input() -> None:
    error = refusal("name: p\nrules: [\n  {id: " + "x" * 5000 + "\n")
    assert error.message.startswith("invalid YAML at line")
    assert len(error.message) < 150


def test_deep_nesting_is_refused_not_crashed() -> None:
    assert "nested too deeply" in refusal("[" * 100_000 + "]" * 100_000).message


def test_yaml_and_json_forms_agree() -> None:
    document = policy()
    assert parse_policy(json.dumps(document)) == parse_policy(document)
