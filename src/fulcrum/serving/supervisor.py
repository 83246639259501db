"""A supervisor of N copies of one serving process: it starts them, starts one again when it
dies (with the backoff of :mod:`fulcrum.serving.restarts`), gives up when they cannot start
at all, and stops them together.

It does no request work and holds no connection to a data store: it only spawns, waits and
signals, so a bug in the serving code cannot take it down. Each process runs in its own
session, so a terminal's Ctrl-C reaches the supervisor alone, which then stops every process
in order (and a process never mistakes that Ctrl-C for a reason to exit on its own). Each
process's standard error passes through the supervisor, which keeps its last lines to name
the problem when it gives up; standard output (the JSON logs) is inherited, untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from fulcrum.kit.logging import get_logger
from fulcrum.serving import lifeline
from fulcrum.serving.restarts import RestartPolicy, Restarts

log = get_logger(__name__)

Command = Callable[[int, int], list[str]]
"""(slot, the process's lifeline fd) -> its argv."""

LAST_LINES = 5


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit status {returncode}"


@dataclass
class _Child:
    slot: int
    process: asyncio.subprocess.Process
    end: socket.socket
    started: float
    serving: bool = False
    last_lines: deque[str] = field(default_factory=lambda: deque(maxlen=LAST_LINES))


class Supervisor:
    def __init__(
        self,
        size: int,
        command: Command,
        *,
        env: Mapping[str, str],
        pass_fds: tuple[int, ...] = (),
        policy: RestartPolicy | None = None,
        stop_grace: float = 10.0,
        on_exit: Callable[[int], None] = lambda pid: None,
    ) -> None:
        self._size = size
        self._command = command
        self._env = dict(env)
        self._pass_fds = pass_fds
        self._restarts = Restarts(policy or RestartPolicy())
        self._stop_grace = stop_grace
        self._on_exit = on_exit
        self._children: dict[int, _Child] = {}
        self._stop = asyncio.Event()
        self._gave_up: str | None = None

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> str | None:
        """Serve until :meth:`stop` (None), or until the processes cannot start (why)."""
        slots = [asyncio.create_task(self._keep(slot)) for slot in range(self._size)]
        await self._stop.wait()
        log.info("supervisor.stopping", processes=len(self._children))
        for child in list(self._children.values()):
            _signal(child, signal.SIGTERM)
        _, late = await asyncio.wait(slots, timeout=self._stop_grace)
        for child in list(self._children.values()):
            log.warning("supervisor.process_killed", slot=child.slot, pid=child.process.pid)
            _signal(child, signal.SIGKILL)
        await asyncio.gather(*late, return_exceptions=True)
        return self._gave_up

    async def _keep(self, slot: int) -> None:
        try:
            while not self._stop.is_set():
                child = await self._start(slot)
                if self._stop.is_set():  # started while the others were told to stop
                    _signal(child, signal.SIGTERM)
                returncode = await self._watch(child)
                if self._stop.is_set():
                    return
                delay = self._restarts.exited(
                    slot,
                    served=child.serving,
                    uptime=time.monotonic() - child.started,
                    others_serving=sum(c.serving for c in self._children.values()),
                )
                status = describe_exit(returncode)
                if delay is None:
                    self._give_up(child, status)
                    return
                log.warning(
                    "supervisor.process_exited",
                    slot=slot,
                    pid=child.process.pid,
                    status=status,
                    served=child.serving,
                    restart_in_seconds=delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
        except Exception as exc:
            log.exception("supervisor.failed", slot=slot)
            self._gave_up = f"the supervisor failed: {type(exc).__name__}: {exc}"
            self._stop.set()

    async def _start(self, slot: int) -> _Child:
        mine, theirs = lifeline.pair()
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command(slot, theirs.fileno()),
                env=self._env,
                pass_fds=(*self._pass_fds, theirs.fileno()),
                stdin=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        child = _Child(slot, process, mine, time.monotonic())
        self._children[slot] = child
        log.info("supervisor.process_started", slot=slot, pid=process.pid)
        return child

    async def _watch(self, child: _Child) -> int:
        """Wait for the process to exit, relaying its standard error meanwhile."""
        ready = asyncio.create_task(self._mark_serving(child))
        relay = asyncio.create_task(_relay(child))
        try:
            returncode = await child.process.wait()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(relay), 1.0)  # its last words
        finally:
            ready.cancel()
            relay.cancel()
            child.end.close()
            del self._children[child.slot]
        self._on_exit(child.process.pid)
        return returncode

    async def _mark_serving(self, child: _Child) -> None:
        if await lifeline.wait_ready(child.end):
            child.serving = True
            log.info("supervisor.process_serving", slot=child.slot, pid=child.process.pid)

    def _give_up(self, child: _Child, status: str) -> None:
        failures = self._restarts.start_failures(child.slot)
        last = " | ".join(child.last_lines) or "nothing"
        self._gave_up = (
            f"the serving processes cannot start: the process of slot {child.slot} exited "
            f"before serving {failures} times in a row ({status}); its last output: {last}"
        )
        log.error("supervisor.gave_up", reason=self._gave_up)
        self._stop.set()


def _signal(child: _Child, sig: signal.Signals) -> None:
    if child.process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            child.process.send_signal(sig)


async def _relay(child: _Child) -> None:
    stream = child.process.stderr
    assert stream is not None
    while line := await stream.readline():
        sys.stderr.buffer.write(line)
        sys.stderr.flush()
        text = line.decode(errors="replace").strip()
        if text:
            child.last_lines.append(text)
