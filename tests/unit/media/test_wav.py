"""WAV: a hand-written golden file, round trips, clear refusals, 20 ms framing."""

from __future__ import annotations

import contextlib
import io
import struct
import wave

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.wav import (
    HEADER_SIZE,
    WavAudio,
    WavError,
    WavWriter,
    data_bytes_of,
    header_for,
    read_wav,
    repair_wav,
    to_frames,
    write_wav,
)

# RIFF, 40 bytes follow, WAVE; fmt chunk of 16: PCM, mono, 8000 Hz, 16000 bytes/s, block 2,
# 16 bits; data chunk of 4: samples +1 and -1.
GOLDEN = bytes.fromhex(
    "52494646 28000000 57415645"
    "666d7420 10000000 0100 0100 401f0000 803e0000 0200 1000"
    "64617461 04000000 0100 ffff"
)


def _wav(rate: int, channels: int, width: int, frames: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(frames)
    return buffer.getvalue()


def _wav_with_format(tag: int, rate: int, channels: int, bits: int, data: bytes = b"") -> bytes:
    """A WAV whose fmt chunk names another encoding (the stdlib writes PCM only)."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits) + b"\0\0"
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"fact" + struct.pack("<II", 4, len(data) // max(block, 1))
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_golden_file_reads() -> None:
    assert read_wav(GOLDEN) == WavAudio(
        rate=8000, channels=1, sample_width=2, frames=b"\x01\x00\xff\xff"
    )


def test_write_gives_the_golden_file() -> None:
    assert write_wav(b"\x01\x00\xff\xff") == GOLDEN


@given(st.binary(max_size=2000).map(lambda data: data[: len(data) // 2 * 2]))
def test_round_trip(pcm: bytes) -> None:
    audio = read_wav(write_wav(pcm))
    assert audio.frames == pcm
    assert (audio.rate, audio.channels, audio.sample_width) == (8000, 1, 2)


def test_duration() -> None:
    assert read_wav(write_wav(bytes(16000))).duration == 1.0


def test_empty_audio_is_valid() -> None:
    assert read_wav(write_wav(b"")).frames == b""


def test_write_refuses_half_samples() -> None:
    with pytest.raises(ValueError, match="whole number of samples"):
        write_wav(b"\x00\x00\x00")


def test_write_at_another_rate() -> None:
    with pytest.raises(WavError, match="got 16000 Hz mono 16-bit PCM"):
        read_wav(write_wav(bytes(4), rate=16000))


def test_truncated_data_chunk_keeps_whole_samples() -> None:
    audio = read_wav(write_wav(b"\x01\x00\x02\x00\x03\x00")[:-1])
    assert audio.frames == b"\x01\x00\x02\x00"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            _wav(44100, 2, 2, bytes(8)),
            "expected 8000 Hz mono 16-bit PCM, got 44100 Hz stereo 16-bit PCM",
            id="cd-audio",
        ),
        pytest.param(
            _wav(16000, 1, 2),
            "expected 8000 Hz mono 16-bit PCM, got 16000 Hz mono 16-bit PCM",
            id="wideband",
        ),
        pytest.param(
            _wav(8000, 2, 2),
            "expected 8000 Hz mono 16-bit PCM, got 8000 Hz stereo 16-bit PCM",
            id="stereo",
        ),
        pytest.param(_wav(8000, 6, 2), "got 8000 Hz 6-channel 16-bit PCM", id="surround"),
        pytest.param(_wav(8000, 1, 1), "got 8000 Hz mono 8-bit PCM", id="8-bit"),
        pytest.param(_wav(8000, 1, 3), "got 8000 Hz mono 24-bit PCM", id="24-bit"),
        pytest.param(
            _wav_with_format(7, 8000, 1, 8, b"\xff" * 8),
            "expected 8000 Hz mono 16-bit PCM, got 8000 Hz mono 8-bit mu-law",
            id="mu-law",
        ),
        pytest.param(
            _wav_with_format(6, 8000, 1, 8, b"\xd5" * 8), "got 8000 Hz mono 8-bit A-law", id="a-law"
        ),
        pytest.param(
            _wav_with_format(3, 48000, 2, 32, bytes(16)),
            "got 48000 Hz stereo 32-bit IEEE float",
            id="float",
        ),
        pytest.param(
            _wav_with_format(0x1234, 8000, 1, 4, bytes(4)),
            "got 8000 Hz mono 4-bit format 0x1234",
            id="unknown-format",
        ),
        pytest.param(b"ID3\x04\x00" + bytes(40), "not a WAV file: no RIFF header", id="mp3"),
        pytest.param(b"", "not a WAV file", id="empty"),
        pytest.param(GOLDEN[:4] + GOLDEN[4:8] + b"AVI " + GOLDEN[12:], "not a WAVE file", id="avi"),
        pytest.param(GOLDEN[:20], "truncated WAV file", id="cut-in-fmt"),
        pytest.param(GOLDEN[:36], "fmt chunk and/or data chunk missing", id="no-data-chunk"),
        pytest.param(
            GOLDEN[:12] + GOLDEN[36:] + GOLDEN[12:36],
            "data chunk before fmt chunk",
            id="data-first",
        ),
    ],
)
def test_refusals_say_why(data: bytes, message: str) -> None:
    with pytest.raises(WavError, match=message):
        read_wav(data)


@given(st.binary(max_size=100))
def test_arbitrary_bytes_raise_only_wav_error(data: bytes) -> None:
    with contextlib.suppress(WavError):
        read_wav(data)


@given(st.lists(st.tuples(st.integers(0, len(GOLDEN) - 1), st.integers(0, 255)), max_size=4))
def test_damaged_headers_raise_only_wav_error(damage: list[tuple[int, int]]) -> None:
    data = bytearray(GOLDEN + bytes(40))
    for index, value in damage:
        data[index] = value
    with contextlib.suppress(WavError):
        read_wav(bytes(data))


def test_frames_of_20_ms_with_the_last_padded() -> None:
    pcm = bytes(range(256)) * 3  # 768 bytes: 2 full frames and 128 bytes
    frames = to_frames(pcm)
    assert [len(frame) for frame in frames] == [320, 320, 320]
    assert b"".join(frames)[:768] == pcm
    assert frames[-1][128:] == bytes(192)


def test_frames_exact_multiple_is_not_padded() -> None:
    assert to_frames(bytes(640)) == [bytes(320), bytes(320)]


def test_frames_of_nothing() -> None:
    assert to_frames(b"") == []


def test_frames_of_another_size() -> None:
    assert to_frames(b"\x01\x02\x03", frame_bytes=2) == [b"\x01\x02", b"\x03\x00"]
    with pytest.raises(ValueError, match="must be positive"):
        to_frames(b"\x00", frame_bytes=0)


# --- writing as the audio comes, and repairing after a crash ------------------------------


def test_header_for_is_the_golden_header() -> None:
    assert header_for(4) == GOLDEN[:HEADER_SIZE]
    assert HEADER_SIZE == 44


@given(st.binary(max_size=2000).map(lambda data: data[: len(data) // 2 * 2]))
def test_header_for_matches_write_wav(pcm: bytes) -> None:
    assert header_for(len(pcm)) + pcm == write_wav(pcm)


def test_header_for_refuses_half_samples_and_4_gib() -> None:
    with pytest.raises(ValueError, match="whole number of samples"):
        header_for(3)
    with pytest.raises(ValueError, match="whole number of samples"):
        header_for(1 << 32)
    assert header_for(16000, rate=16000)[24:28] == struct.pack("<I", 16000)


def test_writer_appends_then_fixes_the_header() -> None:
    stream = io.BytesIO()
    writer = WavWriter(stream)
    assert stream.getvalue() == header_for(0)
    writer.append(b"\x01\x00")
    writer.append(b"")
    writer.append(b"\xff\xff")
    assert writer.data_bytes == 4
    writer.close()
    assert stream.getvalue() == GOLDEN
    stream.write(b"")  # left at the end, still open
    assert stream.tell() == len(GOLDEN)


def test_writer_refuses_half_samples() -> None:
    writer = WavWriter(io.BytesIO())
    with pytest.raises(ValueError, match="whole number of samples"):
        writer.append(b"\x00")


def test_a_file_whose_writer_died_reads_empty_until_repaired() -> None:
    stream = io.BytesIO()
    writer = WavWriter(stream)
    writer.append(b"\x01\x00\x02\x00")
    writer.append(b"\x03\x00")
    crashed = stream.getvalue() + b"\x04"  # killed in the middle of a sample
    assert read_wav(crashed).frames == b""
    repaired = repair_wav(crashed)
    assert repaired == write_wav(b"\x01\x00\x02\x00\x03\x00")
    assert read_wav(repaired).frames == b"\x01\x00\x02\x00\x03\x00"


def test_repair_by_rewriting_the_first_44_bytes() -> None:
    """What the shell does on a file: header_for(data_bytes_of(size)) over its start."""
    stream = io.BytesIO()
    WavWriter(stream).append(bytes(range(10)))
    data = bytearray(stream.getvalue())
    data[:HEADER_SIZE] = header_for(data_bytes_of(len(data)))
    assert read_wav(bytes(data)).frames == bytes(range(10))


def test_data_bytes_of() -> None:
    assert data_bytes_of(0) == 0
    assert data_bytes_of(44) == 0
    assert data_bytes_of(45) == 0
    assert data_bytes_of(48) == 4


def test_repair_of_a_complete_file_changes_nothing() -> None:
    assert repair_wav(GOLDEN) == GOLDEN


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(GOLDEN[:40], "shorter than a WAV header", id="short"),
        pytest.param(b"RIFX" + GOLDEN[4:], "44-byte header", id="not-riff"),
        pytest.param(GOLDEN[:36] + b"LIST" + GOLDEN[40:], "44-byte header", id="other-chunk"),
        pytest.param(_wav(8000, 2, 2, bytes(8)), "got 8000 Hz stereo 16-bit PCM", id="stereo"),
    ],
)
def test_repair_refuses_other_layouts(data: bytes, message: str) -> None:
    with pytest.raises(WavError, match=message):
        repair_wav(data)
