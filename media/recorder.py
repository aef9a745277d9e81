"""VoicemailRecorder: the caller's RTP stream made into a voicemail message, and when it ends.

The shell feeds every RTP packet from the caller (:meth:`VoicemailRecorder.feed`), arms a
timer for :meth:`VoicemailRecorder.next_deadline` and calls
:meth:`VoicemailRecorder.check` when it fires, tells :meth:`VoicemailRecorder.stop` when
the caller hangs up or sends ``#`` by SIP INFO, and appends what
:meth:`VoicemailRecorder.take` returns to its temporary WAV file as it goes. Each of these
returns a :class:`Stop` once, when the recording ends; it never reads a clock. Feed it
from the moment recording begins (the beep has ended): the message starts with the first
packet fed.

**The timeline.** Audio is placed by RTP timestamp (RFC 3550 section 5.1: the sampling
instant of the first octet), one sample per G.711 octet at 8 kHz, relative to the first
packet. So the message has no gap and no overlap whatever the network did:

* A packet that arrives early waits in a small reorder buffer until the audio before it
  has come. Once what waits reaches more than ``reorder_window`` past the written audio,
  the missing audio is given up for lost as far as that excess, and written as silence of
  exactly its length; a packet from that part arriving later is dropped. So any
  reordering within the window gives the recording of the packets in order. The same
  holds at the start: the first ``reorder_window`` decides which packet comes first.
* A duplicate, or a packet whose audio is already written, is dropped; a packet that
  overlaps the written audio (mixed packet sizes) adds only its new tail.
* A timestamp jump within ``max_jump`` is silence the sender did not send (RFC 3551
  section 4.1, silence suppression) and is written as such.
* A packet that does not fit the stream (another SSRC, a sequence number outside RFC 3550
  appendix A.1's bounds, 100 behind or 3000 ahead, or a timestamp further than
  ``max_jump`` from the stream) is a stranger until the next packet confirms it (same
  SSRC, close sequence number and timestamp), as A.1's probation does: then what was
  waiting is written, the silence between the two streams is taken from the packets'
  arrival times (whole 20 ms frames, at most ``no_rtp_timeout``), and the new stream goes
  on from there. A lone stray packet never moves the timeline.

**Stopping.** Reasons are :class:`StopReason` values:

* ``DIGIT``: the first packet of an RFC 4733 event for a key in ``stop_digits`` (``#``),
  seen through :class:`~media.dtmf.DigitDetector` (repeats and the three end packets are
  one press); other keys are ignored. The message ends at the event's RTP timestamp, the
  instant the key went down (RFC 4733 section 2.5.1.2), so in-band tone leaking after it
  is cut, as far as it has not been taken yet; audio still missing just before the key
  is not written as silence. ``#`` by SIP INFO comes through
  :meth:`VoicemailRecorder.stop` with ``DIGIT`` and ends where the audio ends.
* ``MAX_LENGTH``: the message reaches ``max_length``; it is cut at exactly that sample.
* ``SILENCE``: ``silence_timeout`` seconds of audio in a row whose every packet is below
  the threshold (silence written for lost audio counts too). That trailing silence is
  trimmed from the message: it is held back from :meth:`VoicemailRecorder.take` while it
  lasts and dropped when the timeout is reached (a loud packet releases it).
* ``NO_RTP``: no RTP packet at all for ``no_rtp_timeout`` seconds (from the start, or
  the last packet), on :meth:`VoicemailRecorder.check`.
* ``HANGUP``: :meth:`VoicemailRecorder.stop`. Audio still waiting for reordering is written
  first; if that audio reaches a limit, the limit's reason is returned instead (it came
  first in audio time).

**The level.** A packet is loud when the RMS of its samples reaches
``silence_threshold_dbfs``, in dB relative to a full-scale square wave (RMS 32768, so a
full-scale sine is -3 dBFS); the default -45 dBFS is an amplitude of about 184, near
Asterisk's ``silencethreshold`` of 128. Each sample's power is capped at 16 times the
threshold's (+12 dB), so a lone click does not make a packet loud. It is computed on the
G.711 codes with one ``bytes.translate`` into a table of per-code power (in 1/16 of the
threshold power, at most 255) and one sum of those octets (:func:`_power`).

**Audio out.** The message is kept as G.711 codes (half the memory of PCM) and decoded to
16-bit PCM by :meth:`VoicemailRecorder.take` (what was released since the last take,
then forgotten: the shell appends it to its file) or :meth:`VoicemailRecorder.pcm` (the
whole message, for a caller that never takes). :attr:`VoicemailRecorder.duration` tells
the shell whether the message is long enough to keep.

**Cost per packet**, measured with ``timeit`` over 9,000 packets of 160-byte PCMU (180 s),
best of 7, on the project's 2-core VM with Python 3.11 (the VM wanders by 30%):

- in order, nearly every packet (one ``struct`` call, the inlined RFC 3550 appendix A.1
  arithmetic, the level, a list append): 3.6 us; 2.5 us with silence detection off;
- :meth:`VoicemailRecorder.take` once a second adds 0.9 us a packet (one decode per run);
- every packet arriving swapped with its neighbour: 6.9 us a packet.

So 200 recordings (10,000 packets/s) cost about 45 ms of CPU a second, under 5% of a core,
beside the socket reads of the shell (about 14 us a packet with uvloop, PEERS.md).

Inputs: feed (per packet), check (timer), stop (call layer); take, pcm (results).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Final, NamedTuple

from media.dtmf import DigitDetector, DtmfError, parse_event
from media.g711 import alaw_to_linear, ulaw_to_linear
from media.rtp import (
    FIXED_HEADER_SIZE,
    BytesLike,
    RtpError,
    is_rtcp,
    parse_header,
    seq_diff,
    ts_diff,
)

RATE: Final = 8000
FRAME_SAMPLES: Final = 160
PTIME: Final = 0.02
PCMU: Final = 0  # RFC 3551 section 6, table 4: static payload types
PCMA: Final = 8

# RFC 3550 appendix A.1: how far a sequence number may stray and still be the same stream.
MAX_DROPOUT: Final = 3000
MAX_MISORDER: Final = 100

_read_fixed: Final = struct.Struct("!BBHII").unpack_from  # RFC 3550 section 5.1
_PLAIN_FIRST_OCTET: Final = 0x80  # V=2, no padding, no extension, no CSRC
_SEQ_MASK: Final = 0xFFFF
_SEQ_HALF: Final = 0x8000
_TS_MASK: Final = 0xFFFF_FFFF
_TS_HALF: Final = 0x8000_0000

_DECODERS: Final[dict[int, Callable[[BytesLike], bytes]]] = {
    PCMU: ulaw_to_linear,
    PCMA: alaw_to_linear,
}
# Per-code power in units of 1/16 of the threshold power, capped at one octet (+12 dB).
_LEVEL_UNIT: Final = 16
_LEVEL_CAP: Final = 255
_FULL_SCALE: Final = 32768.0
_ADLER_EXACT: Final = 65520 // _LEVEL_CAP  # octets whose sum stays below Adler-32's modulus

# A message chunk: G.711 codes as received, or a count of silent samples written for audio
# that never came (decoded to zeros, since PCMA has no code for zero).
_Chunk = bytes | int


class StopReason(Enum):
    """Why a recording ended."""

    HANGUP = "hangup"
    DIGIT = "digit"
    MAX_LENGTH = "max_length"
    SILENCE = "silence"
    NO_RTP = "no_rtp"


@dataclass(frozen=True, slots=True, kw_only=True)
class Stop:
    """The recording ended; ``digit`` is the key for ``DIGIT``."""

    reason: StopReason
    digit: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecorderSettings:
    """Limits of one recording, in seconds; ``silence_timeout=None`` turns silence off.

    ``reorder_window`` bounds how far ahead audio may arrive and still be put in order
    (the stop decisions wait for it only while a packet is missing); ``max_jump`` is the
    largest timestamp step taken as the sender's own (silence suppression) rather than a
    discontinuity of the stream.
    """

    max_length: float = 180.0
    silence_timeout: float | None = 10.0
    silence_threshold_dbfs: float = -45.0
    no_rtp_timeout: float = 10.0
    stop_digits: str = "#"
    reorder_window: float = 0.2
    max_jump: float = 1.0

    def __post_init__(self) -> None:
        if self.max_length <= 0 or self.no_rtp_timeout <= 0:
            raise ValueError("max_length and no_rtp_timeout must be positive")
        if self.silence_timeout is not None and self.silence_timeout <= 0:
            raise ValueError(f"silence_timeout {self.silence_timeout}: positive, or None")
        if not self.silence_threshold_dbfs < 0:
            raise ValueError(f"silence threshold {self.silence_threshold_dbfs} dBFS: below 0")
        if self.reorder_window < 0 or self.max_jump < self.reorder_window:
            raise ValueError("reorder_window must be >= 0 and max_jump >= reorder_window")


class _Packet(NamedTuple):
    """An audio packet held on probation (a possible new stream) until the next confirms."""

    ssrc: int
    sequence_number: int
    timestamp: int
    codes: bytes
    arrived_at: float


def _power(levels: bytes) -> int:
    """The sum of the octets of ``levels``: Adler-32's first half (RFC 1950 section 8) is
    1 + that sum modulo 65521, exact up to 256 octets (a 32 ms packet), and one C call
    where ``sum()`` takes 1.6 us for a 20 ms packet on the project's VM."""
    if len(levels) <= _ADLER_EXACT:
        return (zlib.adler32(levels) & 0xFFFF) - 1
    return sum(levels)


def _level_table(payload_type: int, threshold_dbfs: float) -> bytes:
    """Code -> that sample's power in 1/16 of the threshold power, capped at 255."""
    decoded = memoryview(_DECODERS[payload_type](bytes(range(256)))).cast("h")
    threshold = _FULL_SCALE * 10 ** (threshold_dbfs / 20)
    scale = _LEVEL_UNIT / (threshold * threshold)
    return bytes(min(_LEVEL_CAP, round(value * value * scale)) for value in decoded)


class VoicemailRecorder:
    """One voicemail recording from the caller's RTP.

    ``payload_type`` is the negotiated audio, 0 (PCMU) or 8 (PCMA);
    ``event_payload_type`` the negotiated telephone-event (RFC 4733), or ``None``; ``now``
    is when recording begins (after the beep): the no-RTP timeout counts from it.
    """

    __slots__ = (
        "_base_position",
        "_base_timestamp",
        "_behind",
        "_candidate",
        "_decode",
        "_detector",
        "_end",
        "_event_payload_type",
        "_event_ssrc",
        "_furthest",
        "_heard_at",
        "_held",
        "_highest_seq",
        "_last_arrival",
        "_level",
        "_max_jump",
        "_max_samples",
        "_no_rtp_samples",
        "_no_rtp_timeout",
        "_payload_type",
        "_pending",
        "_ready",
        "_samples",
        "_silence_samples",
        "_silent_run",
        "_ssrc",
        "_stop_digits",
        "_taken",
        "_window",
        "stopped",
    )

    def __init__(
        self,
        *,
        payload_type: int,
        event_payload_type: int | None,
        now: float,
        settings: RecorderSettings | None = None,
    ) -> None:
        decode = _DECODERS.get(payload_type)
        if decode is None:
            raise ValueError(f"payload type {payload_type}: only PCMU (0) and PCMA (8)")
        if event_payload_type == payload_type:
            raise ValueError(f"audio and telephone-event both on payload type {payload_type}")
        limits = settings if settings is not None else RecorderSettings()
        self._payload_type = payload_type
        self._event_payload_type = event_payload_type
        self._decode = decode
        self._max_samples = round(limits.max_length * RATE)
        # Without a silence timeout there is no level to compute and no run to hold back.
        self._level: bytes | None = None
        self._silence_samples = self._max_samples + 1
        if limits.silence_timeout is not None:
            self._level = _level_table(payload_type, limits.silence_threshold_dbfs)
            self._silence_samples = round(limits.silence_timeout * RATE)
        self._window = round(limits.reorder_window * RATE)
        self._max_jump = round(limits.max_jump * RATE)
        self._behind = self._window + self._max_jump  # how far back a packet still fits
        self._no_rtp_timeout = limits.no_rtp_timeout
        self._no_rtp_samples = round(limits.no_rtp_timeout * RATE)
        self._stop_digits = frozenset(limits.stop_digits.upper())
        # The stream being recorded: position = base_position + ts_diff(ts, base_timestamp).
        self._ssrc: int | None = None
        self._highest_seq = 0
        self._base_timestamp = 0
        self._base_position = 0
        self._last_arrival = now
        self._candidate: _Packet | None = None
        # The timeline: audio up to _end is written; _pending waits for what comes before it.
        self._end: int | None = None
        self._furthest = 0
        self._pending: dict[int, bytes] = {}
        # The message: _ready is released to take(); _held is the current silent run.
        self._samples = 0
        self._ready: list[_Chunk] = []
        self._held: list[_Chunk] = []
        self._silent_run = 0
        self._taken = False
        self._detector = DigitDetector()
        self._event_ssrc: int | None = None
        self._heard_at = now
        self.stopped: Stop | None = None

    # --- results ---------------------------------------------------------------------------

    @property
    def duration(self) -> float:
        """Seconds of audio released so far (taken or not); the message's length once stopped."""
        return (self._samples - self._silent_run) / RATE

    def take(self) -> bytes:
        """The 16-bit PCM released since the last take (and forget it): append it to a file.

        Audio still waiting for reordering, and a silent run that may yet be trimmed, are
        not released yet; after the :class:`Stop`, one more take gives the rest.
        """
        chunks, self._ready = self._ready, []
        self._taken = True
        return self._to_pcm(chunks)

    def pcm(self) -> bytes:
        """The whole message released so far as 16-bit PCM (all of it once stopped).

        For callers that never :meth:`take`; raises ``RuntimeError`` after a take, since the
        audio taken is no longer kept.
        """
        if self._taken:
            raise RuntimeError("pcm() after take(): the audio taken is no longer kept")
        return self._to_pcm(self._ready)

    def _to_pcm(self, chunks: list[_Chunk]) -> bytes:
        """Decode, joining consecutive code chunks first: one decode call per run."""
        parts: list[bytes] = []
        run: list[bytes] = []
        for chunk in chunks:
            if isinstance(chunk, int):
                if run:
                    parts.append(self._decode(b"".join(run)))
                    run = []
                parts.append(bytes(2 * chunk))
            else:
                run.append(chunk)
        if run:
            parts.append(self._decode(b"".join(run)))
        return b"".join(parts)

    # --- inputs ----------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`check` would stop for want of RTP; ``None`` once stopped."""
        return None if self.stopped is not None else self._heard_at + self._no_rtp_timeout

    def check(self, now: float) -> Stop | None:
        """The timer: stop with ``NO_RTP`` when no RTP came for ``no_rtp_timeout``."""
        if self.stopped is None and now >= self._heard_at + self._no_rtp_timeout:
            return self._finish(StopReason.NO_RTP, None, None)
        return None

    def stop(self, reason: StopReason, *, digit: str | None = None) -> Stop:
        """End the recording (``HANGUP``; ``DIGIT`` for ``#`` by SIP INFO). Audio waiting
        for reordering is written first. Returns the :class:`Stop` that ended it, which is
        the earlier one if the recording had stopped already."""
        if self.stopped is not None:
            return self.stopped
        return self._finish(reason, digit, None)

    def feed(self, data: BytesLike, now: float) -> Stop | None:
        """Take one datagram from the caller's RTP port; a :class:`Stop` if it ended the
        recording. Invalid packets, RTCP and payload types other than the two negotiated
        are ignored (any RTP still counts as the caller being there)."""
        if self.stopped is not None or len(data) < FIXED_HEADER_SIZE:
            return None
        # One struct call reads the fixed header (RFC 3550 section 5.1); parse_header, with
        # its CSRC, extension and padding checks, only runs when the first octet says any of
        # them is present (plain G.711 from phones has 0x80: V=2 and nothing else).
        first, second, seq, timestamp, ssrc = _read_fixed(data)
        payload_type = second & 0x7F
        if payload_type == self._payload_type:
            if first == _PLAIN_FIRST_OCTET:
                codes = bytes(data[FIXED_HEADER_SIZE:])
            else:
                try:
                    header = parse_header(data)
                except RtpError:
                    return None
                start = header.payload_offset
                codes = bytes(data[start : start + header.payload_length])
            self._heard_at = now
            if not codes:
                return None
            if ssrc == self._ssrc:
                # seq_diff and ts_diff of media.rtp, inlined: this runs for every packet.
                ahead = ((seq - self._highest_seq + _SEQ_HALF) & _SEQ_MASK) - _SEQ_HALF
                if -MAX_MISORDER <= ahead <= MAX_DROPOUT:
                    offset = ((timestamp - self._base_timestamp + _TS_HALF) & _TS_MASK) - _TS_HALF
                    position = self._base_position + offset
                    in_order = position == self._end and not self._pending
                    if in_order or -self._behind <= position - self._furthest <= self._max_jump:
                        self._candidate = None  # the stream goes on: a candidate was a stray
                        if ahead > 0:
                            self._highest_seq = seq
                        self._last_arrival = now
                        if in_order:
                            self._furthest = position + len(codes)
                            return self._commit(codes)
                        return self._place(position, codes)
            return self._on_stranger(_Packet(ssrc, seq, timestamp, codes, now))
        if is_rtcp(data):
            return None
        try:
            header = parse_header(data)
        except RtpError:
            return None
        self._heard_at = now
        if payload_type == self._event_payload_type:
            return self._on_event(ssrc, timestamp, header.payload(data))
        return None

    # --- the timeline ----------------------------------------------------------------------

    def _on_stranger(self, packet: _Packet) -> Stop | None:
        """A packet that does not fit the stream: the first of a new one, or a stray."""
        if self._ssrc is None:  # the very first packet starts the timeline at 0
            self._anchor(packet, 0, packet.sequence_number, packet.arrived_at)
            return self._place(0, packet.codes)
        candidate = self._candidate
        if candidate is None or not self._confirms(candidate, packet):
            self._candidate = packet
            return None
        self._candidate = None
        stop = self._flush(None)
        if stop is not None:
            return stop
        first, second = (
            (candidate, packet)
            if ts_diff(packet.timestamp, candidate.timestamp) >= 0
            else (packet, candidate)
        )
        # The silence between the streams, from arrival times: frames missed between the old
        # stream's last packet and the new one's start (its first packet's arrival, or
        # earlier if the second came first), bounded by the no-RTP timeout.
        started_at = min(
            first.arrived_at,
            second.arrived_at - ts_diff(second.timestamp, first.timestamp) / RATE,
        )
        frames = round((started_at - self._last_arrival) / PTIME) - 1
        gap = min(max(frames, 0) * FRAME_SAMPLES, self._no_rtp_samples)
        if gap:
            stop = self._commit_silence(gap)
            if stop is not None:
                return stop
        end = self._end if self._end is not None else 0
        highest = max(
            first, second, key=lambda each: seq_diff(each.sequence_number, first.sequence_number)
        )
        self._anchor(first, end, highest.sequence_number, packet.arrived_at)
        for each in (first, second):
            position = end + ts_diff(each.timestamp, first.timestamp)
            stop = self._place(position, each.codes)
            if stop is not None:
                return stop
        return None

    def _confirms(self, candidate: _Packet, packet: _Packet) -> bool:
        """Whether ``packet`` is another packet of ``candidate``'s stream (RFC 3550
        appendix A.1's probation, with reordering and some loss allowed)."""
        seq_apart = abs(seq_diff(packet.sequence_number, candidate.sequence_number))
        ts_apart = abs(ts_diff(packet.timestamp, candidate.timestamp))
        return (
            packet.ssrc == candidate.ssrc
            and 0 < seq_apart <= MAX_MISORDER
            and ts_apart <= self._max_jump
        )

    def _anchor(self, first: _Packet, position: int, highest_seq: int, now: float) -> None:
        """Follow the stream of ``first`` from now on, ``first`` at ``position``."""
        self._ssrc = first.ssrc
        self._base_timestamp = first.timestamp
        self._base_position = position
        self._highest_seq = highest_seq
        self._furthest = position
        self._last_arrival = now

    def _place(self, position: int, codes: bytes) -> Stop | None:
        """Put a packet's audio on the timeline: write it, or keep it until its turn."""
        stop_position = position + len(codes)
        end = self._end
        if end is not None:
            if stop_position <= end:
                return None  # a duplicate, or too late: that audio is written already
            if position < end:
                codes = codes[end - position :]
                position = end
        pending = self._pending
        if position in pending:
            return None
        pending[position] = codes
        self._furthest = max(self._furthest, stop_position)
        if end is None:
            start = min(pending)
            if self._furthest - start <= self._window:
                return None  # the first window: an earlier packet may still come
            self._end = start
        return self._drain(flush=False, limit=None)

    def _drain(self, *, flush: bool, limit: int | None) -> Stop | None:
        """Write waiting audio in order. Missing audio is written as silence when ``flush`` is
        set, or as far as what waits spans more than the reorder window; nothing goes past
        ``limit``."""
        pending = self._pending
        while pending:
            position = min(pending)
            end = self._end
            assert end is not None  # set by _place or _flush before anything drains
            if limit is not None and position >= limit:
                pending.clear()
                break
            if position > end:
                # Missing audio: wait while what is here spans no more than the window;
                # past it, give up only as much as brings the span back to the window,
                # since a packet from the rest of the gap may still come in time.
                target = position if flush else min(position, self._furthest - self._window)
                if target <= end:
                    return None
                stop = self._commit_silence(target - end)
                if stop is not None:
                    return stop
                if target < position:
                    return None
                end = position
            codes = pending.pop(position)
            if position < end:  # overlapping packetisations
                codes = codes[end - position :]
            if limit is not None:
                codes = codes[: limit - end]
            if codes:
                stop = self._commit(codes)
                if stop is not None:
                    return stop
        return None

    def _flush(self, limit: int | None) -> Stop | None:
        """Write everything waiting, gaps as silence (the stream ended or changed)."""
        if self._end is None:
            if not self._pending:
                return None
            self._end = min(self._pending)
        return self._drain(flush=True, limit=limit)

    # --- the message -----------------------------------------------------------------------

    def _commit(self, codes: bytes) -> Stop | None:
        """Append received audio to the message (the per-packet path: keep it lean)."""
        count = len(codes)
        room = self._max_samples - self._samples
        if count > room:
            codes = codes[:room]
            count = room
        end = self._end
        assert end is not None  # the timeline has started before anything is written
        self._end = end + count
        self._samples += count
        level = self._level
        if level is None:
            self._ready.append(codes)
        elif _power(codes.translate(level)) >= count * _LEVEL_UNIT:
            if self._held:
                self._ready += self._held
                self._held = []
                self._silent_run = 0
            self._ready.append(codes)
        else:
            self._held.append(codes)
            self._silent_run += count
            if self._silent_run >= self._silence_samples:
                return self._end_with(Stop(reason=StopReason.SILENCE))
        if count == room:
            return self._end_with(Stop(reason=StopReason.MAX_LENGTH))
        return None

    def _commit_silence(self, count: int) -> Stop | None:
        """Append silence for audio that never came; it counts as silent for the timeout."""
        room = self._max_samples - self._samples
        count = min(count, room)
        end = self._end
        assert end is not None
        self._end = end + count
        self._samples += count
        if self._level is None:
            self._ready.append(count)
        else:
            self._held.append(count)
            self._silent_run += count
            if self._silent_run >= self._silence_samples:
                return self._end_with(Stop(reason=StopReason.SILENCE))
        if count == room:
            return self._end_with(Stop(reason=StopReason.MAX_LENGTH))
        return None

    def _end_with(self, stop: Stop) -> Stop:
        """The recording is over: the silent run is trimmed for SILENCE, else released."""
        if stop.reason is StopReason.SILENCE:
            self._samples -= self._silent_run
        else:
            self._ready += self._held
        self._held = []
        self._silent_run = 0
        self._pending.clear()
        self._candidate = None
        self.stopped = stop
        return stop

    def _finish(self, reason: StopReason, digit: str | None, cut: int | None) -> Stop:
        """Stop from outside the audio: write what waits (up to ``cut``), release the rest."""
        stop = self._flush(cut)
        if stop is not None:
            return stop
        if cut is not None and self._end is not None and cut < self._end:
            self._retract(self._end - cut)
        return self._end_with(Stop(reason=reason, digit=digit))

    def _retract(self, count: int) -> None:
        """Remove up to ``count`` samples from the end of the audio not yet taken."""
        for chunks in (self._held, self._ready):
            while count and chunks:
                last = chunks[-1]
                size = last if isinstance(last, int) else len(last)
                cut = min(size, count)
                if cut == size:
                    chunks.pop()
                elif isinstance(last, int):
                    chunks[-1] = last - cut
                else:
                    chunks[-1] = last[: size - cut]
                count -= cut
                self._samples -= cut
                if self._end is not None:
                    self._end -= cut
                if chunks is self._held:
                    self._silent_run -= cut

    # --- RFC 4733 --------------------------------------------------------------------------

    def _on_event(self, ssrc: int, timestamp: int, payload: BytesLike) -> Stop | None:
        try:
            event = parse_event(payload)
        except DtmfError:
            return None
        if ssrc != self._event_ssrc:
            self._detector.reset()
            self._event_ssrc = ssrc
        digit = self._detector.feed(timestamp, event)
        if digit is None or digit not in self._stop_digits:
            return None
        cut = None
        if ssrc == self._ssrc:
            # RFC 4733 section 2.5.1.2: the event's timestamp is when the key went down.
            position = self._base_position + ts_diff(timestamp, self._base_timestamp)
            if position >= self._furthest - self._behind:  # else not a time of this stream
                cut = position
        return self._finish(StopReason.DIGIT, digit, cut)
