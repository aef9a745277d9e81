"""PromptPlayer: RTP framing, exact pacing on a virtual clock, catching up after a late
wake-up, padding, clips back to back, a follow-on prompt on the same stream; the beep."""

from __future__ import annotations

import itertools
import random
import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media import g711
from media.player import (
    EARLY_TOLERANCE,
    FRAME_SAMPLES,
    PCMA,
    PCMU,
    PTIME,
    Clip,
    PromptPlayer,
    beep,
    silence,
    silence_frames,
)
from media.rtp import parse_header, seq_diff, ts_diff
from tests.support.audio import pcm_bytes, tone_power, tone_samples

START = 100.0


class FixedRandom(random.Random):
    """Hands out chosen SSRC, sequence number and timestamp, in the player's order."""

    def __init__(self, ssrc: int, sequence_number: int, timestamp: int) -> None:
        super().__init__(0)
        self._values = {32: [ssrc, timestamp], 16: [sequence_number]}

    def getrandbits(self, k: int, /) -> int:
        return self._values[k].pop(0)


def tone(frequency: float = 440.0, seconds: float = 1.0, amplitude: float = 0.5) -> bytes:
    return pcm_bytes(tone_samples(frequency, seconds, amplitude=amplitude))


def player(
    clips: list[Clip | bytes],
    *,
    payload_type: int = PCMU,
    rng: random.Random | None = None,
    now: float = START,
) -> PromptPlayer:
    return PromptPlayer(clips, payload_type=payload_type, rng=rng or random.Random(7), now=now)


def play_all(prompt: PromptPlayer) -> list[bytes]:
    """Every packet, each sent at exactly its due time."""
    packets: list[bytes] = []
    while (due := prompt.next_due()) is not None:
        packets += prompt.frames(due)
    return packets


def payload(packet: bytes) -> bytes:
    return bytes(parse_header(packet).payload(packet))


# --- RTP framing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload_type", "encode"), [(PCMU, g711.linear_to_ulaw), (PCMA, g711.linear_to_alaw)]
)
def test_packets_carry_20_ms_of_the_clip_in_the_payload_type(
    payload_type: int, encode: Callable[[bytes], bytes]
) -> None:
    pcm = tone(seconds=0.1)
    packets = play_all(player([pcm], payload_type=payload_type))
    assert len(packets) == 5
    headers = [parse_header(packet) for packet in packets]
    assert {header.payload_type for header in headers} == {payload_type}
    assert all(len(packet) == 12 + FRAME_SAMPLES for packet in packets)
    assert b"".join(payload(packet) for packet in packets) == encode(pcm)


def test_ssrc_sequence_and_timestamp_start_from_the_random_source() -> None:
    rng = random.Random(42)
    ssrc, sequence_number, timestamp = rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(32)
    headers = [
        parse_header(p) for p in play_all(player([tone(seconds=0.06)], rng=random.Random(42)))
    ]
    assert [h.ssrc for h in headers] == [ssrc] * 3
    assert [h.sequence_number for h in headers] == [sequence_number + n for n in range(3)]
    assert [h.timestamp for h in headers] == [timestamp + 160 * n for n in range(3)]


def test_marker_bit_on_the_first_packet_only() -> None:
    headers = [parse_header(p) for p in play_all(player([tone(seconds=0.1), beep()]))]
    assert [h.marker for h in headers] == [True] + [False] * (len(headers) - 1)


def test_sequence_number_and_timestamp_wrap() -> None:
    rng = FixedRandom(ssrc=5, sequence_number=0xFFFE, timestamp=0xFFFF_FF60)
    headers = [parse_header(p) for p in play_all(player([tone(seconds=0.08)], rng=rng))]
    assert [h.sequence_number for h in headers] == [0xFFFE, 0xFFFF, 0, 1]
    assert [h.timestamp for h in headers] == [0xFFFF_FF60, 0, 160, 320]


def test_a_partial_last_frame_is_padded_with_silence() -> None:
    pcm = tone(seconds=0.0125)  # 100 samples
    (packet,) = play_all(player([pcm]))
    assert payload(packet) == g711.linear_to_ulaw(pcm) + b"\xff" * 60  # mu-law silence
    (packet,) = play_all(player([pcm], payload_type=PCMA))
    assert payload(packet) == g711.linear_to_alaw(pcm) + b"\xd5" * 60  # A-law silence


def test_clips_follow_each_other_each_from_a_frame_boundary() -> None:
    first, second = tone(seconds=0.025), beep(seconds=0.02)  # 200 samples, then 160
    packets = play_all(player([first, b"", second]))
    assert len(packets) == 3
    assert payload(packets[1]) == g711.linear_to_ulaw(first[320:]) + b"\xff" * 120
    assert payload(packets[2]) == g711.linear_to_ulaw(second)
    timestamps = [parse_header(p).timestamp for p in packets]
    assert [ts_diff(ts, timestamps[0]) for ts in timestamps] == [0, 160, 320]


@pytest.mark.parametrize("payload_type", [PCMU, PCMA])
def test_a_clip_gives_the_same_packets_as_its_pcm(payload_type: int) -> None:
    pcm = tone(seconds=0.11)
    clip = Clip(pcm)
    from_pcm = play_all(player([pcm, beep()], payload_type=payload_type))
    from_clip = play_all(player([clip, Clip(beep())], payload_type=payload_type))
    assert from_clip == from_pcm
    assert clip.codes(payload_type) is clip.codes(payload_type)  # encoded once
    assert clip.duration == pytest.approx(0.11)


def test_nothing_to_play() -> None:
    prompt = player([])
    assert prompt.finished
    assert prompt.next_due() is None
    assert prompt.frames(START + 10) == []
    assert prompt.duration == 0


@pytest.mark.parametrize("payload_type", [9, 18, 101])
def test_only_g711(payload_type: int) -> None:
    with pytest.raises(ValueError, match="only PCMU"):
        player([tone()], payload_type=payload_type)
    with pytest.raises(ValueError, match="only PCMU"):
        Clip(tone()).codes(payload_type)


def test_half_samples_are_refused() -> None:
    with pytest.raises(ValueError, match="whole number of samples"):
        player([b"\x00\x00\x00"])
    with pytest.raises(ValueError, match="whole number of samples"):
        Clip(b"\x00")


# --- pacing --------------------------------------------------------------------------------


def test_packet_k_is_due_at_start_plus_k_times_20_ms() -> None:
    prompt = player([tone(seconds=1.0)])
    dues: list[float] = []
    while (due := prompt.next_due()) is not None:
        assert prompt.frames(due - 2 * EARLY_TOLERANCE) == []  # not yet
        assert len(prompt.frames(due)) == 1
        dues.append(due)
    assert dues == [START + k * PTIME for k in range(50)]
    assert prompt.finished
    assert prompt.packets_sent == 50
    assert prompt.duration == pytest.approx(1.0)


def test_a_timer_firing_slightly_early_still_sends() -> None:
    prompt = player([tone(seconds=0.06)])
    assert len(prompt.frames(START)) == 1
    assert len(prompt.frames(START + PTIME - EARLY_TOLERANCE / 2)) == 1
    assert prompt.next_due() == START + 2 * PTIME


def test_a_late_loop_catches_up_at_once_without_drifting() -> None:
    prompt = player([tone(seconds=1.0)])
    assert len(prompt.frames(START)) == 1
    late = prompt.frames(START + 0.105)  # woke 85 ms late: packets 1 to 5 are due
    assert len(late) == 5
    assert prompt.next_due() == START + 6 * PTIME  # back on the original schedule
    rest = prompt.frames(START + 10)
    assert len(rest) == 44
    headers = [parse_header(p) for p in late + rest]
    assert all(
        seq_diff(b.sequence_number, a.sequence_number) == 1 for a, b in itertools.pairwise(headers)
    )
    assert all(ts_diff(b.timestamp, a.timestamp) == 160 for a, b in itertools.pairwise(headers))


@settings(max_examples=100)
@given(st.lists(st.floats(0.0, 0.1), min_size=1, max_size=60))
def test_any_wake_up_pattern_sends_each_packet_once_on_or_after_its_due(
    delays: list[float],
) -> None:
    """However late the timer fires, packet k never goes before start + k * 20 ms (less
    the tolerance), and every packet goes exactly once, in order."""
    prompt = player([tone(seconds=0.5)])
    sent: list[tuple[float, bytes]] = []
    now = START
    for delay in delays:
        due = prompt.next_due()
        if due is None:
            break
        now = max(now, due + delay)
        sent += [(now, packet) for packet in prompt.frames(now)]
    sent += [(now + 10, packet) for packet in prompt.frames(now + 10)]
    assert len(sent) == 25
    for k, (at, packet) in enumerate(sent):
        assert at >= START + k * PTIME - EARLY_TOLERANCE
        assert (
            ts_diff(parse_header(packet).timestamp, parse_header(sent[0][1]).timestamp) == 160 * k
        )


# --- a follow-on prompt ----------------------------------------------------------------------


def test_then_continues_the_same_stream_after_a_pause() -> None:
    greeting = player([tone(seconds=0.1)])
    first = play_all(greeting)  # last packet due at START + 0.08
    last = parse_header(first[-1])
    follower = greeting.then([beep(seconds=0.04)], now=START + 0.5)
    assert follower.next_due() == START + 0.5
    second = [parse_header(p) for p in play_all(follower)]
    assert [h.ssrc for h in second] == [last.ssrc] * 2
    assert [seq_diff(h.sequence_number, last.sequence_number) for h in second] == [1, 2]
    # 0.42 s after the last packet: 21 frames on the sampling clock.
    assert [ts_diff(h.timestamp, last.timestamp) for h in second] == [21 * 160, 22 * 160]
    assert [h.marker for h in second] == [True, False]


def test_then_right_away_advances_one_frame() -> None:
    greeting = player([tone(seconds=0.04)])
    (first,) = greeting.frames(START)  # one of two packets: the caller skips the rest
    follower = greeting.then([beep(seconds=0.02)], now=START + 0.001)
    (packet,) = play_all(follower)
    assert ts_diff(parse_header(packet).timestamp, parse_header(first).timestamp) == 160
    assert seq_diff(parse_header(packet).sequence_number, parse_header(first).sequence_number) == 1


def test_then_before_anything_was_sent_starts_where_this_one_would_have() -> None:
    greeting = player([tone(seconds=0.04)])
    follower = greeting.then([beep(seconds=0.02)], now=START + 3)
    (packet,) = play_all(follower)
    expected = parse_header(player([tone(seconds=0.04)]).frames(START)[0])
    header = parse_header(packet)
    assert (header.ssrc, header.sequence_number, header.timestamp) == (
        expected.ssrc,
        expected.sequence_number,
        expected.timestamp,
    )


# --- beep and silence ------------------------------------------------------------------------


def samples(pcm: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(pcm) // 2}h", pcm))


def test_beep_is_a_pure_tone_of_its_frequency() -> None:
    tone_ = samples(beep())
    assert len(tone_) == 4000
    assert tone_power(tone_, 8000, 1000) > 0.95
    assert tone_power(tone_, 8000, 900) < 0.01
    assert max(tone_) == round(0.25 * 32767)


@pytest.mark.parametrize("frequency", [440.0, 997.0, 1400.5])
def test_beep_of_other_frequencies(frequency: float) -> None:
    assert tone_power(samples(beep(frequency, 0.3)), 8000, frequency) > 0.9


def test_beep_ramps_in_and_out() -> None:
    tone_ = samples(beep(1000, 0.1, amplitude=1.0))
    assert tone_[0] == 0
    assert max(abs(v) for v in tone_[:20]) < 0.5 * 32767
    assert max(abs(v) for v in tone_[-20:]) < 0.5 * 32767
    assert max(abs(v) for v in tone_[40:-40]) == 32767


def test_beep_of_odd_lengths() -> None:
    assert beep(seconds=0) == b""
    assert len(beep(seconds=0.0001)) == 2
    assert len(beep(1000, 0.0125)) == 200


@pytest.mark.parametrize(
    ("frequency", "seconds", "amplitude"),
    [(0, 1, 0.5), (4000, 1, 0.5), (1000, -1, 0.5), (1000, 1, 1.5)],
)
def test_beep_refuses_nonsense(frequency: float, seconds: float, amplitude: float) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        beep(frequency, seconds, amplitude=amplitude)


def test_silence_helpers() -> None:
    assert silence(0.5) == bytes(8000)
    assert silence_frames(3) == bytes(960)
    with pytest.raises(ValueError, match="silence"):
        silence(-1)
    with pytest.raises(ValueError, match="silence"):
        silence_frames(-1)
