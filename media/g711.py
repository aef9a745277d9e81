"""G.711 companding (ITU-T G.711, 11/1988): mu-law (PCMU) and A-law (PCMA) for 16-bit PCM.

Linear audio here is always signed 16-bit little-endian, 8 kHz mono: what :mod:`media.wav`
reads and writes. Every conversion is a table lookup built once at import, so a 20 ms frame
(160 codes, 320 bytes of PCM) costs one or two C calls:

- decoding translates the codes twice (low and high byte of each sample) and interleaves;
- transcoding PCMU <-> PCMA is a single ``bytes.translate``;
- encoding looks each sample up in a 65536-entry table indexed by the raw 16-bit value.

The results are bit-exact with the stdlib ``audioop`` (removed in Python 3.13): mu-law keeps
the top 14 bits of a sample and A-law the top 13 (``sample >> 2`` and ``sample >> 3``, rounding
towards minus infinity), as G.711 and the Sun reference coder that ``audioop`` follows do.
Transcoding is defined as decode-then-encode through those linear values, the composition an
``audioop`` user would write (``lin2alaw(ulaw2lin(x, 2), 2)``).
"""

from __future__ import annotations

import sys
from typing import Final, TypeAlias

BytesLike: TypeAlias = bytes | bytearray | memoryview

# G.711 section 2 (mu-law): codes are sent with every bit inverted; the magnitude is biased by
# 33 (in 14-bit units) so that the eight segments double in width exactly.
_ULAW_BIAS: Final = 33
_ULAW_CLIP: Final = 8159  # 8192 - 33: the largest magnitude that still lands in segment 7
# G.711 section 3 (A-law): even bits are inverted on the line (XOR 0x55).
_ALAW_INVERT: Final = 0x55


def _encode_ulaw(sample: int) -> int:
    """One signed 16-bit sample to its mu-law code."""
    value = sample >> 2  # G.711 mu-law works on 14-bit samples
    if value < 0:
        magnitude, sign = -value, 0x00
    else:
        magnitude, sign = value, 0x80
    biased = min(magnitude, _ULAW_CLIP) + _ULAW_BIAS  # 33..8192
    # Segment s holds biased magnitudes 32 << s .. (64 << s) - 1: found from the top bit.
    segment = biased.bit_length() - 6
    # biased == 8192 overflows segment 7: it takes that segment's top code.
    step = 0x7F if segment > 7 else (segment << 4) | ((biased >> (segment + 1)) & 0x0F)
    return sign | (step ^ 0x7F)


def _decode_ulaw(code: int) -> int:
    """One mu-law code to its signed 16-bit value (the segment's mid-point, scaled by 4)."""
    inverted = ~code & 0xFF
    segment = (inverted >> 4) & 0x07
    value = (((inverted & 0x0F) << 3) + (_ULAW_BIAS << 2)) << segment
    value -= _ULAW_BIAS << 2
    return -value if inverted & 0x80 else value


def _encode_alaw(sample: int) -> int:
    """One signed 16-bit sample to its A-law code."""
    value = sample >> 3  # G.711 A-law works on 13-bit samples
    # Negative values are coded by their ones' complement, so -1 shares segment 0 with 0.
    if value < 0:
        magnitude, sign = ~value, 0x00
    else:
        magnitude, sign = value, 0x80
    segment = max(magnitude.bit_length() - 5, 0)  # magnitude <= 4095: segment <= 7
    step = (segment << 4) | ((magnitude >> max(segment, 1)) & 0x0F)
    return (sign | step) ^ _ALAW_INVERT


def _decode_alaw(code: int) -> int:
    """One A-law code to its signed 16-bit value (the segment's mid-point, scaled by 8)."""
    plain = code ^ _ALAW_INVERT
    segment = (plain >> 4) & 0x07
    value = ((plain & 0x0F) << 4) + 8
    if segment:
        value = (value + 0x100) << (segment - 1)
    return value if plain & 0x80 else -value


def _decode_tables(decode: list[int]) -> tuple[bytes, bytes]:
    """Translate tables giving the low and the high byte of each code's little-endian value."""
    return (
        bytes(value & 0xFF for value in decode),
        bytes((value >> 8) & 0xFF for value in decode),
    )


def _encode_table(codes_by_top_bits: list[int], shift: int) -> list[int]:
    """Expand a table indexed by a sample's top ``16 - shift`` bits to all 65536 samples.

    The result is indexed by the sample's bytes read as a *native* unsigned 16-bit integer
    (``memoryview.cast("H")``), so on a big-endian host the index is byte-swapped here,
    once, instead of for every frame.
    """
    repeat = 1 << shift
    table = [code for code in codes_by_top_bits for _ in range(repeat)]
    if sys.byteorder == "big":
        table = [table[((raw & 0xFF) << 8) | (raw >> 8)] for raw in range(0x10000)]
    return table


def _signed(raw: int, bits: int) -> int:
    return raw - (1 << bits) if raw >> (bits - 1) else raw


_ULAW_DECODE: Final = [_decode_ulaw(code) for code in range(256)]
_ALAW_DECODE: Final = [_decode_alaw(code) for code in range(256)]
_ULAW_LOW, _ULAW_HIGH = _decode_tables(_ULAW_DECODE)
_ALAW_LOW, _ALAW_HIGH = _decode_tables(_ALAW_DECODE)
# A list of small ints, not bytes: list.__getitem__ is the faster lookup through map().
_ULAW_ENCODE: Final = _encode_table(
    [_encode_ulaw(_signed(top, 14) << 2) for top in range(1 << 14)], 2
)
_ALAW_ENCODE: Final = _encode_table(
    [_encode_alaw(_signed(top, 13) << 3) for top in range(1 << 13)], 3
)
_ULAW_TO_ALAW: Final = bytes(_encode_alaw(value) for value in _ULAW_DECODE)
_ALAW_TO_ULAW: Final = bytes(_encode_ulaw(value) for value in _ALAW_DECODE)


def _decode(data: BytesLike, low: bytes, high: bytes) -> bytes:
    codes = data.tobytes() if isinstance(data, memoryview) else data
    pcm = bytearray(2 * len(codes))
    pcm[0::2] = codes.translate(low)
    pcm[1::2] = codes.translate(high)
    return bytes(pcm)


def _encode(pcm: BytesLike, table: list[int]) -> bytes:
    if len(pcm) % 2:
        raise ValueError(f"{len(pcm)} bytes of 16-bit PCM: not a whole number of samples")
    return bytes(map(table.__getitem__, memoryview(pcm).cast("B").cast("H")))


def ulaw_to_linear(data: BytesLike) -> bytes:
    """Decode mu-law codes to signed 16-bit little-endian PCM (``audioop.ulaw2lin(data, 2)``)."""
    return _decode(data, _ULAW_LOW, _ULAW_HIGH)


def alaw_to_linear(data: BytesLike) -> bytes:
    """Decode A-law codes to signed 16-bit little-endian PCM (``audioop.alaw2lin(data, 2)``)."""
    return _decode(data, _ALAW_LOW, _ALAW_HIGH)


def linear_to_ulaw(pcm: BytesLike) -> bytes:
    """Encode signed 16-bit little-endian PCM as mu-law (``audioop.lin2ulaw(pcm, 2)``).

    Raises ``ValueError`` on an odd number of bytes.
    """
    return _encode(pcm, _ULAW_ENCODE)


def linear_to_alaw(pcm: BytesLike) -> bytes:
    """Encode signed 16-bit little-endian PCM as A-law (``audioop.lin2alaw(pcm, 2)``).

    Raises ``ValueError`` on an odd number of bytes.
    """
    return _encode(pcm, _ALAW_ENCODE)


def ulaw_to_alaw(data: BytesLike) -> bytes:
    """Transcode PCMU to PCMA in one ``bytes.translate``: ``linear_to_alaw(ulaw_to_linear(x))``."""
    return bytes(data).translate(_ULAW_TO_ALAW)


def alaw_to_ulaw(data: BytesLike) -> bytes:
    """Transcode PCMA to PCMU in one ``bytes.translate``: ``linear_to_ulaw(alaw_to_linear(x))``."""
    return bytes(data).translate(_ALAW_TO_ULAW)
