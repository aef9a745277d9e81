"""DTMF digits: RFC 4733 telephone-events in RTP, and the SIP INFO bodies some phones send.

An RFC 4733 event packet is repeated while the key is held (same RTP timestamp, growing
duration) and its final packet, with the E bit, is sent three times (section 2.5.1.4).
:class:`DigitDetector` turns that stream into one report per key press.

SIP INFO carries digits as ``application/dtmf-relay`` (``Signal=5`` / ``Duration=160``
lines, a de facto format from Cisco) or ``application/dtmf`` (the digit alone).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from media.rtp import BytesLike, ts_diff

# RFC 4733 section 3.2, table 3: event codes 0-15 are the DTMF keys, in this order.
DTMF_DIGITS: Final = "0123456789*#ABCD"
EVENT_PAYLOAD_SIZE: Final = 4
MAX_DURATION: Final = 0xFFFF
MAX_VOLUME: Final = 63

# RFC 4733 section 2.3: event(8) | E(1) R(1) volume(6) | duration(16)
_EVENT: Final = struct.Struct("!BBH")
_END_BIT: Final = 0x80
_VOLUME_MASK: Final = 0x3F
# How far behind the current event a timestamp may be and still count as a late, reordered
# packet of an earlier event (about 16 s at 8 kHz). Anything further back is taken as a new
# event from a restarted stream; call DigitDetector.reset() when the SSRC changes anyway.
_STALE_WINDOW: Final = 1 << 17


class DtmfError(Exception):
    """An RTP telephone-event payload we cannot read (RFC 4733 section 2.3): drop the packet."""


def event_to_digit(event: int) -> str | None:
    """The key of a DTMF event code (0-15, RFC 4733 section 3.2), or ``None`` for other events."""
    return DTMF_DIGITS[event] if 0 <= event < len(DTMF_DIGITS) else None


def digit_to_event(digit: str) -> int:
    """The RFC 4733 event code of a key ``0-9 * # A-D`` (letters in either case)."""
    code = DTMF_DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if code < 0:
        raise ValueError(f"{digit!r} is not a DTMF key")
    return code


@dataclass(frozen=True, slots=True, kw_only=True)
class TelephoneEvent:
    """One RFC 4733 section 2.3 event report.

    ``volume`` is the power level in -dBm0, 0-63 (0 is loudest); ``duration`` is in RTP
    timestamp units since the event began (the packet's RTP timestamp).
    """

    event: int
    end: bool
    volume: int
    duration: int

    @property
    def digit(self) -> str | None:
        """The DTMF key, or ``None`` for non-DTMF events (flash hook, tones)."""
        return event_to_digit(self.event)

    def to_bytes(self) -> bytes:
        """The 4-octet payload; ``ValueError`` for fields that do not fit."""
        if not 0 <= self.event <= 0xFF:
            raise ValueError(f"event code {self.event} outside 0-255")
        if not 0 <= self.volume <= MAX_VOLUME:
            raise ValueError(f"volume {self.volume} outside 0-63")
        if not 0 <= self.duration <= MAX_DURATION:
            raise ValueError(f"duration {self.duration} outside 16 bits")
        return _EVENT.pack(self.event, (_END_BIT if self.end else 0) | self.volume, self.duration)


def parse_event(payload: BytesLike) -> TelephoneEvent:
    """Read the event in an RTP telephone-event payload (RFC 4733 section 2.3).

    Only the first 4-octet block is read; RFC 2198 redundancy (section 2.5.1.5) is not
    used by the phones we meet. The reserved R bit is ignored, as section 2.3 requires.
    Raises :class:`DtmfError` when the payload is shorter than 4 octets.
    """
    if len(payload) < EVENT_PAYLOAD_SIZE:
        raise DtmfError(f"telephone-event payload of {len(payload)} octets, expected 4")
    event, flags, duration = _EVENT.unpack_from(payload)
    return TelephoneEvent(
        event=event, end=bool(flags & _END_BIT), volume=flags & _VOLUME_MASK, duration=duration
    )


def build_event(digit: str, *, end: bool = False, volume: int = 10, duration: int = 0) -> bytes:
    """The telephone-event payload for ``digit`` (RFC 4733 section 2.3).

    The sender keeps the RTP timestamp of the key press on every packet of the event and
    sends the ``end=True`` packet three times (section 2.5.1.4).
    """
    return TelephoneEvent(
        event=digit_to_event(digit), end=end, volume=volume, duration=duration
    ).to_bytes()


class DigitDetector:
    """Reports each key press once from a stream of RFC 4733 event packets.

    Input: :meth:`feed` with the RTP timestamp and the parsed event of each packet carrying
    the negotiated telephone-event payload type (audio packets are not fed). Output: the key,
    on the first packet seen of a new event, else ``None``.

    An event is identified by its RTP timestamp, the instant the key went down (RFC 4733
    section 2.5.1.2), so: repeats and the three end packets (2.5.1.4) are absorbed; an event
    whose first packets were lost is still reported from whichever packet arrives; the same
    key pressed again comes with a new timestamp and is reported again; a key held past the
    16-bit duration continues as a new segment at ``timestamp + 0xFFFF`` (2.5.1.3), which is
    not a new press. Packets of an earlier event arriving late (reordered) are ignored.
    """

    __slots__ = ("_ended", "_event", "_timestamp")

    def __init__(self) -> None:
        self._timestamp: int | None = None
        self._event = -1
        self._ended = False

    def reset(self) -> None:
        """Forget the current event: the stream restarted (new SSRC, new call leg)."""
        self._timestamp = None
        self._event = -1
        self._ended = False

    def feed(self, timestamp: int, event: TelephoneEvent) -> str | None:
        """Take one telephone-event packet; return the key if it starts a new press."""
        if self._timestamp is not None:
            ahead = ts_diff(timestamp, self._timestamp)
            same_event = event.event == self._event
            if ahead == 0 and (same_event or not self._ended):
                # A repeat, or one of the end copies (section 2.5.1.4). A different code on
                # the same timestamp is only taken as a new press once the last one ended.
                self._ended = self._ended or event.end
                return None
            if -_STALE_WINDOW <= ahead < 0:
                return None
            if ahead == MAX_DURATION and same_event and not self._ended:
                # Section 2.5.1.3: a long event goes on in a new segment; not a new press.
                self._timestamp = timestamp
                self._ended = event.end
                return None
        self._timestamp = timestamp
        self._event = event.event
        self._ended = event.end
        return event.digit


def _digit_from_value(value: str) -> str | None:
    """A key written as itself (``5``, ``*``, ``a``) or as its event code (``11`` for ``#``)."""
    value = value.strip()
    if value.isascii() and value.isdigit() and len(value) <= 2:
        return event_to_digit(int(value))
    if len(value) == 1:
        upper = value.upper()
        return upper if upper in DTMF_DIGITS else None
    return None


def parse_dtmf_relay(body: str) -> str | None:
    """The key in an ``application/dtmf-relay`` INFO body, or ``None`` if it names none.

    The body is ``name=value`` lines, ``Signal=5`` and ``Duration=160`` (milliseconds); names
    are matched without case and spaces around ``=`` are allowed. ``Signal`` may also carry
    the event code (``10`` for ``*``, ``11`` for ``#``), as some gateways send.
    """
    for line in body.splitlines():
        name, separator, value = line.partition("=")
        if separator and name.strip().lower() == "signal":
            return _digit_from_value(value)
    return None


def parse_application_dtmf(body: str) -> str | None:
    """The key in an ``application/dtmf`` INFO body (the key alone, or its event code)."""
    return _digit_from_value(body)


def parse_info_dtmf(content_type: str, body: str) -> str | None:
    """The key in a SIP INFO body of either DTMF content type; ``None`` for anything else."""
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type == "application/dtmf-relay":
        return parse_dtmf_relay(body)
    if media_type == "application/dtmf":
        return parse_application_dtmf(body)
    return None
