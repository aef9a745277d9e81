"""RTP header: hand-written golden packets, invalid ones, round trips, in-place rewrites,
sequence/timestamp wrap-around, RTP/RTCP demultiplexing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.rtp import (
    HeaderExtension,
    RtpError,
    RtpHeader,
    build_packet,
    is_rtcp,
    parse_header,
    seq_add,
    seq_diff,
    set_marker,
    set_payload_type,
    set_sequence,
    set_ssrc,
    set_timestamp,
    ts_add,
    ts_diff,
)

# V=2 P=0 X=0 CC=0 | M=0 PT=0 (PCMU) | seq 0x1234 | ts 0x000000a0 | SSRC 0xdeadbeef | 4 octets
PCMU = bytes.fromhex("80 00 1234 000000a0 deadbeef d5d5d5d5")
# M=1 PT=8 (PCMA), the first packet of a talkspurt
PCMA_MARKED = bytes.fromhex("80 88 ffff ffffffff 00000001 5555")
# CC=2: two CSRCs before the payload
WITH_CSRCS = bytes.fromhex("82 00 0001 00000000 11111111 22222222 33333333 abcd")
# X=1: RFC 8285 one-byte extension block 0xbede, 1 word (id 1, len 1: audio level), then payload
WITH_EXTENSION = bytes.fromhex("90 00 0001 00000000 11111111 bede0001 10ff0000 0102")
# P=1: 2 payload octets then 3 padding octets whose last says 3
WITH_PADDING = bytes.fromhex("a0 00 0001 00000000 11111111 0102 000003")
# Everything at once: P, X, CC=1, M, PT=101
EVERYTHING = bytes.fromhex("b1 e5 0102 03040506 0708090a 0b0c0d0e 1000 0001 aabbccdd 05 0a 00a0 01")


def test_plain_pcmu_packet() -> None:
    header = parse_header(PCMU)
    assert header == RtpHeader(
        version=2,
        padding=False,
        extension=False,
        csrc_count=0,
        marker=False,
        payload_type=0,
        sequence_number=0x1234,
        timestamp=160,
        ssrc=0xDEADBEEF,
        payload_offset=12,
        payload_length=4,
    )
    assert bytes(header.payload(PCMU)) == b"\xd5" * 4
    assert header.csrcs(PCMU) == ()
    assert header.header_extension(PCMU) is None


def test_marker_and_payload_type_share_the_second_octet() -> None:
    header = parse_header(PCMA_MARKED)
    assert (header.marker, header.payload_type) == (True, 8)
    assert (header.sequence_number, header.timestamp, header.ssrc) == (0xFFFF, 0xFFFF_FFFF, 1)


def test_csrcs_come_before_the_payload() -> None:
    header = parse_header(WITH_CSRCS)
    assert header.csrc_count == 2
    assert header.csrcs(WITH_CSRCS) == (0x22222222, 0x33333333)
    assert header.payload_offset == 20
    assert bytes(header.payload(WITH_CSRCS)) == b"\xab\xcd"


def test_header_extension_is_skipped() -> None:
    header = parse_header(WITH_EXTENSION)
    assert header.extension
    assert header.payload_offset == 20
    assert bytes(header.payload(WITH_EXTENSION)) == b"\x01\x02"
    assert header.header_extension(WITH_EXTENSION) == HeaderExtension(
        0xBEDE, bytes.fromhex("10ff0000")
    )


def test_padding_is_left_out_of_the_payload() -> None:
    header = parse_header(WITH_PADDING)
    assert header.padding
    assert (header.payload_offset, header.payload_length) == (12, 2)
    assert bytes(header.payload(WITH_PADDING)) == b"\x01\x02"


def test_everything_at_once() -> None:
    header = parse_header(EVERYTHING)
    assert header.padding
    assert header.extension
    assert header.marker
    assert header.payload_type == 101
    assert header.sequence_number == 0x0102
    assert header.csrcs(EVERYTHING) == (0x0B0C0D0E,)
    assert header.header_extension(EVERYTHING) == HeaderExtension(0x1000, bytes.fromhex("aabbccdd"))
    assert bytes(header.payload(EVERYTHING)) == bytes.fromhex("050a00a0")


def test_payload_is_a_view_not_a_copy() -> None:
    packet = bytearray(PCMU)
    payload = parse_header(packet).payload(packet)
    packet[-1] = 0x00
    assert payload[-1] == 0x00


def test_memoryview_input() -> None:
    assert parse_header(memoryview(WITH_PADDING)) == parse_header(WITH_PADDING)


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        pytest.param(b"", "shorter than the 12-byte", id="empty"),
        pytest.param(PCMU[:11], "shorter than the 12-byte", id="11-bytes"),
        pytest.param(bytes.fromhex("40") + PCMU[1:], "version 1", id="version-1"),
        pytest.param(bytes.fromhex("00") + PCMU[1:], "version 0", id="version-0"),
        pytest.param(bytes.fromhex("c0") + PCMU[1:], "version 3", id="version-3"),
        pytest.param(WITH_CSRCS[:19], "2 CSRC", id="csrc-list-cut"),
        pytest.param(bytes.fromhex("8f") + PCMU[1:], "15 CSRC", id="cc-15-short"),
        pytest.param(bytes.fromhex("90") + PCMU[1:12] + b"\xbe\xde", "no room", id="ext-cut"),
        pytest.param(WITH_EXTENSION[:19], "runs past the end", id="ext-body-cut"),
        pytest.param(bytes.fromhex("90") + PCMU[1:12] + b"\xbe\xde\xff\xff", "runs past", id="ext"),
        pytest.param(WITH_PADDING[:-1] + b"\x00", "padding count 0", id="padding-0"),
        pytest.param(WITH_PADDING[:-1] + b"\x06", "padding count 6", id="padding-too-long"),
        pytest.param(bytes.fromhex("a0") + PCMU[1:12], "padding count", id="padding-no-room"),
    ],
)
def test_invalid_packets_are_refused_with_the_reason(packet: bytes, reason: str) -> None:
    with pytest.raises(RtpError, match=reason):
        parse_header(packet)


def test_padding_may_fill_everything_after_the_header() -> None:
    packet = bytes.fromhex("a0") + PCMU[1:12] + b"\x00\x00\x03"
    assert parse_header(packet).payload_length == 0


def test_build_matches_the_golden_packets() -> None:
    assert (
        build_packet(
            payload_type=0,
            sequence_number=0x1234,
            timestamp=160,
            ssrc=0xDEADBEEF,
            payload=b"\xd5" * 4,
        )
        == PCMU
    )
    assert (
        build_packet(
            payload_type=8,
            sequence_number=0xFFFF,
            timestamp=0xFFFF_FFFF,
            ssrc=1,
            payload=b"UU",
            marker=True,
        )
        == PCMA_MARKED
    )
    assert (
        build_packet(
            payload_type=101,
            sequence_number=0x0102,
            timestamp=0x03040506,
            ssrc=0x0708090A,
            payload=bytes.fromhex("050a00a0"),
            marker=True,
            csrcs=(0x0B0C0D0E,),
            extension=HeaderExtension(0x1000, bytes.fromhex("aabbccdd")),
            padding=1,
        )
        == EVERYTHING
    )


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: _build(payload_type=128), id="pt-128"),
        pytest.param(lambda: _build(payload_type=-1), id="pt-negative"),
        pytest.param(lambda: _build(sequence_number=0x10000), id="seq-17-bits"),
        pytest.param(lambda: _build(timestamp=1 << 32), id="ts-33-bits"),
        pytest.param(lambda: _build(ssrc=-1), id="ssrc-negative"),
        pytest.param(lambda: _build(csrcs=tuple(range(16))), id="16-csrcs"),
        pytest.param(lambda: _build(padding=256), id="padding-256"),
        pytest.param(lambda: _build(extension=HeaderExtension(1, b"abc")), id="ext-not-words"),
        pytest.param(lambda: _build(extension=HeaderExtension(0x10000, b"")), id="ext-profile"),
    ],
)
def test_build_refuses_fields_that_do_not_fit(build: Callable[[], bytes]) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        build()


def _build(
    *,
    payload_type: int = 0,
    sequence_number: int = 0,
    timestamp: int = 0,
    ssrc: int = 0,
    csrcs: tuple[int, ...] = (),
    extension: HeaderExtension | None = None,
    padding: int = 0,
) -> bytes:
    return build_packet(
        payload_type=payload_type,
        sequence_number=sequence_number,
        timestamp=timestamp,
        ssrc=ssrc,
        csrcs=csrcs,
        extension=extension,
        padding=padding,
    )


@dataclass(frozen=True)
class Fields:
    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool
    csrcs: tuple[int, ...]
    extension: HeaderExtension | None
    padding: int


extensions = st.builds(
    HeaderExtension,
    st.integers(0, 0xFFFF),
    st.lists(st.binary(min_size=4, max_size=4), max_size=4).map(b"".join),
)
fields = st.builds(
    Fields,
    payload_type=st.integers(0, 127),
    sequence_number=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFF_FFFF),
    ssrc=st.integers(0, 0xFFFF_FFFF),
    payload=st.binary(max_size=200),
    marker=st.booleans(),
    csrcs=st.lists(st.integers(0, 0xFFFF_FFFF), max_size=15).map(tuple),
    extension=st.none() | extensions,
    padding=st.integers(0, 255),
)


@given(fields)
def test_build_then_parse_round_trips(f: Fields) -> None:
    packet = build_packet(
        payload_type=f.payload_type,
        sequence_number=f.sequence_number,
        timestamp=f.timestamp,
        ssrc=f.ssrc,
        payload=f.payload,
        marker=f.marker,
        csrcs=f.csrcs,
        extension=f.extension,
        padding=f.padding,
    )
    header = parse_header(packet)
    assert header.version == 2
    assert (header.payload_type, header.marker) == (f.payload_type, f.marker)
    assert (header.sequence_number, header.timestamp, header.ssrc) == (
        f.sequence_number,
        f.timestamp,
        f.ssrc,
    )
    assert header.padding == bool(f.padding)
    assert header.csrcs(packet) == f.csrcs
    assert header.header_extension(packet) == f.extension
    assert bytes(header.payload(packet)) == f.payload
    assert header.payload_offset + header.payload_length + f.padding == len(packet)


@given(st.binary(max_size=120))
def test_arbitrary_bytes_raise_only_rtp_error(data: bytes) -> None:
    try:
        header = parse_header(data)
    except RtpError:
        return
    assert 12 <= header.payload_offset <= header.payload_offset + header.payload_length <= len(data)


@given(st.integers(0x80, 0xBF), st.binary(max_size=80))
def test_arbitrary_version_2_packets_raise_only_rtp_error(first: int, rest: bytes) -> None:
    # Version 2 with any P/X/CC bits: reaches the CSRC, extension and padding checks.
    data = bytes([first]) + rest
    try:
        header = parse_header(data)
    except RtpError:
        return
    assert header.payload_offset + header.payload_length <= len(data)


def test_rewrite_in_place_keeps_everything_else() -> None:
    packet = bytearray(EVERYTHING)
    set_sequence(packet, 0xABCD)
    set_timestamp(packet, 0x11223344)
    set_ssrc(packet, 0x55667788)
    set_marker(packet, False)
    header = parse_header(packet)
    assert (header.sequence_number, header.timestamp, header.ssrc) == (
        0xABCD,
        0x11223344,
        0x55667788,
    )
    assert (header.marker, header.payload_type) == (False, 101)
    assert packet[12:] == EVERYTHING[12:]
    set_marker(packet, True)
    set_payload_type(packet, 0)
    assert (parse_header(packet).marker, parse_header(packet).payload_type) == (True, 0)
    with pytest.raises(ValueError, match="payload type"):
        set_payload_type(packet, 128)


def test_rewrite_values_wrap_around_their_field() -> None:
    packet = bytearray(PCMU)
    set_sequence(packet, 0xFFFF + 3)
    set_timestamp(packet, (1 << 32) + 7)
    set_ssrc(packet, -1)
    header = parse_header(packet)
    assert (header.sequence_number, header.timestamp, header.ssrc) == (2, 7, 0xFFFF_FFFF)


def test_rewrite_through_a_memoryview_of_a_larger_buffer() -> None:
    buffer = bytearray(2048)
    buffer[: len(PCMU)] = PCMU
    view = memoryview(buffer)[: len(PCMU)]
    set_sequence(view, 7)
    set_marker(view, True)
    assert parse_header(view).sequence_number == 7
    assert parse_header(view).marker


@pytest.mark.parametrize(
    ("a", "b", "ahead"),
    [
        (100, 100, 0),
        (101, 100, 1),
        (100, 101, -1),
        (0, 0xFFFF, 1),
        (0xFFFF, 0, -1),
        (5, 0xFFF0, 21),
        (0x7FFF, 0, 0x7FFF),
        (0x8000, 0, -0x8000),
    ],
)
def test_seq_diff_across_the_wrap(a: int, b: int, ahead: int) -> None:
    assert seq_diff(a, b) == ahead


def test_seq_and_ts_add_wrap() -> None:
    assert seq_add(0xFFFF, 1) == 0
    assert seq_add(0, -1) == 0xFFFF
    assert ts_add(0xFFFF_FF60, 160) == 0
    assert ts_add(0, -160) == 0xFFFF_FF60
    assert ts_diff(0, 0xFFFF_FF60) == 160
    assert ts_diff(0xFFFF_FF60, 0) == -160


@given(st.integers(0, 0xFFFF), st.integers(-0x8000, 0x7FFF))
def test_seq_diff_inverts_seq_add(base: int, delta: int) -> None:
    assert seq_diff(seq_add(base, delta), base) == delta


@given(st.integers(0, 0xFFFF_FFFF), st.integers(-(1 << 31), (1 << 31) - 1))
def test_ts_diff_inverts_ts_add(base: int, delta: int) -> None:
    assert ts_diff(ts_add(base, delta), base) == delta


@pytest.mark.parametrize(
    ("second_octet", "rtcp"),
    [
        (200, True),  # SR
        (201, True),  # RR
        (202, True),  # SDES
        (203, True),  # BYE
        (204, True),  # APP
        (206, True),  # PSFB (RFC 4585)
        (192, True),
        (223, True),
        (0, False),  # PCMU
        (0x80 | 8, False),  # PCMA with marker
        (101, False),  # telephone-event
        (0x80 | 101, False),
        (191, False),
        (224, False),
    ],
)
def test_is_rtcp_by_the_second_octet(second_octet: int, rtcp: bool) -> None:
    assert is_rtcp(bytes([0x80, second_octet]) + bytes(6)) is rtcp


def test_is_rtcp_on_a_runt() -> None:
    assert not is_rtcp(b"")
    assert not is_rtcp(b"\x80")
