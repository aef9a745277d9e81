"""PromptPlayer: 16-bit PCM clips (a greeting, a beep) sent as a paced G.711 RTP stream.

The voicemail answers the caller itself, so for the prompts the switch is an RTP sender
(RFC 3550 section 5.1): its own SSRC, and a sequence number and timestamp that start at
random values (section 5.1: "SHOULD be random") drawn from the ``random.Random`` passed in.
Each packet carries 20 ms (160 samples at 8 kHz) of PCMU (payload type 0) or PCMA (8),
the static payload types of RFC 3551 section 6; the marker bit is set on the first packet
of the talkspurt (RFC 3551 section 4.1), that is the first packet a player sends.

Clips follow each other without a gap; a clip whose length is not a whole number of frames
has its last frame padded with silence, so the next clip starts on a frame boundary.

Pacing is an event-loop timer, as aioquic's ``get_timer``/``handle_timer``: the shell arms a
timer for :meth:`PromptPlayer.next_due` and, when it fires, sends what
:meth:`PromptPlayer.frames` returns. Packet ``k`` is due at ``start + k * 0.02``, computed
from ``k`` every time, so pacing never drifts; a loop that woke late gets every packet due
by then at once and is back on schedule with the next one.

G.711 encoding is the dear part in pure Python (a table lookup per sample): a
:class:`Clip` is encoded once per payload type and then only sliced, while plain PCM is
encoded packet by packet. Measured with ``timeit`` on the project's 2-core VM (Python 3.11),
per packet from :meth:`PromptPlayer.frames`: 2.4 us from a :class:`Clip`, 18 us from plain
PCM; encoding a 30 s greeting into a :class:`Clip` takes 25 ms (do it when loading prompts,
not on the event loop during a call); :func:`beep` of 0.5 s, 0.12 ms.

Inputs: next_due, frames (per timer), then (a new prompt on the same RTP stream).
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Callable, Sequence
from typing import Final

from media.g711 import linear_to_alaw, linear_to_ulaw
from media.rtp import BytesLike

RATE: Final = 8000
FRAME_SAMPLES: Final = 160  # 20 ms at 8 kHz: one G.711 packet (RFC 3551 section 4.5.14)
FRAME_BYTES: Final = 2 * FRAME_SAMPLES  # of 16-bit PCM
PTIME: Final = 0.02
PCMU: Final = 0  # RFC 3551 section 6, table 4: static payload types
PCMA: Final = 8

# An event loop may run a timer callback a little before its deadline (libuv and uvloop
# count in whole milliseconds); a packet due within this much of `now` is sent now rather
# than leaving the shell to re-arm a timer for an instant that has practically come.
EARLY_TOLERANCE: Final = 0.001

_ENCODERS: Final[dict[int, Callable[[BytesLike], bytes]]] = {
    PCMU: linear_to_ulaw,
    PCMA: linear_to_alaw,
}
# RFC 3550 section 5.1: V=2, no padding, no extension, no CSRC | M PT | seq | ts | SSRC.
_HEADER: Final = struct.Struct("!BBHII")
_FIRST_OCTET: Final = 0x80
_MARKER: Final = 0x80
_SEQ_MASK: Final = 0xFFFF
_TS_MASK: Final = 0xFFFF_FFFF
_FADE_SAMPLES: Final = 40  # 5 ms ramps at each end of a beep: no click when it starts or stops


def silence(seconds: float) -> bytes:
    """``seconds`` of digital silence as 16-bit PCM (rounded to whole samples)."""
    if seconds < 0:
        raise ValueError(f"{seconds} s of silence")
    return bytes(2 * round(seconds * RATE))


def silence_frames(count: int) -> bytes:
    """``count`` 20 ms frames of digital silence as 16-bit PCM (a pause between clips)."""
    if count < 0:
        raise ValueError(f"{count} frames of silence")
    return bytes(FRAME_BYTES * count)


def beep(frequency: float = 1000.0, seconds: float = 0.5, *, amplitude: float = 0.25) -> bytes:
    """A sine beep as 16-bit PCM at 8 kHz: ``amplitude`` of full scale (0.25 is about
    -15 dBFS RMS), with 5 ms linear ramps at both ends so it does not click.

    Only one period of the sine is computed (8 samples at 1000 Hz) and repeated, when the
    frequency divides into the sample rate; other frequencies are computed sample by sample.
    """
    if not 0 < frequency < RATE / 2:
        raise ValueError(f"{frequency} Hz: a beep must lie between 0 and 4000 Hz")
    if not 0 <= amplitude <= 1 or seconds < 0:
        raise ValueError(f"amplitude {amplitude}, {seconds} s")
    count = round(seconds * RATE)
    peak = amplitude * 32767
    step = 2 * math.pi * frequency / RATE
    period = RATE // math.gcd(int(frequency), RATE) if frequency == int(frequency) else count
    one_period = [round(peak * math.sin(step * index)) for index in range(min(period, count))]
    samples = (one_period * (count // period + 1))[:count] if one_period else []
    fade = min(_FADE_SAMPLES, count // 2)
    for index in range(fade):
        gain = index / fade
        samples[index] = round(samples[index] * gain)
        samples[count - 1 - index] = round(samples[count - 1 - index] * gain)
    return struct.pack(f"<{count}h", *samples)


class Clip:
    """A prompt's audio, 16-bit PCM, kept with its G.711 encodings once made.

    Encoding costs about 0.1 us per sample in pure Python (16 us per 20 ms packet on the
    project's VM), so a clip that many calls play (the beep, a mailbox greeting) is encoded
    once per payload type, on first use, and later players only slice it. Plain PCM
    ``bytes`` may be given to :class:`PromptPlayer` too; they are encoded packet by packet.
    """

    __slots__ = ("_codes", "pcm")

    def __init__(self, pcm: BytesLike) -> None:
        if len(pcm) % 2:
            raise ValueError(f"{len(pcm)} bytes of 16-bit PCM: not a whole number of samples")
        self.pcm = bytes(pcm)
        self._codes: dict[int, bytes] = {}

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.pcm) / (2 * RATE)

    def codes(self, payload_type: int) -> bytes:
        """The clip in PCMU (0) or PCMA (8), its last frame padded with silence to 20 ms."""
        codes = self._codes.get(payload_type)
        if codes is None:
            encode = _encoder(payload_type)
            padded = -(-len(self.pcm) // FRAME_BYTES) * FRAME_BYTES
            codes = self._codes[payload_type] = encode(self.pcm.ljust(padded, b"\x00"))
        return codes


def _encoder(payload_type: int) -> Callable[[BytesLike], bytes]:
    encode = _ENCODERS.get(payload_type)
    if encode is None:
        raise ValueError(f"payload type {payload_type}: only PCMU (0) and PCMA (8)")
    return encode


class PromptPlayer:
    """Sends clips as a paced G.711 RTP stream, one 20 ms packet at a time.

    ``clips`` are :class:`Clip` objects (encoded once, shared between calls) or plain
    16-bit little-endian mono 8 kHz PCM (kept by reference, encoded per packet);
    ``payload_type`` is 0 (PCMU) or 8 (PCMA); ``now`` is when the first packet is due.
    SSRC, first sequence number and first timestamp are drawn from ``rng``.
    """

    __slots__ = (
        "_clip",
        "_encode",
        "_marker",
        "_offset",
        "_payload_type",
        "_sent",
        "_sequence_number",
        "_sources",
        "_start",
        "_timestamp",
        "_total",
        "ssrc",
    )

    def __init__(
        self,
        clips: Sequence[Clip | BytesLike],
        *,
        payload_type: int,
        rng: random.Random,
        now: float,
    ) -> None:
        self._init(clips, payload_type, now)
        self.ssrc = rng.getrandbits(32)
        self._sequence_number = rng.getrandbits(16)
        self._timestamp = rng.getrandbits(32)

    def _init(self, clips: Sequence[Clip | BytesLike], payload_type: int, now: float) -> None:
        self._encode = _encoder(payload_type)
        # Each source is (data, is_encoded): G.711 codes of a Clip (160 bytes a frame, padded
        # already), or raw PCM (320 bytes a frame, the last one padded when it is sent).
        sources: list[tuple[memoryview, bool]] = []
        total = 0
        for clip in clips:
            if isinstance(clip, Clip):
                codes = clip.codes(payload_type)
                sources.append((memoryview(codes), True))
                total += len(codes) // FRAME_SAMPLES
            elif len(clip) % 2:
                raise ValueError(f"{len(clip)} bytes of 16-bit PCM: not a whole number of samples")
            else:
                sources.append((memoryview(clip).cast("B"), False))
                total += -(-len(clip) // FRAME_BYTES)
        self._sources = [(data, encoded) for data, encoded in sources if len(data)]
        self._total = total
        self._payload_type = payload_type
        self._clip = 0
        self._offset = 0
        self._sent = 0
        self._start = now
        self._marker = _MARKER

    def then(self, clips: Sequence[Clip | BytesLike], *, now: float) -> PromptPlayer:
        """A player for the next prompt on this same RTP stream, first packet due at ``now``.

        It keeps the SSRC, goes on from the next sequence number, and advances the
        timestamp by the time since this player's last packet in whole frames, at least
        one (RFC 3550 section 5.1: the timestamp follows the sampling clock, also across
        the pause); its first packet carries the marker bit (a new talkspurt). For a caller
        who skips the greeting, or a prompt after the recording, without a new SSRC.
        """
        follower = PromptPlayer.__new__(PromptPlayer)
        follower._init(clips, self._payload_type, now)
        follower.ssrc = self.ssrc
        follower._sequence_number = self._sequence_number
        follower._timestamp = self._timestamp  # the timestamp after this player's last packet
        if self._sent:
            last_due = self._start + (self._sent - 1) * PTIME
            skipped = max(1, round((now - last_due) / PTIME)) - 1
            follower._timestamp = (self._timestamp + skipped * FRAME_SAMPLES) & _TS_MASK
        return follower

    @property
    def finished(self) -> bool:
        """Whether every packet has been sent."""
        return self._sent >= self._total

    @property
    def duration(self) -> float:
        """Length of the whole prompt in seconds (whole frames)."""
        return self._total * PTIME

    @property
    def packets_sent(self) -> int:
        return self._sent

    def next_due(self) -> float | None:
        """When the next packet is due (``start + k * 0.02``), or ``None`` once finished."""
        if self._sent >= self._total:
            return None
        return self._start + self._sent * PTIME

    def frames(self, now: float) -> list[bytes]:
        """Every RTP packet due by ``now`` (several when the loop woke late), in order."""
        packets: list[bytes] = []
        limit = now + EARLY_TOLERANCE
        while self._sent < self._total and self._start + self._sent * PTIME <= limit:
            packets.append(self._next_packet())
        return packets

    def _next_payload(self) -> bytes:
        """The next frame's G.711 codes, moving on to the next clip after a clip's last frame."""
        data, is_encoded = self._sources[self._clip]
        start = self._offset
        end = start + (FRAME_SAMPLES if is_encoded else FRAME_BYTES)
        if end < len(data):
            self._offset = end
        else:
            self._clip += 1
            self._offset = 0
        if is_encoded:
            return data[start:end].tobytes()
        if end > len(data):  # the clip's last, partial frame: pad with silence
            return self._encode(data[start:].tobytes().ljust(FRAME_BYTES, b"\x00"))
        return self._encode(data[start:end])

    def _next_packet(self) -> bytes:
        header = _HEADER.pack(
            _FIRST_OCTET,
            self._payload_type | self._marker,
            self._sequence_number,
            self._timestamp,
            self.ssrc,
        )
        self._marker = 0
        self._sent += 1
        self._sequence_number = (self._sequence_number + 1) & _SEQ_MASK
        self._timestamp = (self._timestamp + FRAME_SAMPLES) & _TS_MASK
        return header + self._next_payload()
