"""The metrics of N serving processes on one port: prometheus_client's multiprocess mode.

Each serving process is started with ``PROMETHEUS_MULTIPROC_DIR`` naming one directory,
where prometheus_client keeps its values in memory-mapped files (one per process and kind)
instead of in memory. The supervisor, which records no metric itself, serves their sum:
counters and histograms add up across processes, dead ones included, so they never go
backwards when a process is replaced; each gauge combines as its ``multiprocess_mode`` in
``metrics.py`` says. When a process dies its live gauges are dropped (``mark_process_dead``).

The files say nothing of a labelled metric no process has used yet; this collector still
declares it (HELP and TYPE, no sample), as a single process's exposition does, so the
metric names a dashboard or an alert uses are there from the start. Process metrics
(``process_*``, ``python_gc_*``) are not exported in this mode.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from fulcrum.observability import metrics

ENV = "PROMETHEUS_MULTIPROC_DIR"


def declared(module: ModuleType = metrics) -> list[MetricWrapperBase]:
    return [value for value in vars(module).values() if isinstance(value, MetricWrapperBase)]


class ServingMetrics(Collector):
    """The serving processes' metrics, summed from their files, every declared one named."""

    def __init__(self, directory: Path) -> None:
        # prometheus_client's multiprocess module has no annotations.
        self._files = multiprocess.MultiProcessCollector(None, path=str(directory))  # type: ignore[no-untyped-call]
        self._declared = [family for metric in declared() for family in metric.describe()]

    def collect(self) -> Iterable[Metric]:
        files: Iterable[Metric] = self._files.collect()  # type: ignore[no-untyped-call]
        merged = {family.name: family for family in files}
        for family in self._declared:
            yield merged.pop(family.name, family)
        yield from merged.values()


class MetricsDirectory:
    """A fresh directory for one supervisor's processes (old files would be summed in)."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="fulcrum-metrics-"))

    def registry(self) -> CollectorRegistry:
        registry = CollectorRegistry()
        registry.register(ServingMetrics(self.path))
        return registry

    def process_died(self, pid: int) -> None:
        multiprocess.mark_process_dead(pid, str(self.path))  # type: ignore[no-untyped-call]

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
