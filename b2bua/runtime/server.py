"""Server: binds the listeners, builds the pure switch, runs until SIGINT/SIGTERM.

``--listen udp:127.0.0.1:0`` binds an ephemeral port; the ready file (JSON) then tells
tests and benchmarks which ports were bound, written once the switch can answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from b2bua.config import Config, ListenAddress
from b2bua.events import Input
from b2bua.ids import SecureIds
from b2bua.runtime.driver import Driver
from b2bua.runtime.sip_tcp import TcpListener
from b2bua.runtime.sip_udp import UdpEndpoint
from b2bua.sip.address import ConnectionId, Peer, Transport
from b2bua.sip.parser import ParserLimits
from b2bua.switch import Switch, SwitchSettings
from b2bua.transaction.timers import TimerSettings

log = structlog.get_logger(__name__)


@dataclass
class Server:
    """The running softswitch: transports + driver + switch."""

    config: Config
    listen: list[ListenAddress]
    data_dir: Path
    ready_file: Path | None = None
    udp: list[UdpEndpoint] = field(default_factory=list)
    tcp: list[TcpListener] = field(default_factory=list)
    bound: list[ListenAddress] = field(default_factory=list)
    driver: Driver | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def _feed(self, event: Input) -> None:
        if self.driver is not None:
            self.driver.feed(event)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        sip = self.config.sip
        limits = ParserLimits(sip.max_message_size, sip.max_headers, sip.max_line_length)
        connection_ids = itertools.count(1)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for address in self.listen:
            if address.transport is Transport.UDP:
                _, endpoint = await loop.create_datagram_endpoint(
                    lambda: UdpEndpoint(self._feed), local_addr=(address.host, address.port)
                )
                self.udp.append(endpoint)
                host, port = endpoint.local_address
            else:
                listener = TcpListener(self._feed, limits, connection_ids)
                await listener.start(address.host, address.port)
                self.tcp.append(listener)
                host, port = listener.local_address
            self.bound.append(ListenAddress(address.transport, host, port))
        settings = SwitchSettings(
            listen=tuple(self.bound),
            advertised_address=self.config.server.advertised_address,
            user_agent=self.config.server.user_agent,
            timers=TimerSettings(t1=sip.t1, t2=sip.t2, t4=sip.t4),
            limits=limits,
        )
        switch = Switch(settings, SecureIds(), log)
        self.driver = Driver(switch, self, loop)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._on_signal, signum)
        log.info("server_started", listen=[str(b) for b in self.bound], pid=os.getpid())
        if self.ready_file is not None:
            tmp = self.ready_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"pid": os.getpid(), "listen": [str(b) for b in self.bound]}))
            tmp.replace(self.ready_file)

    def _on_signal(self, signum: int) -> None:
        log.info("stop_requested", signal=signal.Signals(signum).name)
        self._stopping.set()

    async def serve(self) -> None:
        await self._stopping.wait()

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if self.driver is not None:
            self.driver.close()
        for endpoint in self.udp:
            await endpoint.close()
        for listener in self.tcp:
            await listener.close()
        if self.ready_file is not None:
            with contextlib.suppress(FileNotFoundError):
                self.ready_file.unlink()
        log.info("server_stopped")

    # -- Transports (called by the driver)

    def send_datagram(self, data: bytes, peer: Peer) -> None:
        family_v6 = ":" in peer.host
        for endpoint, bound in zip(
            self.udp, (b for b in self.bound if b.transport is Transport.UDP), strict=False
        ):
            if (":" in bound.host) == family_v6:
                endpoint.send(data, peer)
                return
        log.warning("no_udp_socket_for_peer", peer=str(peer))

    def send_stream(self, data: bytes, peer: Peer) -> None:
        for listener in self.tcp:
            if listener.send(data, peer):
                return
        # RFC 3261 section 18.2.2 would have us open a new connection to the sent-by;
        # outbound TCP comes with the trunks. Until then the response is lost, and the
        # client's transaction timers take over.
        log.info("tcp_connection_gone", peer=str(peer))

    def close_connection(self, connection: ConnectionId) -> None:
        for listener in self.tcp:
            listener.close_connection(connection)


async def run_server(
    config: Config, listen: list[ListenAddress], data_dir: Path, ready_file: Path | None
) -> None:
    server = Server(config, listen, data_dir, ready_file)
    try:
        await server.start()
        await server.serve()
    finally:
        await server.stop()


def run(
    config: Config, listen: list[ListenAddress], data_dir: Path, ready_file: Path | None
) -> None:
    """Run the server on uvloop when it is installed, else on the stock event loop."""
    loop_factory: Callable[[], asyncio.AbstractEventLoop]
    try:
        import uvloop  # noqa: PLC0415 - optional extra

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(run_server(config, listen, data_dir, ready_file))
