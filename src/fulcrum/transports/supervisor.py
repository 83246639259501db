"""``fulcrum api`` on every core: a supervisor and N serving processes sharing the ports.

Each serving process is a whole API (both doors, its own connection pools, caches and
background loops) binding the REST and gRPC ports with SO_REUSEPORT, so the kernel spreads
connections over them. What must agree across processes already does without them talking:
rate limits are Redis buckets, bundle swaps follow the NATS hint and the revision poll,
revocation reaches every key cache within its TTL, ``last_used_at`` batches merge with
``greatest``. The supervisor serves ``/metrics`` for all of them (prometheus_client's
multiprocess mode), restarts a process that dies (backing off while one keeps dying) and,
on SIGINT or SIGTERM, stops them all and waits for each.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import shutil
import signal
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from prometheus_client import CollectorRegistry, multiprocess, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

from fulcrum.kit.config import Settings
from fulcrum.kit.logging import configure_logging, get_logger
from fulcrum.transports.serve import serve_api

log = get_logger(__name__)

STOP_SECONDS = 15.0  # a serving process's grace (gRPC's 5 s, then pools) before SIGKILL
_POLL_SECONDS = 0.2
_MAX_BACKOFF_SECONDS = 10.0
_HEALTHY_SECONDS = 30.0  # a process that lived this long resets the backoff


def process_count(settings: Settings) -> int:
    return settings.api_processes or os.cpu_count() or 1


def _serve_one() -> None:
    """A serving process: settings and logging from the inherited environment."""
    settings = Settings()
    configure_logging("api", settings.log_level)
    asyncio.run(serve_api(settings, one_of_many=True))


class Supervisor:
    def __init__(self, settings: Settings, count: int) -> None:
        self._settings = settings
        self._count = count
        self._context = multiprocessing.get_context("spawn")
        self._children: dict[int, BaseProcess] = {}
        self._started: dict[int, float] = {}
        self._backoff: dict[int, float] = {}
        self._stopping = False

    def run(self) -> int:
        metrics_dir = self._metrics_dir()
        # Read by prometheus_client in each serving process (spawned: a fresh interpreter).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._stop)
        self._serve_metrics(metrics_dir)
        try:
            for slot in range(self._count):
                self._start(slot)
            log.info("api.supervising", processes=self._count)
            while not self._stopping:
                self._restart_the_dead()
                time.sleep(_POLL_SECONDS)
        finally:
            self._stop_all()
            shutil.rmtree(metrics_dir, ignore_errors=True)
        return 0

    def _metrics_dir(self) -> Path:
        path = self._settings.home.absolute() / "run" / f"api-metrics-{os.getpid()}"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, mode=0o700)
        return path

    def _serve_metrics(self, metrics_dir: Path) -> None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(metrics_dir))  # type: ignore[no-untyped-call]
        start_http_server(
            self._settings.metrics_port, addr=self._settings.api_host, registry=registry
        )

    def _start(self, slot: int) -> None:
        child = self._context.Process(target=_serve_one, name=f"fulcrum-api-{slot}")
        child.start()
        self._children[slot] = child
        self._started[slot] = time.monotonic()
        log.info("api.process_started", slot=slot, pid=child.pid)

    def _restart_the_dead(self) -> None:
        for slot, child in list(self._children.items()):
            if child.is_alive():
                if time.monotonic() - self._started[slot] > _HEALTHY_SECONDS:
                    self._backoff.pop(slot, None)
                continue
            if child.pid is not None:
                multiprocess.mark_process_dead(child.pid)  # type: ignore[no-untyped-call]
            wait = self._backoff.get(slot, 0.0)
            log.error("api.process_died", slot=slot, pid=child.pid, exitcode=child.exitcode)
            if wait:
                time.sleep(wait)  # one keeps dying at start: do not spin
            self._backoff[slot] = min(max(wait * 2, 0.5), _MAX_BACKOFF_SECONDS)
            if not self._stopping:
                self._start(slot)

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _stop_all(self) -> None:
        for child in self._children.values():
            if child.is_alive() and child.pid is not None:
                os.kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for child in self._children.values():
            child.join(max(0.0, deadline - time.monotonic()))
            if child.is_alive():
                log.error("api.process_killed", pid=child.pid)
                child.kill()
                child.join()
        log.info("api.stopped", processes=len(self._children))


def run_api(settings: Settings) -> int:
    """``fulcrum api``: one serving process in this one, or a supervisor of several."""
    count = process_count(settings)
    if count == 1:
        asyncio.run(serve_api(settings))
        return 0
    return Supervisor(settings, count).run()
