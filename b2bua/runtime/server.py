"""Server: binds the listeners, builds the pure switch, runs until a signal.

``--listen udp:127.0.0.1:0`` binds an ephemeral port; the ready file (JSON) then tells
tests and benchmarks which ports were bound, written once the switch can answer.

Signals (docs/operations.md): SIGTERM drains (new INVITEs get 503 with Retry-After, the
calls in progress go on for up to ``[server] drain_timeout`` seconds, then are ended with
BYE on both legs) and exits; a second SIGTERM, or SIGINT, skips the wait. SIGHUP reads
the config file again (:mod:`b2bua.runtime.reload`).
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
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Final

import structlog

from b2bua.call.records import CallRecord
from b2bua.config import Config, ConfigError, ListenAddress, load_config, parse_http_listen
from b2bua.events import Input, StateLoaded, Stopping
from b2bua.ids import SecureIds
from b2bua.registrar.binding import Binding
from b2bua.runtime.driver import Driver
from b2bua.runtime.metrics import Metrics
from b2bua.runtime.panel import PanelFeed, panel_state
from b2bua.runtime.records_api import CallQuery
from b2bua.runtime.reload import ReloadRefusedError, reload_changes
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
#: After the drain: how long the BYEs (and CANCELs) of the calls ended get to be
#: answered before the process goes on stopping (Timer F would take 32 s).
END_CALLS_WAIT: Final = 5.0
DRAIN_POLL: Final = 0.1
#: Call records the live panel shows.
RECENT_CALLS: Final = 20

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
    config_path: Path | None = None
    pid_file: Path | None = None
    metrics: Metrics | None = None
    panel: PanelFeed | None = None
    recent: deque[dict[str, object]] = field(default_factory=lambda: deque(maxlen=RECENT_CALLS))
    reloads: int = 0
    reload_failures: int = 0
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _draining: bool = False
    _hurry: asyncio.Event = field(default_factory=asyncio.Event)
    _reload_task: asyncio.Task[bool] | None = None

    def _feed(self, event: Input) -> None:
        if self.driver is not None:
            self.driver.feed(event)

    # -- the driver's observer: metrics and the live panel

    def received(self, data: bytes) -> None:
        if self.metrics is not None:
            self.metrics.sip_received(data)

    def sent(self, data: bytes) -> None:
        if self.metrics is not None:
            self.metrics.sip_sent(data)

    def changed(self) -> None:
        if self.panel is not None:
            self.panel.changed()

    def _counts(self) -> dict[str, int]:
        switch = self.switch
        relayed, dropped = (0, 0) if self.media is None else self.media.relay_totals()
        return {
            "parse_errors": 0 if switch is None else switch.counters.parse_errors,
            "refused_draining": 0 if switch is None else switch.counters.refused_draining,
            "auth_failures": 0 if switch is None else switch.registrar.guard.failures_total,
            "rtp_relayed": relayed,
            "rtp_dropped": dropped,
            "reloads": self.reloads,
            "reload_failures": self.reload_failures,
        }

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
        settings = switch_settings(config, tuple(self.bound), trunks)
        # Two clocks (ARCHITECTURE.md): timers run on loop.time(); bindings persist
        # wall-clock instants, converted with this offset.
        wall_offset = time.time() - loop.time()
        # A concrete logger, not the lazy proxy: each log call on a proxy builds the bound
        # logger again (about 6 us; 1.9% of the switch's CPU in the profile at 250 calls/s).
        self.switch = Switch(
            settings,
            SecureIds(),
            log.bind(),
            secret=secrets.token_bytes(64),
            wall_offset=wall_offset,
        )
        self.metrics = Metrics(lambda: self._snapshot(loop), self._counts)
        self.panel = PanelFeed(lambda: panel_state(self._snapshot(loop), self.recent))
        self.driver = Driver(self.switch, self, loop, observer=self)
        self.media = MediaHost(
            loop,
            self._on_media_report,
            rtp_timeout=config.media.rtp_timeout or NO_RTP_TIMEOUT,
            recordings=self.voicemail,
            prompts=self.voicemail.prompts,
            confirm_prompt=await self._confirm_prompt(),
        )
        self.recent.extend(self._call_records(CallQuery(limit=RECENT_CALLS)))
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
                metrics=self.metrics,
                panel=self.panel,
                token=config.status.token,
                is_draining=lambda: self._draining,
            )
            await self.status.start(*parse_http_listen(status_listen))
            status_address = self.status.address
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._on_signal, signum)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        if self.pid_file is not None:
            write_atomically(self.pid_file, f"{os.getpid()}\n")
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
            write_atomically(self.ready_file, json.dumps(ready))

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

    def _call_records(self, query: CallQuery) -> list[dict[str, object]]:
        if self.store is None:
            return []
        records = self.store.load_call_records(
            query.limit,
            since=query.since,
            until=query.until,
            number=query.number,
            member=query.member,
        )
        return [_record_dict(record) for record in records]

    # -- signals: stop, drain, reload

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if signum == signal.SIGTERM and not self._stopping.is_set():
            log.info("drain_requested", signal=name)
        else:  # SIGINT, or a second signal: end the calls now (with BYE), then stop
            log.info("stop_requested", signal=name)
            self._hurry.set()
        self._draining = True
        self._stopping.set()

    async def serve(self) -> None:
        await self._stopping.wait()
        if self._draining:
            await self.drain()

    async def drain(self) -> None:
        """New INVITEs get 503 from now on; wait for the calls in progress to end, up to
        ``drain_timeout`` (or a second signal), then end the rest with BYE on both legs
        and wait a bounded time for those to be answered."""
        switch, driver = self.switch, self.driver
        if switch is None or driver is None:
            return
        switch.drain()
        timeout = self.config.server.drain_timeout
        log.info("draining", calls=switch.call_count, drain_timeout=timeout)
        await self._wait_calls(timeout, hurry=True)
        if switch.call_count:
            log.warning("drain_ending_calls", calls=switch.call_count, hurried=self._hurry.is_set())
            driver.run(partial(switch.end_calls, "shutting down"))
            await self._wait_calls(END_CALLS_WAIT, hurry=False)
        log.info("drained", calls_left=switch.call_count)

    async def _wait_calls(self, seconds: float, *, hurry: bool) -> None:
        assert self.switch is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self.switch.call_count and loop.time() < deadline:
            if hurry and self._hurry.is_set():
                return
            await asyncio.sleep(min(DRAIN_POLL, max(0.0, deadline - loop.time())))

    def _on_sighup(self) -> None:
        if self._reload_task is not None and not self._reload_task.done():
            log.warning("config_reload_in_progress")
            return
        self._reload_task = asyncio.get_running_loop().create_task(self.reload())

    async def reload(self) -> bool:
        """Read the config file again and take its live sections for new calls; a file
        with errors, or one that changes a section that needs a restart, is refused with
        every reason logged and the running config stays. True when applied."""
        path = self.config_path
        if path is None or self.switch is None:
            log.warning("config_reload_unavailable", reason="no config file")
            return False
        loop = asyncio.get_running_loop()
        try:
            new = await loop.run_in_executor(None, load_config, path)
            changes = reload_changes(self.config, new)
        except ConfigError as error:
            return self._reload_refused(path, error.lines())
        except ReloadRefusedError as refused:
            return self._reload_refused(path, [f"{path}: {line}" for line in refused.errors])
        settings = switch_settings(new, tuple(self.bound), self.switch.settings.trunks)
        outputs = self.switch.reload(settings, loop.time())
        if self.driver is not None:
            self.driver.carry_out(outputs)
        if self.voicemail is not None:
            before = set(self.voicemail.mailboxes)
            self.voicemail.mailboxes = settings.mailboxes
            for mailbox in settings.mailboxes:
                if mailbox not in before:
                    self.voicemail.changed(mailbox)  # the new box's lamp
        self.config = new
        if self.media is not None and self.media._confirm_prompt is None:
            # A group gained a member who must confirm: make the prompt it will hear
            # (without it the member hears the beep alone).
            try:
                self.media._confirm_prompt = await self._confirm_prompt()
            except Exception:
                log.exception("confirm_prompt_failed")
        self.reloads += 1
        log.info("config_reloaded", path=str(path), changed=changes, calls=self.switch.call_count)
        self.changed()
        return True

    def _reload_refused(self, path: Path, errors: list[str]) -> bool:
        self.reload_failures += 1
        for line in errors:
            log.error("config_reload_error", error=line)
        log.error("config_reload_refused", path=str(path), errors=errors)
        return False

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        if self._reload_task is not None:
            await asyncio.gather(self._reload_task, return_exceptions=True)
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
        for path in (self.ready_file, self.pid_file):
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
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
        if self.metrics is not None:
            self.metrics.call_recorded(record)
        self.recent.appendleft(_record_dict(record))

    def execute_media(self, command: MediaCommand) -> None:
        if self.media is not None:
            self.media.execute(command)


def switch_settings(
    config: Config, listen: tuple[ListenAddress, ...], trunks: Mapping[str, Trunk]
) -> SwitchSettings:
    """The switch's settings from a config, the bound addresses and the resolved trunks."""
    sip = config.sip
    return SwitchSettings(
        listen=listen,
        advertised_address=config.server.advertised_address,
        user_agent=config.server.user_agent,
        timers=TimerSettings(t1=sip.t1, t2=sip.t2, t4=sip.t4),
        limits=ParserLimits(sip.max_message_size, sip.max_headers, sip.max_line_length),
        realm=config.realm,
        extensions=config.extensions,
        registrar=config.registrar,
        security=config.security,
        domain=config.domain,
        numbers=config.numbers,
        calls=config.calls,
        media=config.media,
        groups=config.hunt_groups(),
        mailboxes=config.mailboxes(),
        unsolicited_notify=config.voicemail.unsolicited_notify,
        trunks=trunks,
    )


def _record_dict(record: CallRecord) -> dict[str, object]:
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


def write_atomically(path: Path, text: str) -> None:
    """Write then rename: a reader sees the whole file or none."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


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
    *,
    config_path: Path | None = None,
    pid_file: Path | None = None,
) -> None:
    server = Server(
        config, listen, data_dir, ready_file, status_listen,
        config_path=config_path, pid_file=pid_file,
    )  # fmt: skip
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
    *,
    config_path: Path | None = None,
    pid_file: Path | None = None,
) -> None:
    """Run the server on uvloop when it is installed, else on the stock event loop."""
    loop_factory: Callable[[], asyncio.AbstractEventLoop]
    try:
        import uvloop  # noqa: PLC0415 - optional extra

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(
            run_server(
                config,
                listen,
                data_dir,
                ready_file,
                status_listen,
                config_path=config_path,
                pid_file=pid_file,
            )
        )
