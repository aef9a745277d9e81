"""MediaHost: the asyncio shell around :class:`~media.relay.RelaySession` (the only media
module with sockets, the event loop and the clock; ARCHITECTURE.md, "The contract").

Commands in (:data:`~media.commands.MediaCommand`, through :meth:`MediaHost.execute`),
reports out (:data:`~media.commands.MediaReport`, through the ``report`` callback):

* ``OpenSession`` binds four UDP sockets on ``local_host``: RTP and RTCP (RFC 3550 §11,
  port + 1) for side A and for side B. Binding is synchronous, so a busy port is known at
  once: whatever was bound for the session is closed again and ``PortUnavailable`` (the
  even RTP port of the pair that failed) goes back, for ``PortPool.reserve`` and a retry.
* ``UpdateRemote`` / ``SwitchLegB`` go to the session.
* ``CloseSession`` closes the four sockets (the ports are free when it returns) and
  reports the final ``SessionStats``; unknown sessions are ignored, so it is idempotent.
* A periodic tick (``loop.call_later``, armed only while sessions exist) forwards the
  relay's ``Latched`` reports and reports ``RtpTimeout`` once per silent stretch: when no
  RTP came for ``rtp_timeout`` seconds; it is reported again only after media (or a
  re-pointed side) restarted the idle clock and a new silence reached the limit.

Reports never run inside :meth:`MediaHost.execute` (the driver that calls ``execute``
may be in the middle of applying the switch's outputs): reports caused by a command are
delivered from a ``loop.call_soon`` callback.

Per packet: the socket is non-blocking and watched with ``loop.add_reader``; one
``recvfrom`` per readiness, the session's decision, one ``sendto`` FROM THE OTHER SIDE'S
socket (A's packets leave through B's socket to B's peer and back), so symmetric-RTP
peers see the port they signalled to. Measured against ``create_datagram_endpoint`` with
a loopback pump (20,000 packets each way): the same CPU per packet on uvloop (about
12 us, either way) and a third of it on the stock loop (16 us against 49 us; its
transport reads 256 KiB per datagram, PEERS.md). A send that would block is dropped:
late RTP is worthless, and queueing it is what hides latency.

Copies: the relay rewrites a datagram in place only on side B after a ``SwitchLegB``
(marker bit, sequence, timestamp, SSRC; RTCP SSRC). Until then the received ``bytes``
object is passed through as it is; afterwards side B's datagrams are copied into a
``bytearray`` (172 octets for G.711, about 0.1 us).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import resource
import socket
from collections.abc import Callable
from typing import Final, TypeAlias, cast

import structlog

from media.commands import (
    Address,
    CloseSession,
    MediaCommand,
    MediaReport,
    MediaSessionId,
    OpenSession,
    PortUnavailable,
    RtpTimeout,
    SessionStats,
    Side,
    SwitchLegB,
    UpdateRemote,
)
from media.relay import RelaySession

__all__ = ["SOCKETS_PER_SESSION", "MediaHost", "raise_open_file_limit"]

log: Final = structlog.get_logger(__name__)

SOCKETS_PER_SESSION: Final = 4  # RTP and RTCP for each side
# Large enough for any RTP or RTCP packet under an Ethernet MTU; the stock loop's datagram
# transport reads 256 KiB per call, which is most of its per-packet cost (PEERS.md).
_MAX_DATAGRAM: Final = 2048

# RelaySession's handlers take a bytearray because they may rewrite in place; they only
# write on side B after a SwitchLegB, and the host copies into a bytearray from then on.
_PacketHandler: TypeAlias = Callable[[Side, bytes | bytearray, Address, float], "Address | None"]


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (each call holds four sockets) and
    return the soft limit in force afterwards; log when it cannot be raised."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as error:
        # An unlimited hard limit is refused above the kernel's nr_open, for one.
        log.warning(
            "open_file_limit_not_raised",
            soft=soft,
            hard=hard,
            error=str(error),
            max_sessions=soft // SOCKETS_PER_SESSION,
        )
        return soft
    log.info("open_file_limit_raised", old=soft, new=hard)
    return hard


class _HostedSession:
    """A relay session and the four sockets the host bound for it."""

    __slots__ = ("is_timed_out", "relay", "rewrites_b", "sockets")

    def __init__(self, relay: RelaySession) -> None:
        self.relay = relay
        self.sockets: list[socket.socket] = []
        self.rewrites_b = False  # set at the first SwitchLegB: B's datagrams become writable
        self.is_timed_out = False  # RtpTimeout reported for the current silence


class MediaHost:
    """Relays RTP/RTCP for the switch's media sessions on the running event loop.

    Inputs: :meth:`execute` (commands), datagrams on the sessions' sockets, the tick.
    Queries: :meth:`stats`, :attr:`sessions`, :attr:`ports_in_use`. Stop: :meth:`close`.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        report: Callable[[MediaReport], None],
        *,
        rtp_timeout: float,
        tick: float = 1.0,
    ) -> None:
        if rtp_timeout <= 0 or tick <= 0:
            raise ValueError(f"rtp_timeout {rtp_timeout} and tick {tick} must be positive")
        self._loop = loop
        self._report = report
        self._rtp_timeout = rtp_timeout
        self._tick = tick
        self._sessions: dict[MediaSessionId, _HostedSession] = {}
        self._tick_handle: asyncio.TimerHandle | None = None
        self._pending: list[MediaReport] = []
        self._flush_handle: asyncio.Handle | None = None
        self._is_closed = False
        self.open_file_limit = raise_open_file_limit()

    # Status.

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    @property
    def ports_in_use(self) -> int:
        return sum(len(hosted.sockets) for hosted in self._sessions.values())

    def stats(self, session_id: MediaSessionId) -> SessionStats | None:
        """The counters of a live session (``None`` if unknown), without reporting them."""
        hosted = self._sessions.get(session_id)
        return None if hosted is None else hosted.relay.stats()

    # Commands.

    def execute(self, command: MediaCommand) -> None:
        if self._is_closed:
            raise RuntimeError("MediaHost is closed")
        match command:
            case OpenSession():
                self._open(command)
            case UpdateRemote(session_id=session_id, side=side, expected=expected):
                hosted = self._sessions.get(session_id)
                if hosted is None:
                    log.debug("media_command_for_unknown_session", command="update_remote")
                    return
                hosted.relay.update_remote(side, expected, self._loop.time())
            case SwitchLegB(session_id=session_id, expected_b=expected_b):
                hosted = self._sessions.get(session_id)
                if hosted is None:
                    log.debug("media_command_for_unknown_session", command="switch_leg_b")
                    return
                hosted.rewrites_b = True
                hosted.relay.switch_b(expected_b, self._loop.time())
            case CloseSession(session_id=session_id):
                hosted = self._sessions.pop(session_id, None)
                if hosted is None:
                    return
                self._close_sockets(hosted)
                self._defer([*hosted.relay.take_reports(), hosted.relay.stats()])
                if not self._sessions:
                    self._stop_ticking()
                log.debug("media_session_closed", session_id=session_id)

    async def close(self) -> None:
        """Close every session's sockets and stop the tick; reports still pending from
        earlier commands are delivered, final stats of the sessions closed here are not."""
        self._is_closed = True
        for hosted in self._sessions.values():
            self._close_sockets(hosted)
        self._sessions.clear()
        self._stop_ticking()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush()

    # Opening and closing.

    def _open(self, command: OpenSession) -> None:
        session_id = command.session_id
        if session_id in self._sessions:
            log.warning("media_session_already_open", session_id=session_id)
            return
        relay = RelaySession.from_command(command, self._loop.time())
        hosted = _HostedSession(relay)
        try:
            family = (
                socket.AF_INET6
                if ipaddress.ip_address(command.local_host).version == 6
                else socket.AF_INET
            )
        except ValueError:
            family = socket.AF_INET
        for port in (command.rtp_port_a, command.rtp_port_b):
            for bound_port in (port, port + 1):
                try:
                    hosted.sockets.append(self._bind(family, command.local_host, bound_port))
                except OSError as error:
                    self._close_sockets(hosted)
                    log.warning(
                        "media_port_unavailable",
                        session_id=session_id,
                        port=bound_port,
                        error=errno.errorcode.get(error.errno or 0, str(error)),
                    )
                    self._defer([PortUnavailable(session_id=session_id, port=port)])
                    return
        rtp_a, rtcp_a, rtp_b, rtcp_b = hosted.sockets
        on_rtp = cast(_PacketHandler, relay.on_packet)
        on_rtcp = cast(_PacketHandler, relay.on_rtcp_packet)
        is_v6 = family == socket.AF_INET6
        self._watch(hosted, rtp_a, rtp_b, on_rtp, side=Side.A, is_v6=is_v6)
        self._watch(hosted, rtp_b, rtp_a, on_rtp, side=Side.B, is_v6=is_v6)
        self._watch(hosted, rtcp_a, rtcp_b, on_rtcp, side=Side.A, is_v6=is_v6)
        self._watch(hosted, rtcp_b, rtcp_a, on_rtcp, side=Side.B, is_v6=is_v6)
        self._sessions[session_id] = hosted
        if self._tick_handle is None:
            self._tick_handle = self._loop.call_later(self._tick, self._on_tick)
        log.debug(
            "media_session_opened",
            session_id=session_id,
            port_a=command.rtp_port_a,
            port_b=command.rtp_port_b,
        )

    @staticmethod
    def _bind(family: socket.AddressFamily, host: str, port: int) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((host, port))
        except BaseException:
            sock.close()
            raise
        return sock

    def _close_sockets(self, hosted: _HostedSession) -> None:
        for sock in hosted.sockets:
            self._loop.remove_reader(sock.fileno())
            sock.close()  # the port is free again once this returns
        hosted.sockets.clear()

    def _watch(
        self,
        hosted: _HostedSession,
        sock: socket.socket,
        out: socket.socket,
        handler: _PacketHandler,
        *,
        side: Side,
        is_v6: bool,
    ) -> None:
        """Relay what arrives on ``sock`` (side ``side``) out of ``out``, the other side's
        socket of the same kind."""
        recvfrom = sock.recvfrom
        sendto = out.sendto
        now = self._loop.time
        may_rewrite = side is Side.B

        def on_readable() -> None:
            try:
                received, source = recvfrom(_MAX_DATAGRAM)
            except OSError:  # EAGAIN after a spurious wake-up, or a queued ICMP error
                return
            if is_v6:
                source = source[:2]  # drop flowinfo and scope id: addresses are (ip, port)
            data = bytearray(received) if may_rewrite and hosted.rewrites_b else received
            destination = handler(side, data, source, now())
            if destination is not None:
                # Not contextlib.suppress: a context manager per packet costs more.
                try:  # noqa: SIM105
                    sendto(data, destination)
                except OSError:  # full send buffer, unreachable network: drop, as UDP would
                    pass

        self._loop.add_reader(sock.fileno(), on_readable)

    # Reports.

    def _defer(self, reports: list[MediaReport]) -> None:
        self._pending.extend(reports)
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        reports, self._pending = self._pending, []
        for report in reports:
            self._report(report)

    def _stop_ticking(self) -> None:
        if self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick_handle = None

    def _on_tick(self) -> None:
        self._tick_handle = None
        now = self._loop.time()
        limit = self._rtp_timeout
        reports: list[MediaReport] = []
        for session_id, hosted in self._sessions.items():
            reports.extend(hosted.relay.take_reports())
            idle_for = hosted.relay.idle_for(now)
            if idle_for < limit:
                hosted.is_timed_out = False
            elif not hosted.is_timed_out:
                hosted.is_timed_out = True
                reports.append(RtpTimeout(session_id=session_id, idle_for=idle_for))
        if self._sessions:
            self._tick_handle = self._loop.call_later(self._tick, self._on_tick)
        for report in reports:
            self._report(report)
