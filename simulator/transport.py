"""Dropping a connection for real: uvicorn HTTP protocols that expose their transport.

ASGI gives an app no way to reset its connection, so the simulator's uvicorn protocol classes
register each connection's transport under its (client, server) address pair, the same tuples
uvicorn puts in the ASGI scope. ``abort_connection(scope)`` then sends a TCP RST (SO_LINGER 0).
"""

import asyncio
import logging
import socket
import struct
from collections.abc import MutableMapping
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)

_Key = tuple[Any, Any]
_TRANSPORTS: dict[_Key, asyncio.BaseTransport] = {}


def _key(client: Any, server: Any) -> _Key:
    return (tuple(client) if client else None, tuple(server) if server else None)


class _Registering:
    """Mixin for a uvicorn HTTP protocol: track the transport of each live connection."""

    client: Any
    server: Any

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle delays
        self._sim_key = _key(self.client, self.server)
        _TRANSPORTS[self._sim_key] = transport

    def connection_lost(self, exc: Exception | None) -> None:
        key = getattr(self, "_sim_key", None)
        if key is not None:
            _TRANSPORTS.pop(key, None)
        super().connection_lost(exc)  # type: ignore[misc]


class ResettableH11Protocol(_Registering, H11Protocol):
    """uvicorn's h11 protocol, abortable by the simulator."""


def protocol_class() -> type[asyncio.Protocol]:
    """The fastest abortable HTTP protocol available (httptools when installed, else h11)."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return ResettableH11Protocol

    class ResettableHttpToolsProtocol(_Registering, HttpToolsProtocol):
        """uvicorn's httptools protocol, abortable by the simulator."""

    return ResettableHttpToolsProtocol


def abort_connection(scope: MutableMapping[str, Any]) -> bool:
    """Reset the TCP connection ``scope`` arrived on; False when it cannot be found."""
    transport = _TRANSPORTS.get(_key(scope.get("client"), scope.get("server")))
    if transport is None:
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:  # pragma: no cover - platform without SO_LINGER
            logger.debug("SO_LINGER unavailable; closing without RST")
    abort = getattr(transport, "abort", None)
    if abort is None:  # pragma: no cover - not a socket transport
        transport.close()
    else:
        abort()
    return True
