"""The media boundary: what the pure switch asks a media host to do, and what the host
reports back.

These are plain frozen dataclasses with no sockets, callbacks or relay objects inside
(ARCHITECTURE.md, "The media boundary is serialisable"), so the host can move to its own
process without the switch noticing. Addresses are ``(ip, port)`` tuples with a numeric
IP: the switch resolves names before it says where media goes.

Side A is the caller's leg, side B the callee's. B is a replaceable binding of the call
("A call's bridge can be re-pointed"): :class:`SwitchLegB` moves it to another callee
while the caller keeps hearing one stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NewType, TypeAlias

MediaSessionId = NewType("MediaSessionId", str)

Address: TypeAlias = tuple[str, int]


class Side(StrEnum):
    """Which leg of the bridge: A faces the caller, B the answered callee."""

    A = "a"
    B = "b"


# Commands (switch -> host): imperatives.


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenSession:
    """Bind RTP on ``rtp_port_a`` / ``rtp_port_b`` of ``local_host`` (and RTCP on each
    port + 1, RFC 3550 §11) and relay between them.

    ``expected_a`` / ``expected_b`` are where each side's media comes from, as signalled
    (SDP ``c=`` address and ``m=`` port), or ``None`` while unknown (an INVITE without SDP,
    a callee not yet answered); a side with no expectation and no latch gets nothing.
    Latching accepts the first packet from the expected IP on any port (a NAT may change
    the port). Behind a NAT the SDP shows a private address: the switch then passes the
    signalling source IP with the SDP port (as Kamailio's ``fix_nated_sdp`` does), or sets
    ``latch_any`` to latch each side to the first packet from anywhere (weaker: until a
    side latches, anyone who guesses the port can take it over; "RTP bleed").

    ``clock_rate`` and ``frame_samples`` (RTP clock and samples per packet: 8000 and 160
    for G.711 at ``ptime`` 20) set the timestamp step across a :class:`SwitchLegB`.
    """

    session_id: MediaSessionId
    local_host: str
    rtp_port_a: int
    rtp_port_b: int
    expected_a: Address | None
    expected_b: Address | None
    latch_any: bool = False
    clock_rate: int = 8000
    frame_samples: int = 160


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateRemote:
    """A side's SDP changed (the answer arrived, or a re-INVITE): media now comes from
    ``expected``; that side may latch again. Hold (``sendonly``/``inactive``) is only SDP:
    the relay keeps relaying whatever arrives, so hold needs no command."""

    session_id: MediaSessionId
    side: Side
    expected: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class SwitchLegB:
    """The call moved to another callee (a later hunt step, a transfer, a pickup):
    re-point side B to ``expected_b``. The caller keeps hearing one RTP stream (same SSRC,
    sequence numbers and timestamps continuing, marker bit at the switch)."""

    session_id: MediaSessionId
    expected_b: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseSession:
    """Stop relaying, close the sockets and report the final :class:`SessionStats`."""

    session_id: MediaSessionId


@dataclass(frozen=True, slots=True, kw_only=True)
class TakeMessage:
    """Nobody answered: the switch answered the caller itself. Side A stops relaying (side
    B's sockets close): play ``greeting`` (an 8 kHz mono 16-bit WAV; ``None``: the default
    prompt) then a beep to the caller, from side A's RTP port to ``remote`` (or to where the
    caller's packets come from, once any has come), in G.711 ``payload_type`` (0 PCMU, 8
    PCMA); then record what the caller sends, until it presses a key of ``stop_digits``
    (RFC 4733 events of ``event_payload_type``), reaches ``max_length`` seconds, stays
    silent for ``silence_timeout`` seconds (``None``: never), sends nothing for
    ``no_rtp_timeout`` seconds, or :class:`StopMessage` / :class:`CloseSession` comes.

    ``mailbox`` and the caller's details are for the host's shell, which stores the
    message (``received_at``: wall-clock seconds) unless it is shorter than ``min_length``
    seconds. ``record`` False plays the greeting and
    the beep only (a full mailbox) and then reports :class:`MessageRecorded` with no audio."""

    session_id: MediaSessionId
    remote: Address | None
    payload_type: int
    event_payload_type: int | None
    greeting: str | None
    mailbox: str
    caller: str
    caller_name: str | None
    called: str
    group: str | None
    received_at: float
    max_length: float
    min_length: float
    silence_timeout: float | None
    no_rtp_timeout: float = 10.0
    stop_digits: str = "#"
    record: bool = True


class MessageStop(StrEnum):
    """Why a recording ended."""

    HANGUP = "hangup"  # StopMessage (the caller hung up) or CloseSession
    DIGIT = "digit"  # a stop key, by RFC 4733 or by SIP INFO
    MAX_LENGTH = "max length"
    SILENCE = "silence"
    NO_RTP = "no rtp"
    NOT_RECORDED = "not recorded"  # record was False, or the caller left during the greeting


@dataclass(frozen=True, slots=True, kw_only=True)
class StopMessage:
    """Stop the recording now (the caller hung up, or pressed a stop key over SIP INFO)."""

    session_id: MediaSessionId
    reason: MessageStop


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfirmAnswer:
    """A callee answered who must confirm before the caller is bridged (a mobile that
    may be its own voicemail): side B stops relaying; play ``prompt`` (an 8 kHz mono
    16-bit WAV; ``None``: the host's confirmation prompt) and a beep, again and again,
    from side B's RTP port to ``remote`` in G.711 ``payload_type``, and report each key
    the callee presses (RFC 4733 events of ``event_payload_type``) as
    :class:`DigitPressed`, until :class:`StopConfirm` (or :class:`CloseSession`)."""

    session_id: MediaSessionId
    remote: Address
    payload_type: int
    event_payload_type: int | None
    prompt: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StopConfirm:
    """The confirmation is over (confirmed, refused, timed out): stop the prompt and let
    side B relay again."""

    session_id: MediaSessionId


MediaCommand: TypeAlias = (
    OpenSession
    | UpdateRemote
    | SwitchLegB
    | CloseSession
    | TakeMessage
    | StopMessage
    | ConfirmAnswer
    | StopConfirm
)


# Reports (host -> switch): past-tense facts.


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStats:
    """Counters of one session: ``*_a_to_b`` counts what side A sent that went out to B.
    ``dropped_from_x`` counts packets (RTP and RTCP) received on side X's sockets and not
    forwarded: from an address that is not (or no longer) accepted, not RTP, or with no
    destination known yet. ``last_packet_at_x`` is the host's monotonic time of the last
    accepted RTP packet from side X (``None``: none yet)."""

    session_id: MediaSessionId
    packets_a_to_b: int
    packets_b_to_a: int
    bytes_a_to_b: int
    bytes_b_to_a: int
    rtcp_a_to_b: int
    rtcp_b_to_a: int
    dropped_from_a: int
    dropped_from_b: int
    last_packet_at_a: float | None
    last_packet_at_b: float | None
    b_switches: int

    @property
    def dropped(self) -> int:
        return self.dropped_from_a + self.dropped_from_b


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpTimeout:
    """No RTP arrived from either side for ``idle_for`` seconds (the host's configured
    limit was reached); the switch decides whether to end the call (not while on hold
    with ``inactive``, for example)."""

    session_id: MediaSessionId
    idle_for: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Latched:
    """Side ``side`` now sends (and is sent) media from/to ``address``: symmetric RTP
    learnt it from the first accepted packet. ``is_rtcp`` tells the RTCP latch apart."""

    session_id: MediaSessionId
    side: Side
    address: Address
    is_rtcp: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PortUnavailable:
    """The host could not bind ``port`` (or its RTCP port + 1) for the session: the switch
    quarantines it (``PortPool.reserve``) and opens the session again on another port."""

    session_id: MediaSessionId
    port: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRecorded:
    """The recording of a :class:`TakeMessage` ended: ``duration`` seconds of audio were
    recorded (0 when none); ``message_id`` names the stored message, ``None`` when nothing
    was kept (shorter than the mailbox's minimum, not recorded, or it could not be stored).
    Reported once per TakeMessage, also when it ended with the session."""

    session_id: MediaSessionId
    mailbox: str
    reason: MessageStop
    duration: float
    message_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DigitPressed:
    """The callee being asked to confirm (:class:`ConfirmAnswer`) pressed ``digit``."""

    session_id: MediaSessionId
    digit: str


MediaReport: TypeAlias = (
    SessionStats | RtpTimeout | Latched | PortUnavailable | MessageRecorded | DigitPressed
)
