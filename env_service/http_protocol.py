"""uvicorn HTTP protocols that switch Nagle's algorithm off on every accepted connection.

asyncio sets TCP_NODELAY on accepted sockets only when the listening socket reports
`proto == IPPROTO_TCP`. With `uvicorn.run(..., workers=N)` the workers serve a socket created by
the supervisor and inherited by spawned processes, whose `proto` reads 0, so asyncio leaves
Nagle on. uvicorn writes a response's head and body separately; with Nagle the body then waits
for the client's delayed ACK: every keep-alive request after the first took ~44 ms instead of
~1 ms (bench/env_load.py, docs/BENCHMARKS.md issue 5). Setting the option ourselves fixes it
whatever the socket's origin.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


def set_nodelay(transport: asyncio.BaseTransport) -> bool:
    """Turn TCP_NODELAY on for a TCP transport; False when it is not a TCP socket."""
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        return False
    return True


class _NoDelay(asyncio.Protocol):
    """Mixin for a uvicorn HTTP protocol: TCP_NODELAY before the protocol sees the transport."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        set_nodelay(transport)
        super().connection_made(transport)


class NoDelayH11Protocol(_NoDelay, H11Protocol):
    pass


try:  # httptools is optional (uvicorn[standard]); module-level so spawned workers can unpickle
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - depends on the environment
    NoDelayHttpToolsProtocol: Any = None
else:

    class NoDelayHttpToolsProtocol(_NoDelay, HttpToolsProtocol):  # type: ignore[no-redef]
        pass


def http_protocol(name: str) -> Any:
    """The `http=` value for uvicorn: the no-delay httptools protocol for `httptools` (and for
    `auto` when httptools is installed), else the no-delay h11 one."""
    if name == "httptools" and NoDelayHttpToolsProtocol is None:
        raise SystemExit("--http httptools: httptools is not installed")
    if name in ("auto", "httptools") and NoDelayHttpToolsProtocol is not None:
        return NoDelayHttpToolsProtocol
    return NoDelayH11Protocol
