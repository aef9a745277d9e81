"""The TCP transport opens connections for requests to a peer with no connection named
(a carrier trunk over TCP), over real sockets on 127.0.0.1: what is written before the
connection is up is sent once it is, later writes reuse it, the provider's messages on it
come in with its connection id, a closed connection is reported and the next request
dials again, a refused one loses nothing else, and close() leaves no task."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

from b2bua.events import ConnectionClosed, Input, StreamReceived
from b2bua.runtime.sip_tcp import TcpListener
from b2bua.sip.address import ConnectionId, Peer, Transport
from b2bua.sip.parser import ParserLimits

HOST = "127.0.0.1"
WAIT = 3.0
OPTIONS = (
    b"OPTIONS sip:provider SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK-1\r\n"
    b"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n\r\n"
)


class Provider:
    """A TCP server standing in for the provider: it collects what it receives and can
    write back on the connection."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.arrived = asyncio.Event()
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self._serving: set[asyncio.Task[object]] = set()

    async def start(self) -> tuple[str, int]:
        self.server = await asyncio.start_server(self._serve, HOST, 0)
        host, port = self.server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._serving.add(task)
        self.writers.append(writer)
        while data := await reader.read(65536):
            self.received += data
            self.arrived.set()

    async def wait_for(self, size: int) -> bytes:
        async def enough() -> bytes:
            while len(self.received) < size:
                self.arrived.clear()
                await self.arrived.wait()
            return bytes(self.received)

        return await asyncio.wait_for(enough(), WAIT)

    async def close(self) -> None:
        for writer in self.writers:
            writer.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        if self._serving:
            await asyncio.wait(self._serving, timeout=WAIT)


def run(body: Callable[[], Awaitable[None]]) -> None:
    async def checked() -> None:
        await body()
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(checked())


class Inputs(list[Input]):
    """What the listener feeds the core, with an event set at each."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    def feed(self, event: Input) -> None:
        self.append(event)
        self.changed.set()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        async def watch() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(watch(), WAIT)


def test_a_request_dials_the_provider_and_its_messages_come_back_on_that_connection() -> None:
    async def body() -> None:
        events = Inputs()
        listener = TcpListener(events.feed, ParserLimits(), itertools.count(1))
        await listener.start(HOST, 0)
        provider = Provider()
        host, port = await provider.start()
        peer = Peer(Transport.TCP, host, port)
        try:
            assert listener.send(OPTIONS, peer)  # written before the connection is up
            assert listener.send(b"\r\n\r\n", peer)  # a keep-alive on the same connection
            assert await provider.wait_for(len(OPTIONS) + 4) == OPTIONS + b"\r\n\r\n"
            assert len(provider.writers) == 1  # one connection for both
            # The provider writes a request back on it: it comes in with the connection.
            provider.writers[0].write(OPTIONS)
            await events.wait_until(lambda: any(isinstance(e, StreamReceived) for e in events))
            [received] = [e for e in events if isinstance(e, StreamReceived)]
            assert received.data == OPTIONS
            assert received.peer.address == (host, port)
            assert received.peer.connection is not None
            # Its responses go back on it, by connection id.
            assert listener.send(b"\r\n\r\n", received.peer)
            await provider.wait_for(len(OPTIONS) + 8)
            # The provider drops the connection: reported, and the next request dials again.
            provider.writers[0].close()
            await events.wait_until(lambda: any(isinstance(e, ConnectionClosed) for e in events))
            closed = [e for e in events if isinstance(e, ConnectionClosed)]
            assert closed == [ConnectionClosed(connection=received.peer.connection)]
            assert listener.outbound == {}
            assert listener.send(OPTIONS, peer)
            await provider.wait_for(2 * len(OPTIONS) + 8)
            assert len(provider.writers) == 2
        finally:
            await listener.close()
            await provider.close()

    run(body)


def test_a_refused_connection_is_forgotten_and_the_next_request_dials_again() -> None:
    async def body() -> None:
        events = Inputs()
        listener = TcpListener(events.feed, ParserLimits(), itertools.count(1))
        await listener.start(HOST, 0)
        provider = Provider()
        host, port = await provider.start()
        await provider.close()  # nobody listens there any more
        peer = Peer(Transport.TCP, host, port)
        try:
            assert listener.send(OPTIONS, peer)
            assert listener.outbound != {}
            await asyncio.wait_for(asyncio.gather(*listener.connecting), WAIT)
            assert listener.outbound == {}
            # A response for a connection that is gone is not sent anywhere.
            gone = Peer(Transport.TCP, host, port, ConnectionId(999))
            assert not listener.send(b"SIP/2.0 200 OK\r\n\r\n", gone)
        finally:
            await listener.close()

    run(body)
