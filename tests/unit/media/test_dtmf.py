"""RFC 4733 events, the digit detector over realistic packet sequences, SIP INFO bodies."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.dtmf import (
    DTMF_DIGITS,
    DigitDetector,
    DtmfError,
    TelephoneEvent,
    build_event,
    digit_to_event,
    event_to_digit,
    parse_application_dtmf,
    parse_dtmf_relay,
    parse_event,
    parse_info_dtmf,
)
from media.rtp import build_packet, parse_header, ts_add

TELEPHONE_EVENT = 101  # the dynamic payload type most phones offer
PCMU = 0

Packet = tuple[int, TelephoneEvent]  # (RTP timestamp, event) as the detector is fed


def test_golden_start_packet() -> None:
    # RFC 4733 section 2.3: digit 5, not ended, -10 dBm0, 160 units (20 ms) so far
    assert parse_event(bytes.fromhex("050a00a0")) == TelephoneEvent(
        event=5, end=False, volume=10, duration=160
    )


def test_golden_end_packet() -> None:
    event = parse_event(bytes.fromhex("0b8a0320"))
    assert event == TelephoneEvent(event=11, end=True, volume=10, duration=800)
    assert event.digit == "#"


def test_reserved_bit_is_ignored() -> None:
    assert parse_event(bytes.fromhex("05ca00a0")) == parse_event(bytes.fromhex("058a00a0"))


def test_only_the_first_block_is_read() -> None:
    assert parse_event(bytes.fromhex("050a00a0 ffffffff")).event == 5


def test_non_dtmf_events_have_no_digit() -> None:
    flash = parse_event(bytes.fromhex("100a0000"))  # event 16: flash hook
    assert flash.event == 16
    assert flash.digit is None


@pytest.mark.parametrize("payload", [b"", b"\x05", b"\x05\x0a\x00"])
def test_short_payloads_are_refused(payload: bytes) -> None:
    with pytest.raises(DtmfError, match="expected 4"):
        parse_event(payload)


@given(st.binary(max_size=12))
def test_arbitrary_payloads_raise_only_dtmf_error(payload: bytes) -> None:
    try:
        event = parse_event(payload)
    except DtmfError:
        return
    assert event.to_bytes() == bytes([payload[0], payload[1] & 0xBF]) + payload[2:4]


@given(
    st.sampled_from(DTMF_DIGITS),
    st.booleans(),
    st.integers(0, 63),
    st.integers(0, 0xFFFF),
)
def test_build_then_parse_round_trips(digit: str, end: bool, volume: int, duration: int) -> None:
    event = parse_event(build_event(digit, end=end, volume=volume, duration=duration))
    assert (event.digit, event.end, event.volume, event.duration) == (digit, end, volume, duration)


def test_build_matches_the_golden_packet() -> None:
    assert build_event("5", volume=10, duration=160) == bytes.fromhex("050a00a0")
    assert build_event("#", end=True, volume=10, duration=800) == bytes.fromhex("0b8a0320")


@pytest.mark.parametrize(
    "build",
    [
        lambda: build_event("E"),
        lambda: build_event("55"),
        lambda: build_event(""),
        lambda: build_event("1", volume=64),
        lambda: build_event("1", duration=0x10000),
        lambda: TelephoneEvent(event=256, end=False, volume=0, duration=0).to_bytes(),
    ],
)
def test_build_refuses_what_does_not_fit(build: Callable[[], bytes]) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        build()


def test_digit_and_event_codes() -> None:
    assert [event_to_digit(code) for code in range(16)] == list("0123456789*#ABCD")
    assert event_to_digit(16) is None
    assert event_to_digit(-1) is None
    assert digit_to_event("d") == 15
    assert digit_to_event("*") == 10


# A sender (RFC 4733 section 2.5.1): packets every 20 ms (160 units) with the key-down
# timestamp and a growing duration, then the end packet three times (section 2.5.1.4).


def key_press(digit: str, timestamp: int, *, packets: int = 5) -> list[Packet]:
    code = digit_to_event(digit)
    start = [
        (timestamp, TelephoneEvent(event=code, end=False, volume=10, duration=160 * n))
        for n in range(1, packets + 1)
    ]
    end = TelephoneEvent(event=code, end=True, volume=10, duration=160 * (packets + 1))
    return [*start, (timestamp, end), (timestamp, end), (timestamp, end)]


def detect(packets: Iterable[Packet], detector: DigitDetector | None = None) -> str:
    detector = detector or DigitDetector()
    return "".join(digit for ts, event in packets if (digit := detector.feed(ts, event)))


def test_one_press_is_reported_once() -> None:
    assert detect(key_press("5", 8000)) == "5"


def test_reported_on_the_first_packet() -> None:
    detector = DigitDetector()
    packets = key_press("7", 8000)
    assert detector.feed(*packets[0]) == "7"
    assert [detector.feed(ts, event) for ts, event in packets[1:]] == [None] * 7


def test_a_sequence_of_keys() -> None:
    packets = [
        packet
        for n, digit in enumerate("0123456789*#ABCD")
        for packet in key_press(digit, 1000 + 2000 * n)
    ]
    assert detect(packets) == "0123456789*#ABCD"


def test_same_key_twice_back_to_back() -> None:
    # The second press starts right after the first ends: only its timestamp differs.
    first = key_press("1", 8000)
    second = key_press("1", 8000 + 160 * 6)
    assert detect(first + second) == "11"


def test_lost_start_packets() -> None:
    assert detect(key_press("9", 8000)[-3:]) == "9"
    assert detect(key_press("9", 8000)[-1:]) == "9"


def test_lost_start_then_same_key_again() -> None:
    packets = key_press("4", 8000)[-2:] + key_press("4", 9600)[-3:]
    assert detect(packets) == "44"


def test_late_packet_of_the_previous_press_is_ignored() -> None:
    first = key_press("2", 8000)
    second = key_press("3", 9600)
    # The last end copy of "2" arrives after "3" has begun (reordering).
    packets = first[:-1] + second[:2] + first[-1:] + second[2:]
    assert detect(packets) == "23"


def test_timestamps_across_the_32_bit_wrap() -> None:
    packets = key_press("6", 0xFFFF_FF00) + key_press("6", ts_add(0xFFFF_FF00, 2000))
    assert detect(packets) == "66"


def test_long_press_continues_in_a_new_segment() -> None:
    # RFC 4733 section 2.5.1.3: past 0xFFFF units the event goes on at timestamp + 0xFFFF.
    held = TelephoneEvent(event=0, end=False, volume=10, duration=0xFFFF)
    segment = [(8000 + 0xFFFF, TelephoneEvent(event=0, end=False, volume=10, duration=160))]
    packets = [(8000, held), *segment, *key_press("0", 8000 + 0xFFFF)[3:]]
    assert detect(packets) == "0"


def test_a_new_press_of_the_same_key_after_a_long_one_ended() -> None:
    ended = TelephoneEvent(event=0, end=True, volume=10, duration=0xFFFF)
    assert detect([(8000, ended), *key_press("0", 8000 + 0xFFFF)]) == "00"


def test_non_dtmf_events_are_not_digits_and_do_not_block_the_next() -> None:
    flash = TelephoneEvent(event=16, end=True, volume=10, duration=800)
    assert detect([(8000, flash), (8000, flash), *key_press("8", 9600)]) == "8"


def test_same_timestamp_new_key_after_the_end() -> None:
    # Not what RFC 4733 asks, but some senders reuse the timestamp for the next key.
    assert detect(key_press("1", 8000) + key_press("2", 8000)) == "12"


def test_restarted_stream_far_behind_is_a_new_press() -> None:
    packets = key_press("1", 50_000_000) + key_press("2", 1000)
    assert detect(packets) == "12"


def test_reset_forgets_the_current_press() -> None:
    detector = DigitDetector()
    assert detect(key_press("5", 8000), detector) == "5"
    detector.reset()
    assert detect(key_press("5", 8000)[-1:], detector) == "5"


def rtp(payload_type: int, seq: int, timestamp: int, payload: bytes, marker: bool = False) -> bytes:
    return build_packet(
        payload_type=payload_type,
        sequence_number=seq & 0xFFFF,
        timestamp=timestamp,
        ssrc=0x1234,
        payload=payload,
        marker=marker,
    )


def test_rtp_stream_with_audio_interleaved() -> None:
    """What the relay does: pick the telephone-event packets out of the call's RTP stream.

    20 ms of audio, then "3" pressed at timestamp 1600 and "#" at 4800; this phone keeps
    sending audio (its timestamps advancing) between the event packets, which all carry the
    key-down timestamp. Sequence numbers cross the 16-bit wrap on the way.
    """
    packets: list[bytes] = []
    seq = 0xFFF0
    for n in range(60):
        audio_ts = 160 * n
        packets.append(rtp(PCMU, seq, audio_ts, b"\xff" * 160))
        seq += 1
        for key, key_down in (("3", 1600), ("#", 4800)):
            sent = key_press(key, key_down)
            index = (audio_ts - key_down) // 160
            if 0 <= index < len(sent):
                stamp, event = sent[index]
                packets.append(rtp(TELEPHONE_EVENT, seq, stamp, event.to_bytes(), index == 0))
                seq += 1
    detector = DigitDetector()
    digits = []
    for data in packets:
        header = parse_header(data)
        if header.payload_type != TELEPHONE_EVENT:
            continue
        digit = detector.feed(header.timestamp, parse_event(header.payload(data)))
        if digit is not None:
            digits.append(digit)
    assert digits == ["3", "#"]
    assert sum(parse_header(data).payload_type == TELEPHONE_EVENT for data in packets) == 16


# SIP INFO bodies


@pytest.mark.parametrize(
    ("body", "digit"),
    [
        ("Signal=5\r\nDuration=160\r\n", "5"),
        ("Signal=5\r\nDuration=160", "5"),
        ("signal= #\nduration=100\n", "#"),
        ("Duration=250\r\nSignal=*\r\n", "*"),
        ("Signal = a\r\n", "A"),
        ("Signal=D", "D"),
        ("Signal=10\r\nDuration=160", "*"),  # event code form
        ("Signal=11\r\nDuration=160", "#"),
        ("Signal=0\r\n", "0"),
        ("Signal=05", "5"),
        ("Duration=160\r\n", None),
        ("Signal=\r\n", None),
        ("Signal=E\r\n", None),
        ("Signal=16\r\n", None),  # flash hook: not a key
        ("Signal=55\r\n", None),
        ("Signal=12345\r\n", None),
        ("Signal=*#\r\n", None),
        ("Signal=\u00b2\r\n", None),  # superscript two: a Unicode digit, not a key
        ("Signal\r\n", None),
        ("", None),
    ],
)
def test_dtmf_relay_bodies(body: str, digit: str | None) -> None:
    assert parse_dtmf_relay(body) == digit


@pytest.mark.parametrize(
    ("body", "digit"),
    [("5", "5"), ("#\r\n", "#"), (" * ", "*"), ("b", "B"), ("11", "#"), ("", None), ("x", None)],
)
def test_application_dtmf_bodies(body: str, digit: str | None) -> None:
    assert parse_application_dtmf(body) == digit


def test_info_dispatch_on_content_type() -> None:
    assert parse_info_dtmf("application/dtmf-relay", "Signal=1\r\nDuration=100") == "1"
    assert parse_info_dtmf("Application/DTMF-Relay; charset=utf-8", "Signal=2") == "2"
    assert parse_info_dtmf("application/dtmf", "3") == "3"
    assert parse_info_dtmf("application/sdp", "Signal=4") is None


@given(st.text(max_size=60))
def test_arbitrary_bodies_give_a_key_or_none(body: str) -> None:
    for digit in (parse_dtmf_relay(body), parse_application_dtmf(body)):
        assert digit is None or (len(digit) == 1 and digit in DTMF_DIGITS)
