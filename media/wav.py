"""WAV files for prompts, greetings and voicemail: 8 kHz mono 16-bit PCM only.

Reading and writing go through the stdlib :mod:`wave` over :class:`io.BytesIO`, so nothing
here touches a file: :mod:`media.prompts` reads the bytes, this module checks and unpacks them.
Audio users supply in another format is refused with a :class:`WavError` that says what the
file is, so the fix (``sox in.wav -r 8000 -c 1 -b 16 out.wav``) is obvious.

PCM is signed 16-bit little-endian, the layout of a WAV data chunk and of :mod:`media.g711`.

Recordings are written as they go (:class:`WavWriter`, on a binary stream the shell opened):
a header, then PCM appended, then the header rewritten with the final sizes. A writer that
died in between leaves a file whose header still says "no data"; :func:`header_for` gives
the 44 bytes to write over its start (:func:`repair_wav` does it on the bytes).
"""

from __future__ import annotations

import io
import struct
import sys
import wave
from array import array
from dataclasses import dataclass
from typing import BinaryIO, Final

RATE: Final = 8000
CHANNELS: Final = 1
SAMPLE_WIDTH: Final = 2
FRAME_BYTES: Final = 320  # 20 ms at 8 kHz, 16-bit: one RTP packet of G.711

_EXPECTED: Final = "expected 8000 Hz mono 16-bit PCM"
# Format tags from the RIFF fmt chunk (Microsoft "mmreg.h"), for naming what we refuse.
_FORMAT_NAMES: Final = {
    0x0001: "PCM",
    0x0002: "ADPCM",
    0x0003: "IEEE float",
    0x0006: "A-law",
    0x0007: "mu-law",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0055: "MP3",
    0xFFFE: "WAVE_FORMAT_EXTENSIBLE",
}
_RIFF_HEADER: Final = struct.Struct("<4sI4s")
_CHUNK_HEADER: Final = struct.Struct("<4sI")
# wFormatTag, nChannels, nSamplesPerSec, nAvgBytesPerSec, nBlockAlign, wBitsPerSample
_FMT: Final = struct.Struct("<HHIIHH")
# The canonical 44-byte header: RIFF, size, WAVE | "fmt ", 16, PCM fields | "data", size.
_CANONICAL: Final = struct.Struct("<4sI4s4sIHHIIHH4sI")
HEADER_SIZE: Final = _CANONICAL.size  # 44: where the PCM of a file from header_for begins
_MAX_DATA_BYTES: Final = 0xFFFF_FFFE - (HEADER_SIZE - 8)  # the RIFF size is 32 bits


class WavError(Exception):
    """WAV data we refuse, with the reason (what the file is, or what is broken in it)."""


@dataclass(frozen=True, slots=True)
class WavAudio:
    """Decoded WAV audio: ``frames`` is the raw data chunk (16-bit little-endian samples)."""

    rate: int
    channels: int
    sample_width: int
    frames: bytes

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.frames) / (self.rate * self.channels * self.sample_width)


def _describe(rate: int, channels: int, bits: int, encoding: str) -> str:
    layout = {1: "mono", 2: "stereo"}.get(channels, f"{channels}-channel")
    return f"{rate} Hz {layout} {bits}-bit {encoding}"


def _scan_fmt(data: bytes) -> str | None:
    """What the fmt chunk says the file is, for the error message; ``None`` if unreadable."""
    if len(data) < _RIFF_HEADER.size:
        return None
    riff, _, wave_id = _RIFF_HEADER.unpack_from(data)
    if riff != b"RIFF" or wave_id != b"WAVE":
        return None
    offset = _RIFF_HEADER.size
    while offset + _CHUNK_HEADER.size <= len(data):
        chunk_id, size = _CHUNK_HEADER.unpack_from(data, offset)
        offset += _CHUNK_HEADER.size
        if chunk_id == b"fmt ":
            if offset + _FMT.size > len(data):
                return None
            tag, channels, rate, _, _, bits = _FMT.unpack_from(data, offset)
            name = _FORMAT_NAMES.get(tag, f"format 0x{tag:04x}")
            return _describe(rate, channels, bits, name)
        offset += size + (size & 1)  # RIFF chunks are padded to an even length
    return None


def _failure_reason(data: bytes, exc: Exception) -> str:
    """Why :mod:`wave` refused ``data``: its format if the fmt chunk names one, else the damage."""
    found = _scan_fmt(data)
    if found is not None and found != _describe(RATE, CHANNELS, 8 * SAMPLE_WIDTH, "PCM"):
        return f"{_EXPECTED}, got {found}"
    if not data.startswith(b"RIFF"):
        return "not a WAV file: no RIFF header"
    if isinstance(exc, EOFError):
        return "truncated WAV file: a chunk header or the fmt chunk is cut short"
    if isinstance(exc, RuntimeError):
        return "malformed WAV file: a chunk runs past the end of the RIFF data"
    return f"malformed WAV file: {exc}"


def read_wav(data: bytes) -> WavAudio:
    """Unpack an 8 kHz mono 16-bit PCM WAV file held in ``data``.

    Raises :class:`WavError` for anything else, naming what was found, for example
    ``expected 8000 Hz mono 16-bit PCM, got 44100 Hz stereo 16-bit PCM``. A data chunk cut
    short is accepted up to its last whole sample (recorders killed mid-write leave those).
    """
    try:
        with wave.open(io.BytesIO(data), "rb") as reader:
            rate = reader.getframerate()
            channels = reader.getnchannels()
            width = reader.getsampwidth()
            frames = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError, RuntimeError) as exc:  # RuntimeError: a chunk past RIFF end
        raise WavError(_failure_reason(data, exc)) from exc
    if (rate, channels, width) != (RATE, CHANNELS, SAMPLE_WIDTH):
        raise WavError(f"{_EXPECTED}, got {_describe(rate, channels, 8 * width, 'PCM')}")
    if len(frames) % SAMPLE_WIDTH:
        frames = frames[:-1]
    if sys.byteorder == "big":  # wave hands out native-order samples; ours are little-endian
        frames = _byteswap(frames)
    return WavAudio(rate, channels, width, frames)


def write_wav(pcm: bytes, rate: int = RATE) -> bytes:
    """A mono 16-bit PCM WAV file holding ``pcm`` (signed 16-bit little-endian samples)."""
    if len(pcm) % SAMPLE_WIDTH:
        raise ValueError(f"{len(pcm)} bytes of 16-bit PCM: not a whole number of samples")
    if sys.byteorder == "big":  # wave expects native-order samples
        pcm = _byteswap(pcm)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(CHANNELS)
        writer.setsampwidth(SAMPLE_WIDTH)
        writer.setframerate(rate)
        writer.writeframes(pcm)
    return buffer.getvalue()


def to_frames(pcm: bytes, frame_bytes: int = FRAME_BYTES) -> list[bytes]:
    """Split ``pcm`` into frames of ``frame_bytes`` (20 ms by default), padding the last with
    silence (zero samples) so that every frame has the same length."""
    if frame_bytes <= 0:
        raise ValueError(f"frame size {frame_bytes}: must be positive")
    frames = [pcm[start : start + frame_bytes] for start in range(0, len(pcm), frame_bytes)]
    if frames and len(frames[-1]) < frame_bytes:
        frames[-1] = frames[-1].ljust(frame_bytes, b"\x00")
    return frames


def _byteswap(pcm: bytes) -> bytes:
    samples = array("h", pcm)
    samples.byteswap()
    return samples.tobytes()


def header_for(data_bytes: int, rate: int = RATE) -> bytes:
    """The 44-byte header of a mono 16-bit PCM WAV file whose data chunk holds
    ``data_bytes`` bytes, exactly as :func:`write_wav` writes it: ``header_for(len(pcm)) +
    pcm == write_wav(pcm)``. To finish or repair a file, write it over the first 44 bytes.
    """
    if data_bytes % SAMPLE_WIDTH or not 0 <= data_bytes <= _MAX_DATA_BYTES:
        raise ValueError(f"{data_bytes} bytes of 16-bit PCM: not a whole number of samples")
    block = CHANNELS * SAMPLE_WIDTH
    return _CANONICAL.pack(
        b"RIFF",
        HEADER_SIZE - 8 + data_bytes,
        b"WAVE",
        b"fmt ",
        _FMT.size,
        0x0001,  # PCM
        CHANNELS,
        rate,
        rate * block,
        block,
        8 * SAMPLE_WIDTH,
        b"data",
        data_bytes,
    )


def data_bytes_of(file_size: int) -> int:
    """How much PCM a file of ``file_size`` bytes from :class:`WavWriter` holds: everything
    after the header, down to a whole sample (a crash may cut one in half)."""
    data = max(file_size - HEADER_SIZE, 0)
    return min(data - data % SAMPLE_WIDTH, _MAX_DATA_BYTES)


def repair_wav(data: bytes) -> bytes:
    """A file written by :class:`WavWriter` (or :func:`write_wav`) whose writer may have died
    before fixing the header: the same audio with the sizes set from what is there, a half
    sample at the end dropped. Raises :class:`WavError` for a file not laid out that way."""
    if len(data) < HEADER_SIZE:
        raise WavError(f"{len(data)} bytes: shorter than a WAV header")
    fields = _CANONICAL.unpack_from(data)
    riff, _, wave_id, fmt_id, fmt_size, tag, channels, rate, _, _, bits, data_id, _ = fields
    layout = (riff, wave_id, fmt_id, fmt_size, data_id)
    if layout != (b"RIFF", b"WAVE", b"fmt ", _FMT.size, b"data"):
        raise WavError("not a WAV file with the 44-byte header this writer makes")
    if (tag, channels, bits) != (0x0001, CHANNELS, 8 * SAMPLE_WIDTH):
        raise WavError(f"{_EXPECTED}, got {_describe(rate, channels, bits, 'PCM')}")
    size = data_bytes_of(len(data))
    return header_for(size, rate) + data[HEADER_SIZE : HEADER_SIZE + size]


class WavWriter:
    """Writes a mono 16-bit PCM WAV file as the audio comes, on a binary ``stream`` the
    caller opened (seekable, positioned at 0; a file, or ``io.BytesIO``).

    The header goes out at once with an empty data chunk; :meth:`append` adds PCM at the
    end; :meth:`close` rewrites the header with the final sizes (the stream stays open,
    at its end). Until then the file reads as empty: after a crash, :func:`repair_wav`
    (or :func:`header_for` of :func:`data_bytes_of` the file size) recovers what was written.
    """

    __slots__ = ("_rate", "_stream", "data_bytes")

    def __init__(self, stream: BinaryIO, rate: int = RATE) -> None:
        self._stream = stream
        self._rate = rate
        self.data_bytes = 0
        stream.write(header_for(0, rate))

    def append(self, pcm: bytes) -> None:
        """Add signed 16-bit little-endian samples at the end of the data chunk."""
        if len(pcm) % SAMPLE_WIDTH:
            raise ValueError(f"{len(pcm)} bytes of 16-bit PCM: not a whole number of samples")
        if self.data_bytes + len(pcm) > _MAX_DATA_BYTES:
            raise ValueError("a WAV data chunk holds at most 4 GiB")
        self._stream.write(pcm)
        self.data_bytes += len(pcm)

    def close(self) -> None:
        """Set the sizes in the header; the stream is left at its end, not closed."""
        self._stream.seek(0)
        self._stream.write(header_for(self.data_bytes, self._rate))
        self._stream.seek(0, io.SEEK_END)
