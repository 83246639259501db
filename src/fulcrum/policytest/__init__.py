"""Policy tests: YAML suites of decision cases (``cases``), and ``fulcrum policy test``,
which runs them against policy files locally (``runner``). Reads files; the engine it
drives does not."""
