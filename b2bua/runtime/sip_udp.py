"""UDP transport: one datagram endpoint per listen address."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Final, cast

import structlog

from b2bua.events import DatagramReceived, Input
from b2bua.sip.address import Peer, Transport

log = structlog.get_logger(__name__)

#: What we ask for; the kernel grants at most twice net.core.rmem_max.
RECEIVE_BUFFER: Final = 4 * 1024 * 1024


class UdpEndpoint(asyncio.DatagramProtocol):
    """Turns datagrams into :class:`DatagramReceived` inputs and sends datagrams."""

    def __init__(self, feed: Callable[[Input], None]) -> None:
        self._feed = feed
        self.transport: asyncio.DatagramTransport | None = None
        self.closed = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio's, so no isinstance check here.
        self.transport = cast(asyncio.DatagramTransport, transport)
        self._enlarge_receive_buffer()

    def _enlarge_receive_buffer(self) -> None:
        """A burst (a registration storm, a flood of junk) must queue, not be dropped: ask
        for a large receive buffer. Linux caps it at net.core.rmem_max (doubled)."""
        assert self.transport is not None
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            return
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            size = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        except OSError as exc:
            log.warning("udp_receive_buffer_not_set", error=str(exc))
            return
        log.debug("udp_receive_buffer", bytes=size)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        host, port = str(addr[0]), int(str(addr[1]))
        self._feed(DatagramReceived(data=data, peer=Peer(Transport.UDP, host, port)))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the transaction timers deal with loss.
        log.debug("udp_error", error=str(exc))

    def send(self, data: bytes, peer: Peer) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        try:
            self.transport.sendto(data, (peer.host, peer.port))
        except OSError as exc:
            log.warning("udp_send_failed", peer=str(peer), error=str(exc))

    @property
    def local_address(self) -> tuple[str, int]:
        assert self.transport is not None
        sockname = self.transport.get_extra_info("sockname")
        return str(sockname[0]), int(sockname[1])

    async def close(self) -> None:
        """Close the socket and wait until it is released."""
        if self.transport is not None:
            self.transport.close()
            await asyncio.wait_for(self.closed.wait(), 5)
