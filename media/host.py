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
* ``TakeMessage`` / ``StopMessage``: the voicemail, below.
* A periodic tick (``loop.call_later``, armed only while sessions exist) forwards the
  relay's ``Latched`` reports and reports ``RtpTimeout`` once per silent stretch: when no
  RTP came for ``rtp_timeout`` seconds; it is reported again only after media (or a
  re-pointed side) restarted the idle clock and a new silence reached the limit. Never
  for a session in voicemail: the recorder's no-RTP rule stands in for it there.

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

**Voicemail** (``TakeMessage``: the switch answered the caller itself). Side B's two
sockets close at once (their ports stay the switch's until ``CloseSession``); side A's RTP
socket stops relaying and serves the voicemail, its RTCP socket is read and ignored:

1. The greeting (from the :class:`~media.prompts.PromptLibrary`: cached, else read and
   encoded in the executor) and the beep play as one :class:`~media.player.PromptPlayer`,
   paced by ``loop.call_at(player.next_due())``, from side A's port to where the caller's
   RTP comes from once any came (symmetric RTP; latching as the relay does: the expected
   IP, or anyone with ``latch_any``), else to ``TakeMessage.remote`` (else to side A's
   expected address). The caller's packets only latch meanwhile. In parallel the
   executor runs :meth:`~media.recordings.RecordingSink.begin` and creates the file.
2. At the beep's last packet a :class:`~media.recorder.VoicemailRecorder` starts and is
   fed every packet from the caller (about 4 us; no task, no timer per packet). One timer
   per recording, at the earlier of the next append and ``next_deadline()``, appends what
   ``take()`` gives to the file (about once a second: a ``write``, never an ``fsync``,
   on the loop) and calls ``check(now)``. Until the file exists the recorder keeps the
   audio, so a slow ``begin`` loses nothing.
3. When it stops (a stop key, a limit, no RTP, ``StopMessage``, ``CloseSession``,
   :meth:`MediaHost.close`), a task appends the rest, closes the file and runs
   :meth:`~media.recordings.RecordingSink.finish` in the executor, then reports
   ``MessageRecorded``: after the command that caused it has returned, and for
   ``CloseSession`` after the session's ``SessionStats``. Ended before the recording began,
   or with ``record`` false (after the beep; the session stays open until
   ``CloseSession``), it is ``NOT_RECORDED`` with duration 0, and the sink discards the
   file it began. Without a sink the caller is recorded to nowhere (``message_id`` None).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import random
import resource
import socket
from collections.abc import Callable, Sequence
from enum import Enum
from functools import partial
from typing import Final, ParamSpec, TypeAlias, TypeVar, cast

import structlog

from media.commands import (
    Address,
    CloseSession,
    ConfirmAnswer,
    Latched,
    MediaCommand,
    MediaReport,
    MediaSessionId,
    MessageRecorded,
    MessageStop,
    OpenSession,
    PortUnavailable,
    RtpTimeout,
    SessionStats,
    Side,
    StopConfirm,
    StopMessage,
    SwitchLegB,
    TakeMessage,
    UpdateRemote,
)
from media.confirm import Confirmation
from media.player import EARLY_TOLERANCE, PCMA, PCMU, Clip, PromptPlayer
from media.prompts import PromptLibrary
from media.recorder import RecorderSettings, Stop, StopReason, VoicemailRecorder
from media.recordings import RecordingFile, RecordingSink, finish_recording, open_recording
from media.relay import RelaySession

__all__ = ["FINISH_TIMEOUT", "SOCKETS_PER_SESSION", "MediaHost", "raise_open_file_limit"]

log: Final = structlog.get_logger(__name__)

SOCKETS_PER_SESSION: Final = 4  # RTP and RTCP for each side
# Large enough for any RTP or RTCP packet under an Ethernet MTU; the stock loop's datagram
# transport reads 256 KiB per call, which is most of its per-packet cost (PEERS.md).
_MAX_DATAGRAM: Final = 2048
APPEND_INTERVAL: Final = 1.0  # seconds between appends of recorded audio to its file
FINISH_TIMEOUT: Final = 10.0  # how long close() waits for recordings to be finished
_RTP_VERSION_MASK: Final = 0xC0
_RTP_VERSION_2: Final = 0x80
_RTP_MIN_SIZE: Final = 12

# One side's packet handler: RelaySession.on_packet_a / on_packet_b, or on_rtcp_packet
# bound to a side. Side B's may rewrite in place, but only after a SwitchLegB; the host
# copies side B's datagrams into a bytearray from then on.
_PacketHandler: TypeAlias = Callable[[bytes | bytearray, Address, float], "Address | None"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

_MESSAGE_STOPS: Final = {
    StopReason.HANGUP: MessageStop.HANGUP,
    StopReason.DIGIT: MessageStop.DIGIT,
    StopReason.MAX_LENGTH: MessageStop.MAX_LENGTH,
    StopReason.SILENCE: MessageStop.SILENCE,
    StopReason.NO_RTP: MessageStop.NO_RTP,
}
_RECORDER_STOPS: Final = {stop: reason for reason, stop in _MESSAGE_STOPS.items()}


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


def _canonical_ip(host: str) -> str:
    """The form the socket layer reports a source IP in (as the relay compares them)."""
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host


class _Phase(Enum):
    LOADING = "loading"  # the greeting is being read and encoded in the executor
    GREETING = "greeting"  # greeting and beep playing; the caller's packets only latch
    RECORDING = "recording"
    ENDED = "ended"  # reported or being finished; the session stays until CloseSession


class _Voicemail:
    """The voicemail on side A of one session: what plays, what records, where to."""

    __slots__ = (
        "begun",
        "command",
        "expected_ip",
        "latch_any",
        "next_append",
        "peer",
        "phase",
        "player",
        "recorder",
        "remote",
        "sendto",
        "settings",
        "timer",
    )

    def __init__(
        self,
        command: TakeMessage,
        settings: RecorderSettings,
        sendto: Callable[[bytes, Address], int],
        *,
        peer: Address | None,
        remote: Address | None,
        latch_any: bool,
    ) -> None:
        self.command = command
        self.settings = settings
        self.sendto = sendto  # side A's RTP socket
        self.phase = _Phase.LOADING
        self.peer = peer  # the caller's RTP source, once latched
        self.remote = remote  # where to send until then
        self.expected_ip = None if remote is None else _canonical_ip(remote[0])
        self.latch_any = latch_any
        self.player: PromptPlayer | None = None
        self.recorder: VoicemailRecorder | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.next_append = 0.0
        # The file, from RecordingSink.begin in the executor; None: recording to nowhere.
        self.begun: asyncio.Future[RecordingFile] | None = None

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class _HostedSession:
    """A relay session and the sockets the host bound for it (four; two in voicemail)."""

    __slots__ = (
        "confirmation",
        "is_timed_out",
        "is_v6",
        "latch_any",
        "relay",
        "rewrites_b",
        "sockets",
        "voicemail",
    )

    def __init__(self, relay: RelaySession, *, is_v6: bool, latch_any: bool) -> None:
        self.relay = relay
        self.sockets: list[socket.socket] = []
        self.is_v6 = is_v6
        self.latch_any = latch_any
        self.rewrites_b = False  # set at the first SwitchLegB: B's datagrams become writable
        self.is_timed_out = False  # RtpTimeout reported for the current silence
        self.voicemail: _Voicemail | None = None
        self.confirmation: Confirmation | None = None  # side B asks its callee to confirm


class MediaHost:
    """Relays RTP/RTCP for the switch's media sessions on the running event loop, and
    plays and records voicemail on them.

    ``recordings`` keeps the messages (``None``: record to nowhere); ``prompts`` holds the
    greetings (default: a library whose default greeting is the chime); ``rng`` draws the
    prompts' SSRC, sequence numbers and timestamps; recorded audio is appended to its file
    every ``append_interval`` seconds.

    Inputs: :meth:`execute` (commands), datagrams on the sessions' sockets, the tick and
    the voicemail timers. Queries: :meth:`stats`, :attr:`sessions`,
    :attr:`sockets_in_use`. Stop: :meth:`close`.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        report: Callable[[MediaReport], None],
        *,
        rtp_timeout: float,
        tick: float = 1.0,
        recordings: RecordingSink | None = None,
        prompts: PromptLibrary | None = None,
        rng: random.Random | None = None,
        append_interval: float = APPEND_INTERVAL,
        confirm_prompt: str | None = None,
    ) -> None:
        if rtp_timeout <= 0 or tick <= 0 or append_interval <= 0:
            raise ValueError(
                f"rtp_timeout {rtp_timeout}, tick {tick} and append_interval {append_interval}"
                " must be positive"
            )
        self._loop = loop
        self._report = report
        self._rtp_timeout = rtp_timeout
        self._tick = tick
        self._recordings = recordings
        self._prompts = prompts if prompts is not None else PromptLibrary()
        self._rng = rng if rng is not None else random.Random()
        self._append_interval = append_interval
        self._confirm_prompt = confirm_prompt  # ConfirmAnswer's prompt by default
        self._sessions: dict[MediaSessionId, _HostedSession] = {}
        # RTP packets relayed and packets dropped by the sessions closed so far.
        self._closed_totals = (0, 0)
        self._tick_handle: asyncio.TimerHandle | None = None
        self._pending: list[MediaReport] = []
        self._flush_handle: asyncio.Handle | None = None
        self._jobs: set[asyncio.Future[object]] = set()  # executor work under way
        self._finishing: set[asyncio.Task[None]] = set()  # recordings being finished
        self._is_closed = False
        self.open_file_limit = raise_open_file_limit()

    # Status.

    @property
    def sessions(self) -> int:
        return len(self._sessions)

    @property
    def sockets_in_use(self) -> int:
        """Sockets bound now: four per relaying session, two per session in voicemail
        (whose side B ports the switch still holds until ``CloseSession``)."""
        return sum(len(hosted.sockets) for hosted in self._sessions.values())

    @property
    def ports_in_use(self) -> int:
        """UDP ports bound now: one per socket (:attr:`sockets_in_use`)."""
        return self.sockets_in_use

    @property
    def recordings_finishing(self) -> int:
        """Voicemail recordings stopped whose file work and report are still to come."""
        return len(self._finishing)

    def relay_totals(self) -> tuple[int, int]:
        """(RTP packets relayed both ways, packets dropped) since start, closed and live
        sessions together: both only grow (the metrics' counters)."""
        relayed, dropped = self._closed_totals
        for hosted in self._sessions.values():
            stats = hosted.relay.stats()
            relayed += stats.packets_a_to_b + stats.packets_b_to_a
            dropped += stats.dropped
        return relayed, dropped

    def _count_closed(self, hosted: _HostedSession) -> None:
        stats = hosted.relay.stats()
        relayed, dropped = self._closed_totals
        self._closed_totals = (
            relayed + stats.packets_a_to_b + stats.packets_b_to_a,
            dropped + stats.dropped,
        )

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
                if side is Side.A and hosted.voicemail is not None:
                    voicemail = hosted.voicemail
                    voicemail.remote = expected
                    voicemail.expected_ip = _canonical_ip(expected[0])
                    voicemail.peer = None  # latch again, as the relay would
            case SwitchLegB(session_id=session_id, expected_b=expected_b):
                hosted = self._sessions.get(session_id)
                if hosted is None:
                    log.debug("media_command_for_unknown_session", command="switch_leg_b")
                    return
                if hosted.voicemail is not None:  # side B is closed: nobody to switch to
                    log.warning("switch_leg_b_in_voicemail", session_id=session_id)
                    return
                hosted.rewrites_b = True
                hosted.relay.switch_b(expected_b, self._loop.time())
            case CloseSession(session_id=session_id):
                hosted = self._sessions.pop(session_id, None)
                if hosted is None:
                    return
                if hosted.confirmation is not None:
                    hosted.confirmation.stop()
                self._count_closed(hosted)
                self._close_sockets(hosted)
                self._defer([*hosted.relay.take_reports(), hosted.relay.stats()])
                if hosted.voicemail is not None:  # its MessageRecorded comes after the stats
                    self._end_voicemail(hosted.voicemail, MessageStop.HANGUP)
                if not self._sessions:
                    self._stop_ticking()
                log.debug("media_session_closed", session_id=session_id)
            case TakeMessage():
                self._take_message(command)
            case ConfirmAnswer():
                self._confirm(command)
            case StopConfirm(session_id=session_id):
                self._stop_confirm(session_id)
            case StopMessage(session_id=session_id, reason=reason):
                hosted = self._sessions.get(session_id)
                if hosted is None or hosted.voicemail is None:
                    log.debug("media_command_for_unknown_session", command="stop_message")
                    return
                self._end_voicemail(hosted.voicemail, reason)

    async def close(self, *, finish_timeout: float = FINISH_TIMEOUT) -> None:
        """Close every session's sockets and stop the tick; reports still pending from
        earlier commands are delivered, final stats of the sessions closed here are not.

        Recordings in progress end as ``HANGUP`` (``NOT_RECORDED`` during the greeting);
        this waits, at most ``finish_timeout`` seconds, until every recording's file is
        finished and its ``MessageRecorded`` reported (a report not made by then is lost,
        and logged)."""
        self._is_closed = True
        for hosted in self._sessions.values():
            if hosted.voicemail is not None:
                self._end_voicemail(hosted.voicemail, MessageStop.HANGUP)
            self._count_closed(hosted)
            self._close_sockets(hosted)
        self._sessions.clear()
        self._stop_ticking()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush()
        waiting: set[asyncio.Future[object] | asyncio.Task[None]] = {
            *self._jobs,
            *self._finishing,
        }
        if not waiting:
            return
        _, late = await asyncio.wait(waiting, timeout=finish_timeout)
        if late:
            log.error("voicemail_finish_timed_out", pending=len(late), timeout=finish_timeout)
            for task in self._finishing:
                task.cancel()
            await asyncio.gather(*self._finishing, return_exceptions=True)

    # Opening and closing.

    def _open(self, command: OpenSession) -> None:
        session_id = command.session_id
        if session_id in self._sessions:
            log.warning("media_session_already_open", session_id=session_id)
            return
        try:
            family = (
                socket.AF_INET6
                if ipaddress.ip_address(command.local_host).version == 6
                else socket.AF_INET
            )
        except ValueError:
            family = socket.AF_INET
        is_v6 = family == socket.AF_INET6
        relay = RelaySession.from_command(command, self._loop.time())
        hosted = _HostedSession(relay, is_v6=is_v6, latch_any=command.latch_any)
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
        on_rtcp = cast(Callable[[Side, bytes | bytearray, Address, float], Address | None],
                       relay.on_rtcp_packet)  # fmt: skip
        self._watch(hosted, rtp_a, rtp_b, relay.on_packet_a, side=Side.A)
        self._watch(hosted, rtp_b, rtp_a, cast(_PacketHandler, relay.on_packet_b), side=Side.B)
        self._watch(hosted, rtcp_a, rtcp_b, partial(on_rtcp, Side.A), side=Side.A)
        self._watch(hosted, rtcp_b, rtcp_a, partial(on_rtcp, Side.B), side=Side.B)
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

    def _close_sockets(self, hosted: _HostedSession, keep: int = 0) -> None:
        """Close the session's sockets from index ``keep`` on (2: side B's only)."""
        for sock in hosted.sockets[keep:]:
            self._loop.remove_reader(sock.fileno())
            sock.close()  # the port is free again once this returns
        del hosted.sockets[keep:]

    def _watch(
        self,
        hosted: _HostedSession,
        sock: socket.socket,
        out: socket.socket,
        handler: _PacketHandler,
        *,
        side: Side,
    ) -> None:
        """Relay what arrives on ``sock`` (side ``side``) out of ``out``, the other side's
        socket of the same kind.

        Side A over IPv4, the common case, gets the shortest callback: ``handler`` is bound
        to the side, and nothing else is tested per packet (in this path every attribute
        lookup and test shows in CPU per packet, ``bench-relay``)."""
        recvfrom = sock.recvfrom
        sendto = out.sendto
        now = self._loop.time
        may_rewrite = side is Side.B
        is_v6 = hosted.is_v6

        def on_readable_a4() -> None:
            try:
                data, source = recvfrom(_MAX_DATAGRAM)
            except OSError:  # EAGAIN after a spurious wake-up, or a queued ICMP error
                return
            destination = handler(data, source, now())
            if destination is not None:
                # Not contextlib.suppress: a context manager per packet costs more.
                try:  # noqa: SIM105
                    sendto(data, destination)
                except OSError:  # full send buffer, unreachable network: drop, as UDP would
                    pass

        def on_readable() -> None:
            try:
                received, source = recvfrom(_MAX_DATAGRAM)
            except OSError:
                return
            if is_v6:
                source = source[:2]  # drop flowinfo and scope id: addresses are (ip, port)
            data = bytearray(received) if may_rewrite and hosted.rewrites_b else received
            destination = handler(data, source, now())
            if destination is not None:
                try:  # noqa: SIM105
                    sendto(data, destination)
                except OSError:
                    pass

        if not (is_v6 or may_rewrite):
            self._loop.add_reader(sock.fileno(), on_readable_a4)
            return
        self._loop.add_reader(sock.fileno(), on_readable)

    # Confirmation (confirm-call).

    def _confirm(self, command: ConfirmAnswer) -> None:
        """Side B stops relaying: its callee hears the prompt, and its keys are reported."""
        hosted = self._sessions.get(command.session_id)
        if hosted is None or hosted.voicemail is not None or hosted.confirmation is not None:
            log.warning("confirm_refused", session_id=command.session_id)
            return
        rtp_b = hosted.sockets[2]
        self._loop.remove_reader(rtp_b.fileno())
        confirmation = Confirmation(
            self._loop, command, rtp_b, report=self._report_soon, rng=self._rng,
            is_v6=hosted.is_v6,
        )  # fmt: skip
        hosted.confirmation = confirmation
        prompt = command.prompt or self._confirm_prompt
        if prompt is None:
            beep = self._prompts.beep
            confirmation.play((beep,))
            return
        clips = self._prompts.cached(prompt, command.payload_type)
        if clips is not None:
            confirmation.play(clips)
            return
        loading = self._run_blocking(self._prompts.load, prompt, command.payload_type)

        def loaded(future: asyncio.Future[tuple[Clip, Clip]]) -> None:
            if future.cancelled() or confirmation.is_stopped:
                return
            error = future.exception()
            if error is not None:
                log.error("confirm_prompt_load_failed", error=repr(error))
                confirmation.play((self._prompts.beep,))
                return
            confirmation.play(future.result())

        loading.add_done_callback(loaded)

    def _stop_confirm(self, session_id: MediaSessionId) -> None:
        hosted = self._sessions.get(session_id)
        if hosted is None or hosted.confirmation is None:
            return
        hosted.confirmation.stop()
        hosted.confirmation = None
        rtp_a, _, rtp_b, _ = hosted.sockets
        self._watch(
            hosted, rtp_b, rtp_a, cast(_PacketHandler, hosted.relay.on_packet_b), side=Side.B
        )

    def _report_soon(self, report: MediaReport) -> None:
        self._defer([report])

    # Voicemail.

    def _take_message(self, command: TakeMessage) -> None:
        session_id = command.session_id
        hosted = self._sessions.get(session_id)
        if hosted is None or hosted.voicemail is not None:
            log.warning(
                "take_message_refused",
                session_id=session_id,
                reason="unknown session" if hosted is None else "voicemail already taken",
            )
            if hosted is None:  # MessageRecorded comes once per TakeMessage
                self._defer([_not_recorded(command)])
            return
        try:
            settings = _recorder_settings(command)
        except ValueError as error:
            log.error("take_message_invalid", session_id=session_id, error=str(error))
            self._defer([_not_recorded(command)])
            return
        self._close_sockets(hosted, keep=2)  # side B: no callee any more
        rtp_a, rtcp_a = hosted.sockets
        relay = hosted.relay
        voicemail = _Voicemail(
            command,
            settings,
            rtp_a.sendto,
            peer=relay.latched(Side.A),
            remote=command.remote if command.remote is not None else relay.destination(Side.A),
            latch_any=hosted.latch_any,
        )
        hosted.voicemail = voicemail
        self._loop.remove_reader(rtp_a.fileno())
        self._loop.remove_reader(rtcp_a.fileno())
        self._watch_voicemail(hosted, voicemail, rtp_a)
        self._loop.add_reader(rtcp_a.fileno(), partial(_discard, rtcp_a.recvfrom))
        if command.record and self._recordings is not None:
            begun = self._run_blocking(open_recording, self._recordings, command)
            begun.add_done_callback(partial(_log_begin_failure, command))
            voicemail.begun = begun
        clips = self._prompts.cached(command.greeting, command.payload_type)
        if clips is not None:
            self._play_greeting(voicemail, clips)
        else:
            loading = self._run_blocking(self._prompts.load, command.greeting, command.payload_type)
            loading.add_done_callback(partial(self._on_prompts_loaded, voicemail))
        log.info(
            "voicemail_taking_message",
            session_id=session_id,
            mailbox=command.mailbox,
            record=command.record,
        )

    def _watch_voicemail(
        self, hosted: _HostedSession, voicemail: _Voicemail, sock: socket.socket
    ) -> None:
        """Feed what the caller sends on side A's RTP socket to the voicemail: it latches
        the caller's address, and while recording goes to the recorder."""
        recvfrom = sock.recvfrom
        now = self._loop.time
        is_v6 = hosted.is_v6

        def on_readable() -> None:
            try:
                received, source = recvfrom(_MAX_DATAGRAM)
            except OSError:
                return
            if source != voicemail.peer:
                if is_v6:
                    source = source[:2]
                if source != voicemail.peer and not self._latch(hosted, received, source):
                    return
            recorder = voicemail.recorder
            if recorder is not None:
                stop = recorder.feed(received, now())
                if stop is not None:
                    self._end_recording(voicemail, recorder, stop, None)

        self._loop.add_reader(sock.fileno(), on_readable)

    def _latch(self, hosted: _HostedSession, data: bytes, source: Address) -> bool:
        """The slow path: RTP from an address that is not the caller's (yet). Latch to it
        if nothing is latched and it comes from the expected IP (or anyone, with
        ``latch_any``), as the relay does."""
        voicemail = hosted.voicemail
        assert voicemail is not None
        if (
            voicemail.peer is not None
            or len(data) < _RTP_MIN_SIZE
            or data[0] & _RTP_VERSION_MASK != _RTP_VERSION_2
            or not (voicemail.latch_any or source[0] == voicemail.expected_ip)
        ):
            return False
        voicemail.peer = source
        self._defer([Latched(session_id=voicemail.command.session_id, side=Side.A, address=source)])
        return True

    def _on_prompts_loaded(
        self, voicemail: _Voicemail, loading: asyncio.Future[tuple[Clip, Clip]]
    ) -> None:
        if loading.cancelled():
            return
        error = loading.exception()
        if voicemail.phase is not _Phase.LOADING:
            return  # ended during the load
        if error is not None:
            log.error(
                "greeting_load_failed",
                session_id=voicemail.command.session_id,
                error=repr(error),
            )
            self._play_greeting(voicemail, (self._prompts.beep,))
            return
        self._play_greeting(voicemail, loading.result())

    def _play_greeting(self, voicemail: _Voicemail, clips: Sequence[Clip]) -> None:
        now = self._loop.time()
        player = PromptPlayer(
            clips, payload_type=voicemail.command.payload_type, rng=self._rng, now=now
        )
        voicemail.player = player
        voicemail.phase = _Phase.GREETING
        voicemail.timer = self._loop.call_at(now, self._on_play, voicemail)

    def _on_play(self, voicemail: _Voicemail) -> None:
        """The player's timer: send what is due, then arm for the next packet; after the
        beep's last packet, record (or report ``NOT_RECORDED`` when not recording)."""
        voicemail.timer = None
        player = voicemail.player
        assert player is not None
        now = self._loop.time()
        destination = voicemail.peer if voicemail.peer is not None else voicemail.remote
        if destination is not None:
            sendto = voicemail.sendto
            for packet in player.frames(now):
                try:  # noqa: SIM105
                    sendto(packet, destination)
                except OSError:
                    pass
        else:
            player.frames(now)  # nowhere to send yet: the greeting goes on regardless
        due = player.next_due()
        if due is not None:
            voicemail.timer = self._loop.call_at(due, self._on_play, voicemail)
            return
        voicemail.player = None
        command = voicemail.command
        if not command.record:
            voicemail.phase = _Phase.ENDED
            self._report(_not_recorded(command))
            return
        voicemail.phase = _Phase.RECORDING
        voicemail.recorder = VoicemailRecorder(
            payload_type=command.payload_type,
            event_payload_type=command.event_payload_type,
            now=now,
            settings=voicemail.settings,
        )
        voicemail.next_append = now + self._append_interval
        self._arm_recording(voicemail, voicemail.recorder)

    def _arm_recording(self, voicemail: _Voicemail, recorder: VoicemailRecorder) -> None:
        deadline = recorder.next_deadline()
        at = voicemail.next_append if deadline is None else min(voicemail.next_append, deadline)
        voicemail.timer = self._loop.call_at(at, self._on_recording_timer, voicemail)

    def _on_recording_timer(self, voicemail: _Voicemail) -> None:
        """Append the audio taken since the last time (about once a second) and check the
        no-RTP rule."""
        voicemail.timer = None
        recorder = voicemail.recorder
        if recorder is None:
            return
        now = self._loop.time()
        if now + EARLY_TOLERANCE >= voicemail.next_append:
            self._append(voicemail, recorder)
            voicemail.next_append = now + self._append_interval
        stop = recorder.check(now)
        if stop is not None:
            self._end_recording(voicemail, recorder, stop, None)
            return
        self._arm_recording(voicemail, recorder)

    @staticmethod
    def _append(voicemail: _Voicemail, recorder: VoicemailRecorder) -> None:
        """Move the recorder's audio into the file; while the file is still being created
        the recorder keeps it; with no file (no sink, or begin failed) it is dropped."""
        begun = voicemail.begun
        if begun is None:
            recorder.take()
        elif begun.done():
            if begun.cancelled() or begun.exception() is not None:
                recorder.take()
            else:
                begun.result().append(recorder.take())

    def _end_voicemail(self, voicemail: _Voicemail, reason: MessageStop) -> None:
        """``StopMessage``, ``CloseSession`` or :meth:`close`: stop what plays or records."""
        match voicemail.phase:
            case _Phase.LOADING | _Phase.GREETING:
                voicemail.cancel_timer()
                voicemail.player = None
                voicemail.phase = _Phase.ENDED
                self._spawn_finish(voicemail, MessageStop.NOT_RECORDED, b"", 0.0)
            case _Phase.RECORDING:
                recorder = voicemail.recorder
                assert recorder is not None
                stop = recorder.stop(_RECORDER_STOPS.get(reason, StopReason.HANGUP))
                self._end_recording(
                    voicemail,
                    recorder,
                    stop,
                    reason if reason is MessageStop.NOT_RECORDED else None,
                )
            case _Phase.ENDED:
                pass

    def _end_recording(
        self,
        voicemail: _Voicemail,
        recorder: VoicemailRecorder,
        stop: Stop,
        reason: MessageStop | None,
    ) -> None:
        """The recorder stopped: from now on the caller's packets are ignored; the rest of
        the audio goes to the file, and the message to the sink, in the finishing task."""
        voicemail.cancel_timer()
        voicemail.recorder = None
        voicemail.phase = _Phase.ENDED
        reason = _MESSAGE_STOPS[stop.reason] if reason is None else reason
        log.info(
            "voicemail_recording_stopped",
            session_id=voicemail.command.session_id,
            reason=reason.value,
            duration=round(recorder.duration, 3),
        )
        self._spawn_finish(voicemail, reason, recorder.take(), recorder.duration)

    def _spawn_finish(
        self, voicemail: _Voicemail, reason: MessageStop, rest: bytes, duration: float
    ) -> None:
        task = self._loop.create_task(
            self._finish(voicemail.command, voicemail.begun, reason, rest, duration)
        )
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def _finish(
        self,
        command: TakeMessage,
        begun: asyncio.Future[RecordingFile] | None,
        reason: MessageStop,
        rest: bytes,
        duration: float,
    ) -> None:
        """Complete the file and hand it to the sink (executor), then report."""
        message_id: str | None = None
        if begun is not None and self._recordings is not None:
            try:
                # Shielded: close() giving up on this task must not drop the file unclosed.
                recording = await asyncio.shield(begun)
            except asyncio.CancelledError:
                begun.add_done_callback(_close_abandoned)
                raise
            except Exception:  # logged by _log_begin_failure
                pass
            else:
                message_id, duration = await self._run_blocking(
                    finish_recording, self._recordings, command, recording, rest, reason
                )
        if reason is MessageStop.NOT_RECORDED:
            duration = 0.0
        self._report(
            MessageRecorded(
                session_id=command.session_id,
                mailbox=command.mailbox,
                reason=reason,
                duration=duration,
                message_id=message_id,
            )
        )

    def _run_blocking(
        self, function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> asyncio.Future[_T]:
        """Run ``function`` in the loop's default executor; :meth:`close` waits for it."""
        future = self._loop.run_in_executor(None, partial(function, *args, **kwargs))
        self._jobs.add(cast("asyncio.Future[object]", future))
        future.add_done_callback(self._jobs.discard)
        return future

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
            if hosted.voicemail is not None:
                continue  # the recorder's no-RTP rule applies instead
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


def _recorder_settings(command: TakeMessage) -> RecorderSettings:
    """The recorder's limits from the command; ValueError for what cannot be recorded."""
    if command.payload_type not in (PCMU, PCMA):
        raise ValueError(f"payload type {command.payload_type}: only PCMU (0) and PCMA (8)")
    if command.event_payload_type == command.payload_type:
        raise ValueError(f"audio and telephone-event both on {command.payload_type}")
    return RecorderSettings(
        max_length=command.max_length,
        silence_timeout=command.silence_timeout,
        no_rtp_timeout=command.no_rtp_timeout,
        stop_digits=command.stop_digits,
    )


def _not_recorded(command: TakeMessage) -> MessageRecorded:
    return MessageRecorded(
        session_id=command.session_id,
        mailbox=command.mailbox,
        reason=MessageStop.NOT_RECORDED,
        duration=0.0,
        message_id=None,
    )


def _discard(recvfrom: Callable[[int], tuple[bytes, object]]) -> None:
    """Read one datagram and drop it (side A's RTCP during voicemail)."""
    try:  # noqa: SIM105
        recvfrom(_MAX_DATAGRAM)
    except OSError:
        pass


def _log_begin_failure(command: TakeMessage, begun: asyncio.Future[RecordingFile]) -> None:
    if begun.cancelled():
        return
    error = begun.exception()
    if error is not None:
        log.error(
            "voicemail_begin_failed",
            session_id=command.session_id,
            mailbox=command.mailbox,
            error=repr(error),
        )


def _close_abandoned(begun: asyncio.Future[RecordingFile]) -> None:
    """The file of a recording :meth:`MediaHost.close` stopped waiting for: close it as it
    is (the sink's recovery at the next start finds it)."""
    if begun.cancelled() or begun.exception() is not None:
        return
    recording = begun.result()
    recording.close()
    log.warning("voicemail_recording_abandoned", path=recording.path)
