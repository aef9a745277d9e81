"""Server: binds the listeners, builds the pure switch, runs until SIGINT/SIGTERM.

``--listen udp:127.0.0.1:0`` binds an ephemeral port; the ready file (JSON) then tells
tests and benchmarks which ports were bound, written once the switch can answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import itertools
import json
import os
import secrets
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Final

import structlog

from b2bua.call.records import CallRecord
from b2bua.config import Config, ListenAddress, parse_http_listen
from b2bua.events import Input, StateLoaded, Stopping
from b2bua.ids import SecureIds
from b2bua.registrar.binding import Binding
from b2bua.runtime.driver import Driver
from b2bua.runtime.sip_tcp import TcpListener
from b2bua.runtime.sip_udp import UdpEndpoint
from b2bua.runtime.status_api import StatusServer
from b2bua.runtime.store import BindingStore
from b2bua.runtime.voicemail import PROMPTS_DIRECTORY, VoicemailService
from b2bua.sip.address import ConnectionId, Peer, Transport
from b2bua.sip.parser import ParserLimits
from b2bua.switch import Switch, SwitchSettings
from b2bua.transaction.timers import TimerSettings
from b2bua.trunk.settings import Trunk
from media.commands import MediaCommand, MediaReport, MessageRecorded
from media.host import MediaHost
from media.prompts import CONFIRM_FILE, CONFIRM_TEXT, default_greeting

#: The media host's RTP timeout when the config turns it off (0): about 30 years.
NO_RTP_TIMEOUT: Final = 1e9
#: How long a clean stop waits for the trunks' un-REGISTER (a provider that does not
#: answer must not hold the stop: Timer F would take 32 s).
UNREGISTER_WAIT: Final = 2.0
UNREGISTER_POLL: Final = 0.02

log = structlog.get_logger(__name__)


@dataclass
class Server:
    """The running softswitch: transports + driver + switch."""

    config: Config
    listen: list[ListenAddress]
    data_dir: Path
    ready_file: Path | None = None
    status_listen: str | None = None
    udp: list[UdpEndpoint] = field(default_factory=list)
    tcp: list[TcpListener] = field(default_factory=list)
    bound: list[ListenAddress] = field(default_factory=list)
    driver: Driver | None = None
    switch: Switch | None = None
    store: BindingStore | None = None
    status: StatusServer | None = None
    media: MediaHost | None = None
    voicemail: VoicemailService | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def _feed(self, event: Input) -> None:
        if self.driver is not None:
            self.driver.feed(event)

    def _on_media_report(self, report: MediaReport) -> None:
        if isinstance(report, MessageRecorded) and self.voicemail is not None:
            self.voicemail.recorded(report)  # mail it, and the lamp's counts first
        self._feed(report)

    async def _confirm_prompt(self) -> str | None:
        """The prompt a member with ``confirm = true`` hears (made once, in the executor),
        or None when no member must confirm."""
        groups = self.config.groups.values()
        if not any(member.confirm for group in groups for member in group.members):
            return None
        folder = self.data_dir / PROMPTS_DIRECTORY
        made = partial(default_greeting, folder, text=CONFIRM_TEXT, name=CONFIRM_FILE)
        return str(await asyncio.get_running_loop().run_in_executor(None, made))

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        sip = self.config.sip
        limits = ParserLimits(sip.max_message_size, sip.max_headers, sip.max_line_length)
        connection_ids = itertools.count(1)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = BindingStore.open(self.data_dir)
        mailboxes = self.config.mailboxes()
        self.voicemail = await VoicemailService.start(
            self.data_dir, self.config.voicemail, mailboxes, self._feed
        )
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
        config = self.config
        trunks = await resolve_trunks(config, loop)
        settings = SwitchSettings(
            listen=tuple(self.bound),
            advertised_address=config.server.advertised_address,
            user_agent=config.server.user_agent,
            timers=TimerSettings(t1=sip.t1, t2=sip.t2, t4=sip.t4),
            limits=limits,
            realm=config.realm,
            extensions=config.extensions,
            registrar=config.registrar,
            security=config.security,
            domain=config.domain,
            numbers=config.numbers,
            calls=config.calls,
            media=config.media,
            groups=config.hunt_groups(),
            mailboxes=mailboxes,
            unsolicited_notify=config.voicemail.unsolicited_notify,
            trunks=trunks,
        )
        # Two clocks (ARCHITECTURE.md): timers run on loop.time(); bindings persist
        # wall-clock instants, converted with this offset.
        wall_offset = time.time() - loop.time()
        self.switch = Switch(
            settings, SecureIds(), log, secret=secrets.token_bytes(64), wall_offset=wall_offset
        )
        self.driver = Driver(self.switch, self, loop)
        self.media = MediaHost(
            loop,
            self._on_media_report,
            rtp_timeout=config.media.rtp_timeout or NO_RTP_TIMEOUT,
            recordings=self.voicemail,
            prompts=self.voicemail.prompts,
            confirm_prompt=await self._confirm_prompt(),
        )
        bindings = self.store.load_bindings(time.time())
        self.driver.feed(StateLoaded(bindings=tuple(bindings)))
        self.voicemail.announce()
        status_address = None
        status_listen = self.status_listen or (
            config.status.listen if config.status.enabled else None
        )
        if status_listen is not None:
            self.status = StatusServer(
                lambda: self._snapshot(loop),
                self._call_records,
                voicemail=self.voicemail.store,
                on_voicemail_change=self.voicemail.changed,
            )
            await self.status.start(*parse_http_listen(status_listen))
            status_address = self.status.address
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._on_signal, signum)
        tune_garbage_collector()
        overlap = ephemeral_overlap(config.media.rtp_port_min, config.media.rtp_port_max)
        if overlap is not None:
            log.warning(
                "rtp_range_overlaps_ephemeral_ports",
                rtp_ports=f"{config.media.rtp_port_min}-{config.media.rtp_port_max}",
                ephemeral_ports=f"{overlap[0]}-{overlap[1]}",
                hint="a call whose port another program took first gets 503; "
                "move [media] rtp_port_min/max below or above the ephemeral range",
            )
        log.info(
            "server_started",
            listen=[str(b) for b in self.bound],
            pid=os.getpid(),
            realm=config.realm,
            extensions=len(config.extensions),
        )
        if self.ready_file is not None:
            ready = {
                "pid": os.getpid(),
                "listen": [str(b) for b in self.bound],
                "status": None
                if status_address is None
                else f"{status_address[0]}:{status_address[1]}",
            }
            tmp = self.ready_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(ready))
            tmp.replace(self.ready_file)

    def _snapshot(self, loop: asyncio.AbstractEventLoop) -> dict[str, object]:
        assert self.switch is not None
        state = self.switch.snapshot(loop.time())
        if self.media is not None:
            state["media"] = {
                "sessions": self.media.sessions,
                "sockets": self.media.ports_in_use,
            }
        # The status request itself runs in a task; anything beyond the server's own
        # long-lived tasks is a leak.
        state["tasks"] = len(asyncio.all_tasks(loop))
        return state

    def _call_records(self, limit: int) -> list[dict[str, object]]:
        if self.store is None:
            return []
        return [
            {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
            for record in self.store.load_call_records(limit)
        ]

    def _on_signal(self, signum: int) -> None:
        log.info("stop_requested", signal=signal.Signals(signum).name)
        self._stopping.set()

    async def serve(self) -> None:
        await self._stopping.wait()

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if self.driver is not None and self.switch is not None:
            # Un-REGISTER from the trunks while the sockets are still open.
            self.driver.feed(Stopping())
            for _ in range(round(UNREGISTER_WAIT / UNREGISTER_POLL)):
                if self.switch.trunks_stopped:
                    break
                await asyncio.sleep(UNREGISTER_POLL)
        if self.media is not None:
            # Recordings in progress are finished (and reported) before the switch stops.
            await self.media.close()
        if self.driver is not None:
            self.driver.close()
        if self.voicemail is not None:
            await self.voicemail.close()
        for endpoint in self.udp:
            await endpoint.close()
        for listener in self.tcp:
            await listener.close()
        if self.status is not None:
            await self.status.stop()
        if self.store is not None:
            # Flushing waits on the writer thread: not on the event loop.
            await loop.run_in_executor(None, self.store.close)
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
        # A response whose connection is gone: RFC 3261 section 18.2.2 would have us open
        # a new one to the sent-by; the response is lost, and the client's transaction
        # timers take over. (Requests with no connection named open one: sip_tcp.)
        log.info("tcp_connection_gone", peer=str(peer))

    def close_connection(self, connection: ConnectionId) -> None:
        for listener in self.tcp:
            listener.close_connection(connection)

    def save_binding(self, binding: Binding) -> None:
        if self.store is not None:
            self.store.save(binding)

    def delete_binding(self, aor: str, contact: str) -> None:
        if self.store is not None:
            self.store.delete(aor, contact)

    def save_call_record(self, record: CallRecord) -> None:
        if self.store is not None:
            self.store.save_call_record(record)

    def execute_media(self, command: MediaCommand) -> None:
        if self.media is not None:
            self.media.execute(command)


async def resolve_trunks(config: Config, loop: asyncio.AbstractEventLoop) -> dict[str, Trunk]:
    """Each trunk with its provider's host resolved (IPv4 first). A trunk whose host does
    not resolve is left out with an error in the log: the rest of the switch runs."""
    trunks: dict[str, Trunk] = {}
    for name, settings in config.trunks.items():
        try:
            infos = await loop.getaddrinfo(
                settings.host, settings.port, type=socket.SOCK_DGRAM, proto=socket.IPPROTO_UDP
            )
        except OSError as error:
            log.error("trunk_unresolved", trunk=name, host=settings.host, error=str(error))
            continue
        addresses = sorted({str(info[4][0]) for info in infos}, key=lambda a: (":" in a, a))
        trunks[name] = Trunk.resolved(name, settings, addresses)
        log.info("trunk_resolved", trunk=name, host=settings.host, addresses=addresses)
    return trunks


EPHEMERAL_RANGE_FILE: Final = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_overlap(
    low: int, high: int, source: Path = EPHEMERAL_RANGE_FILE
) -> tuple[int, int] | None:
    """The kernel's ephemeral port range (where a socket bound to port 0 lands) when it
    overlaps ``low..high``; ``None`` when it does not or cannot be read (not Linux)."""
    try:
        first, last = (int(part) for part in source.read_text().split())
    except (OSError, ValueError):
        return None
    return (first, last) if low <= last and first <= high else None


def tune_garbage_collector() -> None:
    """Under load tens of thousands of transactions live at once (Timer J keeps each
    for 32 s); CPython's default thresholds then spend much of the time in collections
    of objects that hold no cycles. Move what exists at start out of the collector's
    sight and collect the young generation less often (profiled with py-spy under a
    REGISTER load; see benchmarks/README.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 100)


#: Allocations between young-generation collections (CPython's default is 700).
GC_THRESHOLD: Final = 20_000


async def run_server(
    config: Config,
    listen: list[ListenAddress],
    data_dir: Path,
    ready_file: Path | None,
    status_listen: str | None = None,
) -> None:
    server = Server(config, listen, data_dir, ready_file, status_listen)
    try:
        await server.start()
        await server.serve()
    finally:
        await server.stop()


def run(
    config: Config,
    listen: list[ListenAddress],
    data_dir: Path,
    ready_file: Path | None,
    status_listen: str | None = None,
) -> None:
    """Run the server on uvloop when it is installed, else on the stock event loop."""
    loop_factory: Callable[[], asyncio.AbstractEventLoop]
    try:
        import uvloop  # noqa: PLC0415 - optional extra

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(run_server(config, listen, data_dir, ready_file, status_listen))
