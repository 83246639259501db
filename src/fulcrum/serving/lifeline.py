"""The channel between a supervisor and one serving process: one end of a socket pair each.

The serving process writes ``READY`` once it serves, which is how the supervisor tells a
process that cannot start from one that crashed later. The supervisor writes nothing: its
end closes only when it exits, however it exits (a SIGKILL included), so the serving
process reads end-of-file then and stops instead of serving on as an orphan.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

READY = b"ready\n"


def pair() -> tuple[socket.socket, socket.socket]:
    """(the supervisor's end, the serving process's end)."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


async def wait_ready(end: socket.socket) -> bool:
    """True once the process said it serves; False if its end closed first (it exited)."""
    end.setblocking(False)
    loop = asyncio.get_running_loop()
    received = b""
    while len(received) < len(READY):
        try:
            chunk = await loop.sock_recv(end, len(READY) - len(received))
        except OSError:
            return False
        if not chunk:
            return False
        received += chunk
    return received == READY


class Lifeline:
    """The serving process's end."""

    def __init__(self, fd: int) -> None:
        self._end = socket.socket(fileno=fd)

    def serving(self) -> None:
        # A supervisor already gone is not an error here: on_lost stops the process.
        with contextlib.suppress(OSError):
            self._end.sendall(READY)

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on the running loop) when the supervisor's end closes."""
        loop = asyncio.get_running_loop()
        self._end.setblocking(False)
        fd = self._end.fileno()

        def readable() -> None:
            try:
                data = self._end.recv(64)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(fd)
                callback()

        loop.add_reader(fd, readable)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            asyncio.get_running_loop().remove_reader(self._end.fileno())
        self._end.close()
