"""TCP_NODELAY on accepted connections whatever the listening socket's origin: a socket whose
`proto` reads 0 (as in uvicorn's spawned workers) gets no TCP_NODELAY from asyncio, and our
protocol sets it."""

from __future__ import annotations

import asyncio
import socket

from env_service.http_protocol import (
    NoDelayH11Protocol,
    NoDelayHttpToolsProtocol,
    http_protocol,
    set_nodelay,
)


async def _accepted_nodelay(fix: bool) -> int:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0)  # proto 0, as in workers
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            if fix:
                assert set_nodelay(transport)
            sock = transport.get_extra_info("socket")
            seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
    port = listener.getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await asyncio.wait_for(seen, 10)
    finally:
        writer.close()
        server.close()
        await server.wait_closed()


def test_asyncio_leaves_nagle_on_for_proto_zero_sockets_and_set_nodelay_fixes_it():
    assert socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0).proto == 0
    assert asyncio.run(_accepted_nodelay(fix=False)) == 0  # the cause
    assert asyncio.run(_accepted_nodelay(fix=True)) != 0  # the fix


def test_serve_uses_the_no_delay_protocols():
    assert http_protocol("h11") is NoDelayH11Protocol
    assert http_protocol("auto") in (NoDelayH11Protocol, NoDelayHttpToolsProtocol)


def test_in_process_env_service_uses_the_no_delay_protocol():
    """`ensure_env_service` binds its own (proto 0) socket: its server must use the no-delay
    protocol, or every keep-alive tool call of a flow waits for a delayed ACK."""
    from env_service.serving import server_config

    config = server_config(object())
    assert config.http in (NoDelayH11Protocol, NoDelayHttpToolsProtocol)
