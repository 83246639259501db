"""The serving processes' shared REST socket: several may bind the port, and the
connections it accepts send at once (Nagle off, as on a socket uvicorn binds itself)."""

from __future__ import annotations

import asyncio
import socket

from fulcrum.transports.serve import shared_socket


def test_two_processes_may_bind_the_same_port() -> None:
    first = shared_socket("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = shared_socket("127.0.0.1", port)
    assert second.getsockname()[1] == port
    first.close()
    second.close()


def test_accepted_connections_have_nagle_off() -> None:
    async def accepted_nodelay() -> int:
        listening = shared_socket("127.0.0.1", 0)
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def connected(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(connected, sock=listening)
        _, client = await asyncio.open_connection(*listening.getsockname())
        value = await asyncio.wait_for(seen, 5)
        client.close()
        server.close()
        await server.wait_closed()
        return value

    assert asyncio.run(accepted_nodelay()) == 1
