"""G.711 tables: bit-exact with the stdlib audioop over every input, plus hand-checked values.

audioop is deprecated (removed in Python 3.13) and only serves here as the reference; it is
imported with its DeprecationWarning silenced, and the tests skip where it no longer exists.
"""

from __future__ import annotations

import struct
import sys
import warnings
from array import array

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.g711 import (
    alaw_to_linear,
    alaw_to_ulaw,
    linear_to_alaw,
    linear_to_ulaw,
    ulaw_to_alaw,
    ulaw_to_linear,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    # audioop, the independent reference these tables are compared with, left the
    # standard library in Python 3.13; the project runs on 3.11 (CI), where it is there.
    audioop = pytest.importorskip(
        "audioop", reason="the stdlib reference codec audioop is gone from Python 3.13 on"
    )

ALL_CODES = bytes(range(256))
ALL_SAMPLES = struct.pack("<65536h", *range(-32768, 32768))


def _little_endian(native: bytes) -> bytes:
    """audioop works in native byte order; ours is little-endian."""
    if sys.byteorder == "little":
        return native
    samples = array("h", native)
    samples.byteswap()
    return samples.tobytes()


NATIVE_SAMPLES = _little_endian(ALL_SAMPLES)  # the same swap both ways


def test_ulaw_decode_matches_audioop_for_all_256_codes() -> None:
    assert ulaw_to_linear(ALL_CODES) == _little_endian(audioop.ulaw2lin(ALL_CODES, 2))


def test_alaw_decode_matches_audioop_for_all_256_codes() -> None:
    assert alaw_to_linear(ALL_CODES) == _little_endian(audioop.alaw2lin(ALL_CODES, 2))


def test_ulaw_encode_matches_audioop_for_all_65536_samples() -> None:
    assert linear_to_ulaw(ALL_SAMPLES) == audioop.lin2ulaw(NATIVE_SAMPLES, 2)


def test_alaw_encode_matches_audioop_for_all_65536_samples() -> None:
    assert linear_to_alaw(ALL_SAMPLES) == audioop.lin2alaw(NATIVE_SAMPLES, 2)


def test_transcoding_is_decode_then_encode_through_audioop() -> None:
    assert ulaw_to_alaw(ALL_CODES) == audioop.lin2alaw(audioop.ulaw2lin(ALL_CODES, 2), 2)
    assert alaw_to_ulaw(ALL_CODES) == audioop.lin2ulaw(audioop.alaw2lin(ALL_CODES, 2), 2)


@pytest.mark.parametrize(
    ("code", "value"),
    [
        (0xFF, 0),  # mu-law +0
        (0x7F, 0),  # mu-law -0
        (0x80, 32124),  # largest positive
        (0x00, -32124),  # largest negative
        (0xFE, 8),  # smallest step: 2 * 4 in 16-bit units
        (0xEF, 132),  # first step of segment 1: (33 * 4) << 1, less the bias 132
    ],
)
def test_ulaw_known_values(code: int, value: int) -> None:
    assert struct.unpack("<h", ulaw_to_linear(bytes([code]))) == (value,)


@pytest.mark.parametrize(
    ("code", "value"),
    [
        (0xD5, 8),  # A-law smallest positive (no zero code)
        (0x55, -8),
        (0xAA, 32256),  # largest positive
        (0x2A, -32256),
        (0x80, 5504),
    ],
)
def test_alaw_known_values(code: int, value: int) -> None:
    assert struct.unpack("<h", alaw_to_linear(bytes([code]))) == (value,)


def test_silence_encodes_to_the_idle_codes() -> None:
    assert linear_to_ulaw(bytes(320)) == b"\xff" * 160
    assert linear_to_alaw(bytes(320)) == b"\xd5" * 160


def test_every_code_survives_decode_then_encode() -> None:
    assert linear_to_alaw(alaw_to_linear(ALL_CODES)) == ALL_CODES
    # mu-law has two zeros; -0 (0x7F) decodes to 0 and comes back as +0 (0xFF).
    assert (
        linear_to_ulaw(ulaw_to_linear(ALL_CODES)) == ALL_CODES[:0x7F] + b"\xff" + ALL_CODES[0x80:]
    )


def test_a_frame_is_160_codes_to_320_bytes() -> None:
    frame = bytes(range(160))
    assert len(ulaw_to_linear(frame)) == 320
    assert len(alaw_to_linear(frame)) == 320
    assert len(ulaw_to_alaw(frame)) == 160


def test_empty_input() -> None:
    for convert in (ulaw_to_linear, alaw_to_linear, linear_to_ulaw, linear_to_alaw):
        assert convert(b"") == b""
    assert ulaw_to_alaw(b"") == alaw_to_ulaw(b"") == b""


def test_odd_length_pcm_is_refused() -> None:
    with pytest.raises(ValueError, match="not a whole number of samples"):
        linear_to_ulaw(b"\x00\x01\x02")
    with pytest.raises(ValueError, match="not a whole number of samples"):
        linear_to_alaw(b"\x00")


@given(st.binary(max_size=400).filter(lambda data: len(data) % 2 == 0))
def test_bytearray_and_memoryview_inputs_give_bytes(data: bytes) -> None:
    for convert in (ulaw_to_linear, alaw_to_linear, linear_to_ulaw, linear_to_alaw):
        expected = convert(data)
        assert type(expected) is bytes
        assert convert(bytearray(data)) == expected
        assert convert(memoryview(data)) == expected
    for transcode in (ulaw_to_alaw, alaw_to_ulaw):
        assert transcode(memoryview(data)) == transcode(bytearray(data)) == transcode(data)


@given(st.binary(max_size=400).filter(lambda data: len(data) % 2 == 0))
def test_random_frames_match_audioop(data: bytes) -> None:
    native = _little_endian(data)
    assert linear_to_ulaw(data) == audioop.lin2ulaw(native, 2)
    assert linear_to_alaw(data) == audioop.lin2alaw(native, 2)
    assert ulaw_to_linear(data) == _little_endian(audioop.ulaw2lin(data, 2))
    assert alaw_to_linear(data) == _little_endian(audioop.alaw2lin(data, 2))
