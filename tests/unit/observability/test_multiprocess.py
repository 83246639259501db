"""The serving processes' metrics, summed from their files, as the supervisor serves them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fulcrum.observability.multiprocess import ENV, MetricsDirectory

RECORD = """
import os
from fulcrum.observability import metrics as m
m.AUTH_FAILURES.labels(reason="missing").inc({n})
m.RATE_LIMIT_DEGRADED.set({degraded})
m.EVENT_PUBLISH_INFLIGHT.set({n})
print(os.getpid())
"""


@pytest.fixture
def directory() -> Iterator[MetricsDirectory]:
    made = MetricsDirectory()
    yield made
    made.remove()


def record(directory: MetricsDirectory, n: int, degraded: int) -> int:
    """A process that records metrics into ``directory``, as a serving process does."""
    out = subprocess.run(
        [sys.executable, "-c", RECORD.format(n=n, degraded=degraded)],
        env={**os.environ, ENV: str(directory.path)},
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout)


def samples(directory: MetricsDirectory) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(directory.registry()).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_counters_sum_and_gauges_combine_as_declared(directory: MetricsDirectory) -> None:
    record(directory, 2, degraded=0)
    degraded = record(directory, 3, degraded=1)
    found = samples(directory)
    assert found[("fulcrum_auth_failures_total", (("reason", "missing"),))] == 5
    assert found[("fulcrum_event_publish_inflight", ())] == 5  # livesum
    assert found[("fulcrum_rate_limit_degraded", ())] == 1  # livemax
    directory.process_died(degraded)
    found = samples(directory)
    # A dead process's counts stay (counters never go back); its live gauges go.
    assert found[("fulcrum_auth_failures_total", (("reason", "missing"),))] == 5
    assert found[("fulcrum_rate_limit_degraded", ())] == 0
    assert found[("fulcrum_event_publish_inflight", ())] == 2


def test_every_declared_metric_is_described_even_before_a_process_used_it(
    directory: MetricsDirectory,
) -> None:
    text = generate_latest(directory.registry()).decode()
    assert "# TYPE fulcrum_rate_limited_total counter" in text
    assert "# HELP fulcrum_rate_limited_total Requests refused by a rate limit" in text
    assert "process_cpu_seconds_total" not in text  # not the supervisor's own
