"""TCP transport: a listener whose connections each get a :class:`StreamFramer`.

Messages are framed by Content-Length; a framing error (missing or bad Content-Length,
an oversized header block) closes that connection, since the stream cannot be
re-synchronised. A CRLF CRLF keep-alive is answered with CRLF (RFC 5626 section 3.5.1).

Connections are accepted (phones) or opened (a carrier trunk over TCP): a request the
switch sends to a peer with no connection named goes on the open connection to that
address, or on a new one (what is written before it is up waits for it). The provider
sends its requests back on that connection, as on an accepted one.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import cast

import structlog

from b2bua.events import ConnectionClosed, Input, StreamReceived
from b2bua.sip.address import ConnectionId, Peer, Transport
from b2bua.sip.errors import ParseError
from b2bua.sip.parser import ParserLimits, StreamFramer

log = structlog.get_logger(__name__)


class TcpConnection(asyncio.Protocol):
    def __init__(
        self,
        listener: TcpListener,
        connection: ConnectionId,
        *,
        remote: tuple[str, int] | None = None,
    ) -> None:
        self._listener = listener
        self.connection = connection
        self._framer = StreamFramer(listener.limits)
        self.transport: asyncio.Transport | None = None
        self.peer: Peer | None = None
        self.remote = remote  # set for a connection we open: the address we dial
        self.pending: list[bytes] = []  # written before the connection is up

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio's, so no isinstance check here.
        self.transport = cast(asyncio.Transport, transport)
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = Peer(Transport.TCP, str(host), int(port), self.connection)
        self._listener.connections[self.connection] = self
        pending, self.pending = self.pending, []
        for data in pending:
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None
        assert self.transport is not None
        try:
            messages = self._framer.feed(data)
        except ParseError as exc:
            log.info("tcp_framing_error", peer=str(self.peer), reason=exc.reason)
            self.transport.close()
            return
        for message in messages:
            if message == b"\r\n\r\n":
                self.transport.write(b"\r\n")
                continue
            self._listener.feed(StreamReceived(data=message, peer=self.peer))

    def connection_lost(self, exc: Exception | None) -> None:
        self._listener.connections.pop(self.connection, None)
        self._listener.forget_outbound(self)
        self._listener.feed(ConnectionClosed(connection=self.connection))

    def send(self, data: bytes) -> None:
        if self.transport is None:
            self.pending.append(data)
        elif not self.transport.is_closing():
            self.transport.write(data)


class TcpListener:
    """Accepts connections; keeps them by :class:`ConnectionId` so responses go back on
    the connection their request came in on (RFC 3261 section 18.2.2)."""

    def __init__(
        self, feed: Callable[[Input], None], limits: ParserLimits, ids: itertools.count[int]
    ) -> None:
        self.feed = feed
        self.limits = limits
        self._ids = ids
        self.connections: dict[ConnectionId, TcpConnection] = {}
        self.server: asyncio.Server | None = None
        # Connections we opened (or are opening), by the address dialled.
        self.outbound: dict[tuple[str, int], TcpConnection] = {}
        self.connecting: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: TcpConnection(self, ConnectionId(next(self._ids))),
            host,
            port,
            reuse_address=True,
        )

    @property
    def local_address(self) -> tuple[str, int]:
        assert self.server is not None
        sockname = self.server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    def send(self, data: bytes, peer: Peer) -> bool:
        """Write ``data`` on ``peer``'s connection. A peer with no connection named (a
        request to a trunk's provider) gets the connection open to its address, or a new
        one; a named connection that is gone loses the message (the response to a phone
        that hung up its connection: the client's transaction timers take over)."""
        if peer.connection is None:
            self._dial(peer.address).send(data)
            return True
        connection = self.connections.get(peer.connection)
        if connection is None:
            return False
        connection.send(data)
        return True

    def _dial(self, address: tuple[str, int]) -> TcpConnection:
        connection = self.outbound.get(address)
        if connection is not None:
            return connection
        connection = TcpConnection(self, ConnectionId(next(self._ids)), remote=address)
        self.outbound[address] = connection
        task = asyncio.get_running_loop().create_task(self._connect(connection, address))
        self.connecting.add(task)
        task.add_done_callback(self.connecting.discard)
        return connection

    async def _connect(self, connection: TcpConnection, address: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: connection, address[0], address[1])
        except OSError as exc:
            log.warning("tcp_connect_failed", address=f"{address[0]}:{address[1]}", error=str(exc))
            self.forget_outbound(connection)  # the next request dials again
        else:
            log.info("tcp_connected", address=f"{address[0]}:{address[1]}")

    def forget_outbound(self, connection: TcpConnection) -> None:
        if connection.remote is not None and self.outbound.get(connection.remote) is connection:
            del self.outbound[connection.remote]

    def close_connection(self, connection: ConnectionId) -> None:
        conn = self.connections.get(connection)
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.connecting):
            task.cancel()
        if self.connecting:
            await asyncio.gather(*self.connecting, return_exceptions=True)
        for conn in list(self.connections.values()):
            if conn.transport is not None:
                conn.transport.abort()
        if self.server is not None:
            await self.server.wait_closed()
