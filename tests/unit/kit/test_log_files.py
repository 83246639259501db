"""Where logs go: JSON lines on stdout by default (what container runtimes collect), or a
file that rotates by size. Each case runs in its own process, as the servers do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LOG_LINES = """
import sys
from pathlib import Path
from fulcrum.kit.logging import configure_logging, get_logger
file = Path(sys.argv[1]) if len(sys.argv) > 1 else None
configure_logging("api", file=file, max_bytes=20_000, backups=2)
log = get_logger("fulcrum.access")
for n in range(2_000):
    log.info("request", n=n, route="/v1/decisions", authorization="Bearer fk_secretsecretsecret1")
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LOG_LINES, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_logs_are_json_lines_on_stdout_by_default() -> None:
    done = run()
    assert done.stderr == ""
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 2_000
    assert lines[-1]["n"] == 1_999 and lines[-1]["service"] == "api"
    assert lines[-1]["authorization"] == "[REDACTED]"


def test_a_log_file_rotates_by_size_and_keeps_its_backups(tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    done = run(str(log))
    assert done.stdout == "" and done.stderr == ""
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["api.log", "api.log.1", "api.log.2"]
    for path in tmp_path.iterdir():
        assert path.stat().st_size <= 20_000
    # The newest lines are in api.log, the ones before them in api.log.1, in order.
    newest = [json.loads(line)["n"] for line in log.read_text().splitlines()]
    older = [json.loads(line)["n"] for line in (tmp_path / "api.log.1").read_text().splitlines()]
    assert newest[-1] == 1_999
    assert older[-1] + 1 == newest[0]
    assert "fk_secret" not in log.read_text()
