"""TCP transport: a listener whose connections each get a :class:`StreamFramer`.

Messages are framed by Content-Length; a framing error (missing or bad Content-Length,
an oversized header block) closes that connection, since the stream cannot be
re-synchronised. A CRLF CRLF keep-alive is answered with CRLF (RFC 5626 section 3.5.1).

Connections are accepted (phones) or opened (a carrier trunk over TCP): a request the
switch sends to a peer with no connection named goes on the open connection to that
address, or on a new one (what is written before it is up waits for it). The provider
sends its requests back on that connection, as on an accepted one.

A dial that fails (the provider restarting: nothing listens for a moment) is tried again,
0.1 s after the first failure and doubling up to 1 s, for ``redial_window`` seconds
(default 30, within a non-INVITE transaction's 64*T1 with the default T1), with what
was written meanwhile waiting for it: the REGISTER a trunk sends at once when its
connection drops reaches the provider as soon as it listens again, instead of being lost
until the transaction times out (no transport error reaches the transaction layer). After
the window the connection is forgotten with what it held, and the next request dials anew.
A dialled connection that closes before the provider has sent anything on it (accepted
into the backlog of a provider that was shutting down) is dialled again within the same
window, with everything written on it sent again: only our own requests and keep-alives
went on it, so what is sent again is a retransmission.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Final, cast

import structlog

from b2bua.events import ConnectionClosed, Input, StreamReceived
from b2bua.sip.address import ConnectionId, Peer, Transport
from b2bua.sip.errors import ParseError
from b2bua.sip.parser import ParserLimits, StreamFramer

log = structlog.get_logger(__name__)

REDIAL_WINDOW: Final = 30.0
"""Seconds a failed dial is tried again for, holding what was written meanwhile."""
REDIAL_FIRST: Final = 0.1
REDIAL_MAX: Final = 1.0


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
        # A dialled connection: everything written on it until the peer first sends
        # something (None then, and for accepted connections), and when to stop dialling.
        self.unanswered: list[bytes] | None = [] if remote is not None else None
        self.give_up_at = 0.0

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
        self.unanswered = None  # the peer is there: what we wrote arrived
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
        if self.unanswered:
            self._listener.redial(self, self.unanswered)

    def send(self, data: bytes) -> None:
        if self.unanswered is not None:
            if asyncio.get_running_loop().time() > self.give_up_at:
                self.unanswered = None  # too late to dial again: stop keeping it
            else:
                self.unanswered.append(data)
        if self.transport is None:
            self.pending.append(data)
        elif not self.transport.is_closing():
            self.transport.write(data)


class TcpListener:
    """Accepts connections; keeps them by :class:`ConnectionId` so responses go back on
    the connection their request came in on (RFC 3261 section 18.2.2)."""

    def __init__(
        self,
        feed: Callable[[Input], None],
        limits: ParserLimits,
        ids: itertools.count[int],
        *,
        redial_window: float = REDIAL_WINDOW,
    ) -> None:
        self.feed = feed
        self.limits = limits
        self._ids = ids
        self.redial_window = redial_window
        self.connections: dict[ConnectionId, TcpConnection] = {}
        self.server: asyncio.Server | None = None
        # Connections we opened (or are opening), by the address dialled.
        self.outbound: dict[tuple[str, int], TcpConnection] = {}
        self.connecting: set[asyncio.Task[None]] = set()
        self._closing = False

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

    def _dial(self, address: tuple[str, int], give_up_at: float | None = None) -> TcpConnection:
        connection = self.outbound.get(address)
        if connection is not None:
            return connection
        loop = asyncio.get_running_loop()
        connection = TcpConnection(self, ConnectionId(next(self._ids)), remote=address)
        connection.give_up_at = (
            loop.time() + self.redial_window if give_up_at is None else give_up_at
        )
        self.outbound[address] = connection
        task = loop.create_task(self._connect(connection, address))
        self.connecting.add(task)
        task.add_done_callback(self.connecting.discard)
        return connection

    def redial(self, lost: TcpConnection, written: list[bytes]) -> None:
        """``lost``, a dialled connection, closed before the peer sent anything: dial
        again (within its window) and send ``written`` again."""
        assert lost.remote is not None
        if self._closing or asyncio.get_running_loop().time() > lost.give_up_at:
            return
        log.info(
            "tcp_redial_unanswered",
            address=f"{lost.remote[0]}:{lost.remote[1]}",
            messages=len(written),
        )
        connection = self._dial(lost.remote, lost.give_up_at)
        for data in written:
            connection.send(data)

    async def _connect(self, connection: TcpConnection, address: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        where = f"{address[0]}:{address[1]}"
        give_up_at = connection.give_up_at
        delay = REDIAL_FIRST
        attempts = 0
        while True:
            attempts += 1
            try:
                await loop.create_connection(lambda: connection, address[0], address[1])
            except OSError as exc:
                if loop.time() + delay > give_up_at:
                    log.warning(
                        "tcp_connect_failed", address=where, error=str(exc), attempts=attempts
                    )
                    self.forget_outbound(connection)  # the next request dials again
                    return
                if attempts == 1:
                    log.info("tcp_connect_retrying", address=where, error=str(exc))
                await asyncio.sleep(delay)
                delay = min(2 * delay, REDIAL_MAX)
            else:
                log.info("tcp_connected", address=where, attempts=attempts)
                return

    def forget_outbound(self, connection: TcpConnection) -> None:
        if connection.remote is not None and self.outbound.get(connection.remote) is connection:
            del self.outbound[connection.remote]

    def close_connection(self, connection: ConnectionId) -> None:
        conn = self.connections.get(connection)
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    async def close(self) -> None:
        self._closing = True
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
