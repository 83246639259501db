"""Size limits on tenant-written policies. They bound validation, compilation and evaluation
cost, so one tenant's policy cannot slow down the server for everyone."""

from __future__ import annotations

MAX_DOCUMENT_BYTES = 256 * 1024
MAX_NAME_CHARS = 100
MAX_DESCRIPTION_CHARS = 2000
MAX_REASON_CHARS = 500
MAX_RULE_ID_CHARS = 64
MAX_RULES_PER_POLICY = 200
MAX_RULES_PER_BUNDLE = 5000
MAX_PRIORITY = 1000
MAX_CONDITION_DEPTH = 8  # the `when` node is level 1, a leaf inside `all` is level 2
MAX_PATTERN_CHARS = 1024  # regexes, globs and target entries (which may be globs)
MAX_STRING_CHARS = 4096
MAX_LIST_ITEMS = 1000
MAX_ECHO_CHARS = 64  # error messages never quote more than this much of the input
