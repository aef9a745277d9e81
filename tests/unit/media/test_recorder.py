"""VoicemailRecorder: a tone through player and recorder, loss and reordering filled exactly,
stream changes, '#' by RFC 4733 and by INFO, the maximum length cut to the sample, the
silence timeout and its trimming, no RTP, the incremental take, and what is ignored."""

from __future__ import annotations

import random
import struct
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media import g711
from media.dtmf import build_event
from media.player import Clip, PromptPlayer, beep
from media.recorder import (
    PCMA,
    PCMU,
    RecorderSettings,
    Stop,
    StopReason,
    VoicemailRecorder,
)
from media.rtp import build_packet
from tests.support.audio import pcm_bytes, tone_power, tone_samples

TELEPHONE_EVENT = 101
SSRC = 0x1234_5678
SEQ = 1000
TS = 50_000
FRAME = 160
WINDOW_FRAMES = 10  # the default reorder window, 0.2 s
NO_SILENCE = RecorderSettings(silence_timeout=None)


def tone_codes(
    seconds: float, *, amplitude: float = 0.3, frequency: float = 440.0, payload_type: int = PCMU
) -> bytes:
    pcm = pcm_bytes(tone_samples(frequency, seconds, amplitude=amplitude))
    return g711.linear_to_ulaw(pcm) if payload_type == PCMU else g711.linear_to_alaw(pcm)


def decode(codes: bytes, payload_type: int = PCMU) -> bytes:
    return g711.ulaw_to_linear(codes) if payload_type == PCMU else g711.alaw_to_linear(codes)


def quiet_codes(frames: int) -> bytes:
    return b"\xff" * (FRAME * frames)  # mu-law zero


def audio(
    codes: bytes,
    *,
    seq: int = SEQ,
    ts: int = TS,
    ssrc: int = SSRC,
    payload_type: int = PCMU,
    frame: int = FRAME,
) -> list[bytes]:
    """``codes`` as consecutive RTP packets of ``frame`` samples."""
    return [
        build_packet(
            payload_type=payload_type,
            sequence_number=(seq + index) & 0xFFFF,
            timestamp=(ts + index * frame) & 0xFFFF_FFFF,
            ssrc=ssrc,
            payload=codes[start : start + frame],
            marker=index == 0,
        )
        for index, start in enumerate(range(0, len(codes), frame))
    ]


def key_press(digit: str, ts: int, *, seq: int, ssrc: int = SSRC, packets: int = 3) -> list[bytes]:
    """An RFC 4733 key press: packets with the key-down timestamp and growing duration,
    then the end packet three times (section 2.5.1.4)."""
    payloads = [build_event(digit, duration=FRAME * n) for n in range(1, packets + 1)]
    payloads += [build_event(digit, end=True, duration=FRAME * (packets + 1))] * 3
    return [
        build_packet(
            payload_type=TELEPHONE_EVENT,
            sequence_number=(seq + index) & 0xFFFF,
            timestamp=ts,
            ssrc=ssrc,
            payload=payload,
            marker=index == 0,
        )
        for index, payload in enumerate(payloads)
    ]


def recorder(
    settings: RecorderSettings = NO_SILENCE, *, payload_type: int = PCMU, now: float = 0.0
) -> VoicemailRecorder:
    return VoicemailRecorder(
        payload_type=payload_type,
        event_payload_type=TELEPHONE_EVENT,
        now=now,
        settings=settings,
    )


def feed(
    rec: VoicemailRecorder, packets: Iterable[bytes], *, start: float = 0.0, step: float = 0.02
) -> list[tuple[int, Stop]]:
    """Feed packets one every ``step`` seconds; the (index, Stop) of each stop returned."""
    stops: list[tuple[int, Stop]] = []
    for index, packet in enumerate(packets):
        stop = rec.feed(packet, start + index * step)
        if stop is not None:
            stops.append((index, stop))
    return stops


def recorded(rec: VoicemailRecorder) -> bytes:
    rec.stop(StopReason.HANGUP)
    return rec.pcm()


def silence(samples: int) -> bytes:
    return bytes(2 * samples)


def le_samples(pcm: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(pcm) // 2}h", pcm))


# --- a tone through player and recorder --------------------------------------------------------


@pytest.mark.parametrize("payload_type", [PCMU, PCMA])
def test_a_tone_played_and_recorded_comes_back(payload_type: int) -> None:
    pcm = pcm_bytes(tone_samples(1000, 1.0, amplitude=0.4))
    prompt = PromptPlayer([Clip(pcm)], payload_type=payload_type, rng=random.Random(3), now=0.0)
    rec = recorder(RecorderSettings(), payload_type=payload_type)
    while (due := prompt.next_due()) is not None:
        for packet in prompt.frames(due):
            assert rec.feed(packet, due) is None
    assert rec.stop(StopReason.HANGUP) == Stop(reason=StopReason.HANGUP)
    out = rec.pcm()
    expected = decode(
        g711.linear_to_ulaw(pcm) if payload_type == PCMU else g711.linear_to_alaw(pcm),
        payload_type,
    )
    assert out == expected
    assert rec.duration == 1.0
    assert tone_power(le_samples(out), 8000, 1000) > 0.95
    assert tone_power(le_samples(out), 8000, 900) < 0.01


def test_sequence_numbers_and_timestamps_across_their_wrap() -> None:
    codes = tone_codes(0.4)
    rec = recorder()
    assert feed(rec, audio(codes, seq=0xFFF8, ts=0xFFFF_FC00)) == []
    assert recorded(rec) == decode(codes)


def test_packets_with_csrcs_and_padding_take_the_full_parse() -> None:
    codes = tone_codes(0.06)
    packets = [
        build_packet(
            payload_type=PCMU,
            sequence_number=SEQ + n,
            timestamp=TS + FRAME * n,
            ssrc=SSRC,
            payload=codes[FRAME * n : FRAME * (n + 1)],
            csrcs=(7, 8),
            padding=4 * n,
        )
        for n in range(3)
    ]
    rec = recorder()
    feed(rec, packets)
    assert recorded(rec) == decode(codes)


# --- loss, reordering, duplicates ---------------------------------------------------------------


def test_a_lost_packet_becomes_silence_of_its_length() -> None:
    codes = tone_codes(0.5)
    packets = audio(codes)
    rec = recorder()
    feed(rec, packets[:7] + packets[8:])
    expected = decode(codes[: 7 * FRAME]) + silence(FRAME) + decode(codes[8 * FRAME :])
    assert recorded(rec) == expected


def test_a_burst_of_loss_longer_than_the_window() -> None:
    codes = tone_codes(1.0)
    packets = audio(codes)
    rec = recorder()
    feed(rec, packets[:10] + packets[30:])
    expected = decode(codes[: 10 * FRAME]) + silence(20 * FRAME) + decode(codes[30 * FRAME :])
    assert recorded(rec) == expected


@pytest.mark.parametrize("lost", [1, 3, 16])
@pytest.mark.parametrize("step", [0.0, 0.02])
def test_loss_after_long_in_order_audio_is_silence_even_from_a_backlog(
    lost: int, step: float
) -> None:
    """After seconds of in-order audio, loss is still filled by timestamp: read from a
    socket backlog (every packet at the same instant) or paced, the gap is silence of its
    exact length, never spliced out."""
    codes = tone_codes(3.0)
    packets = audio(codes)
    rec = recorder()
    feed(rec, packets[:100] + packets[100 + lost :], step=step)
    expected = (
        decode(codes[: 100 * FRAME]) + silence(lost * FRAME) + decode(codes[(100 + lost) * FRAME :])
    )
    assert recorded(rec) == expected


def test_swapped_packets_are_put_back_in_order() -> None:
    codes = tone_codes(0.4)
    packets = audio(codes)
    order = [0, 2, 1, 3, 6, 4, 5, 7, *range(8, 20)]
    rec = recorder()
    feed(rec, [packets[k] for k in order])
    assert recorded(rec) == decode(codes)


def test_the_first_packet_arriving_second_still_starts_the_message() -> None:
    codes = tone_codes(0.4)
    packets = audio(codes)
    rec = recorder()
    feed(rec, [packets[1], packets[0], *packets[2:]])
    assert recorded(rec) == decode(codes)


def test_duplicates_are_dropped() -> None:
    codes = tone_codes(0.2)
    packets = audio(codes)
    rec = recorder()
    feed(rec, [packets[0], packets[0], packets[1], packets[3], packets[3], packets[2], *packets])
    assert recorded(rec) == decode(codes)


def test_a_packet_later_than_the_window_is_dropped_its_gap_stays_silent() -> None:
    codes = tone_codes(1.0)
    packets = audio(codes)
    late = packets[5]
    rec = recorder()
    # 11 packets after the missing one have come: it is given up for lost.
    feed(rec, packets[:5] + packets[6:17] + [late] + packets[17:])
    expected = decode(codes[: 5 * FRAME]) + silence(FRAME) + decode(codes[6 * FRAME :])
    assert recorded(rec) == expected


def test_overlapping_packetisations_add_only_their_new_tail() -> None:
    codes = tone_codes(0.1)  # 800 samples
    first = build_packet(
        payload_type=PCMU, sequence_number=1, timestamp=0, ssrc=1, payload=codes[:240]
    )
    second = build_packet(
        payload_type=PCMU, sequence_number=2, timestamp=160, ssrc=1, payload=codes[160:480]
    )
    third = build_packet(
        payload_type=PCMU, sequence_number=3, timestamp=480, ssrc=1, payload=codes[480:800]
    )
    rec = recorder()
    feed(rec, [first, third, second])
    assert recorded(rec) == decode(codes)


def test_an_overlapping_packet_after_the_first_window() -> None:
    codes = tone_codes(0.5)
    packets = audio(codes[:3200])  # 20 frames: written, past the first window
    overlapping = build_packet(
        payload_type=PCMU,
        sequence_number=SEQ + 20,
        timestamp=TS + 3000,
        ssrc=SSRC,
        payload=codes[3000:3400],
    )
    rec = recorder()
    feed(rec, [*packets, overlapping])
    assert recorded(rec) == decode(codes[:3400])


def test_overlapping_packets_waiting_together() -> None:
    codes = tone_codes(0.1)
    spans = [(160, 400), (320, 560), (0, 160), (560, 800)]
    packets = [
        build_packet(
            payload_type=PCMU, sequence_number=n, timestamp=start, ssrc=1, payload=codes[start:end]
        )
        for n, (start, end) in enumerate(spans)
    ]
    rec = recorder()
    feed(rec, packets)
    assert recorded(rec) == decode(codes)


@st.composite
def network(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    """(indices of the packets sent, arrival order as indices with duplicates): each packet
    is delayed by less than the reorder window, some are lost, some arrive twice."""
    count = draw(st.integers(1, 60))
    lost = draw(st.sets(st.integers(0, count - 1), max_size=count - 1))
    kept = [index for index in range(count) if index not in lost]
    delay = st.integers(0, WINDOW_FRAMES - 1)
    arrivals = [(index + draw(delay), index) for index in kept]
    duplicated = draw(st.lists(st.sampled_from(kept), max_size=5))
    arrivals += [(index + draw(delay), index) for index in duplicated]
    return kept, [index for _, index in sorted(arrivals)]


@settings(max_examples=200)
@given(network())
def test_reordering_within_the_window_duplicates_and_loss_give_the_in_order_recording(
    case: tuple[list[int], list[int]],
) -> None:
    kept, arrivals = case
    payloads = [bytes((index * 37 + k) & 0xFF for k in range(FRAME)) for index in range(60)]
    packets = [
        build_packet(
            payload_type=PCMU,
            sequence_number=(0xFFF0 + index) & 0xFFFF,
            timestamp=(0xFFFF_F000 + FRAME * index) & 0xFFFF_FFFF,
            ssrc=SSRC,
            payload=payloads[index],
        )
        for index in range(60)
    ]
    rec = recorder()
    assert feed(rec, [packets[index] for index in arrivals]) == []
    expected = b"".join(
        decode(payloads[index]) if index in kept else silence(FRAME)
        for index in range(kept[0], kept[-1] + 1)
    )
    assert recorded(rec) == expected


# --- stream changes -------------------------------------------------------------------------


def test_silence_suppression_within_max_jump_is_silence_of_its_length() -> None:
    talk = tone_codes(0.2)
    rec = recorder()
    first = audio(talk)
    # Sequence numbers go on, the timestamp skips 0.5 s (RFC 3551 section 4.1).
    second = audio(talk, seq=SEQ + 10, ts=TS + 10 * FRAME + 4000)
    feed(rec, first + second)
    assert recorded(rec) == decode(talk) + silence(4000) + decode(talk)


def test_a_lone_packet_of_another_ssrc_is_ignored() -> None:
    codes = tone_codes(0.4)
    packets = audio(codes)
    stray = audio(tone_codes(0.02, frequency=900), ssrc=0xBAD, seq=7, ts=123)
    rec = recorder()
    feed(rec, packets[:10] + stray + packets[10:])
    assert recorded(rec) == decode(codes)


def test_a_new_ssrc_continues_after_the_silence_seen_between_the_streams() -> None:
    old, new = tone_codes(0.2), tone_codes(0.2, frequency=900)
    rec = recorder()
    feed(rec, audio(old), start=0.0)  # last packet at 0.18 s
    # The new stream starts 0.3 s later (after 14 frames of nothing), random seq and ts.
    feed(rec, audio(new, ssrc=0xABC, seq=40_000, ts=7), start=0.48)
    assert recorded(rec) == decode(old) + silence(14 * FRAME) + decode(new)


def test_a_timestamp_jump_beyond_max_jump_is_timed_by_arrival() -> None:
    talk = tone_codes(0.2)
    rec = recorder()
    feed(rec, audio(talk), start=0.0)
    # Same SSRC, sequence numbers go on, but the timestamp leaps by an hour: taken as a
    # discontinuity, and the 0.1 s seen between the packets is what is written.
    feed(rec, audio(talk, seq=SEQ + 10, ts=TS + 8000 * 3600), start=0.28)
    assert recorded(rec) == decode(talk) + silence(4 * FRAME) + decode(talk)


def test_a_sender_restarting_its_timestamps_backwards() -> None:
    talk = tone_codes(0.2)
    rec = recorder()
    feed(rec, audio(talk, seq=5000, ts=10_000_000), start=0.0)
    feed(rec, audio(talk, seq=5010, ts=0), start=0.2)
    assert recorded(rec) == decode(talk) + decode(talk)


def test_a_new_stream_whose_first_two_packets_are_swapped() -> None:
    old, new = tone_codes(0.2), tone_codes(0.2, frequency=900)
    packets = audio(new, ssrc=0xABC, seq=9, ts=99)
    rec = recorder()
    feed(rec, audio(old))
    feed(rec, [packets[1], packets[0], *packets[2:]], start=0.2)
    assert recorded(rec) == decode(old) + decode(new)


def test_a_stream_change_reaching_the_maximum_in_the_silence_between() -> None:
    talk = tone_codes(0.2)
    rec = recorder(RecorderSettings(max_length=0.5, silence_timeout=None))
    feed(rec, audio(talk))
    stops = feed(rec, audio(talk, ssrc=0xABC, seq=1, ts=1), start=1.0)
    assert [stop for _, stop in stops] == [Stop(reason=StopReason.MAX_LENGTH)]
    assert rec.pcm() == decode(talk) + silence(2400)


# --- '#' -------------------------------------------------------------------------------------


def test_hash_by_rfc_4733_stops_once_on_its_first_packet() -> None:
    codes = tone_codes(0.4)
    rec = recorder()
    assert feed(rec, audio(codes)) == []
    press = key_press("#", TS + 20 * FRAME, seq=SEQ + 20)
    stops = feed(rec, press + audio(codes, seq=SEQ + 30, ts=TS + 30 * FRAME))
    assert stops == [(0, Stop(reason=StopReason.DIGIT, digit="#"))]
    assert rec.stopped == Stop(reason=StopReason.DIGIT, digit="#")
    assert rec.pcm() == decode(codes)
    assert rec.stop(StopReason.HANGUP) == Stop(reason=StopReason.DIGIT, digit="#")


def test_other_keys_are_ignored() -> None:
    codes = tone_codes(0.4)
    rec = recorder()
    packets = audio(codes)
    press = key_press("5", TS + 10 * FRAME, seq=SEQ + 10) + key_press(
        "*", TS + 12 * FRAME, seq=SEQ + 16
    )
    assert feed(rec, packets[:10] + press + packets[10:]) == []
    assert rec.stopped is None


def test_audio_after_the_key_went_down_is_cut() -> None:
    # A phone sending the tone in-band too: audio of the key press reaches us before the
    # event; the message ends where the event's timestamp says the key went down.
    codes = tone_codes(1.0)
    packets = audio(codes)
    rec = recorder()
    feed(rec, packets[:45])
    stops = feed(rec, key_press("#", TS + 40 * FRAME + 80, seq=SEQ + 45))
    assert stops[0][1].reason is StopReason.DIGIT
    assert rec.pcm() == decode(codes[: 40 * FRAME + 80])
    assert rec.duration == (40 * FRAME + 80) / 8000


def test_a_key_pressed_in_the_first_window_cuts_too() -> None:
    codes = tone_codes(0.2)
    rec = recorder()
    feed(rec, audio(codes)[:5])  # 0.1 s: still waiting to know which packet comes first
    feed(rec, key_press("#", TS + 3 * FRAME, seq=SEQ + 5))
    assert rec.pcm() == decode(codes[: 3 * FRAME])


def test_the_cut_spares_audio_already_taken() -> None:
    codes = tone_codes(1.0)
    packets = audio(codes)
    rec = recorder()
    feed(rec, packets[:45])
    taken = rec.take()
    feed(rec, key_press("#", TS + 40 * FRAME, seq=SEQ + 45))
    assert taken + rec.take() == decode(codes[: 45 * FRAME])


def test_the_cut_reaches_into_a_pause_and_lost_audio() -> None:
    talk = tone_codes(0.2)
    packets = audio(talk + quiet_codes(10) + tone_codes(0.4))
    rec = recorder(RecorderSettings(silence_timeout=2.0))
    feed(rec, packets[:20] + packets[30:32])  # 10 frames of pause, 10 lost
    assert rec.take() == decode(talk)  # the pause is held back, the lost part waits
    # Frames 20 and 21 are written as lost already (the window is 10 frames); the key went
    # down in frame 21, so the message ends there.
    feed(rec, key_press("#", TS + 21 * FRAME + 40, seq=SEQ + 40))
    assert rec.take() == decode(quiet_codes(10)) + silence(FRAME + 40)


def test_lost_audio_between_the_last_packet_and_the_key_is_not_invented() -> None:
    codes = tone_codes(0.4)
    packets = audio(codes)
    rec = recorder()
    feed(rec, packets[:5] + packets[9:11])  # 5-8 lost, 9-10 wait for them
    feed(rec, key_press("#", TS + 7 * FRAME, seq=SEQ + 11))
    assert rec.pcm() == decode(codes[: 5 * FRAME])


def test_hash_waiting_packets_before_it_are_written() -> None:
    codes = tone_codes(0.4)
    packets = audio(codes)
    rec = recorder()
    feed(rec, packets[:5] + packets[6:10])  # packet 5 lost, 6-9 wait for it
    feed(rec, key_press("#", TS + 10 * FRAME, seq=SEQ + 10))
    assert rec.pcm() == decode(codes[: 5 * FRAME]) + silence(FRAME) + decode(
        codes[6 * FRAME : 10 * FRAME]
    )


def test_hash_by_sip_info() -> None:
    codes = tone_codes(0.4)
    packets = audio(codes)
    rec = recorder()
    feed(rec, [packets[0], packets[2], packets[1]])
    stop = rec.stop(StopReason.DIGIT, digit="#")
    assert stop == Stop(reason=StopReason.DIGIT, digit="#")
    assert rec.pcm() == decode(codes[: 3 * FRAME])
    assert rec.feed(packets[3], 1.0) is None


def test_unreadable_event_packets_are_ignored() -> None:
    rec = recorder()
    short = build_packet(
        payload_type=TELEPHONE_EVENT, sequence_number=1, timestamp=TS, ssrc=SSRC, payload=b"\x0b"
    )
    bad_padding = bytearray(key_press("#", TS, seq=2)[0])
    bad_padding[0] |= 0x20  # P bit set, and the last octet (a duration octet) says 0xa0
    bad_padding[-1] = 0xA0
    assert rec.feed(short, 1.0) is None
    assert rec.feed(bytes(bad_padding), 2.0) is None
    assert rec.stopped is None
    assert rec.next_deadline() == 11.0  # the readable one still says the caller is there


def test_events_without_a_negotiated_payload_type_are_not_digits() -> None:
    rec = VoicemailRecorder(
        payload_type=PCMU, event_payload_type=None, now=0.0, settings=NO_SILENCE
    )
    feed(rec, audio(tone_codes(0.1)) + key_press("#", TS, seq=SEQ + 5))
    assert rec.stopped is None


def test_other_stop_digits() -> None:
    rec = recorder(RecorderSettings(silence_timeout=None, stop_digits="*#"))
    stops = feed(rec, audio(tone_codes(0.1)) + key_press("*", TS + 5 * FRAME, seq=SEQ + 5))
    assert [stop for _, stop in stops] == [Stop(reason=StopReason.DIGIT, digit="*")]


# --- maximum length --------------------------------------------------------------------------


def test_the_maximum_length_cuts_to_the_sample() -> None:
    codes = tone_codes(2.0)
    rec = recorder(RecorderSettings(max_length=1.005, silence_timeout=None))  # 8040 samples
    stops = feed(rec, audio(codes))
    assert stops == [(50, Stop(reason=StopReason.MAX_LENGTH))]
    assert rec.pcm() == decode(codes[:8040])
    assert rec.duration == 1.005
    assert rec.feed(audio(codes)[60], 2.0) is None


def test_the_maximum_length_reached_inside_lost_audio() -> None:
    codes = tone_codes(2.0)
    packets = audio(codes)
    rec = recorder(RecorderSettings(max_length=1.0, silence_timeout=None))
    stops = feed(rec, packets[:45] + packets[60:])
    assert [stop for _, stop in stops] == [Stop(reason=StopReason.MAX_LENGTH)]
    assert rec.pcm() == decode(codes[: 45 * FRAME]) + silence(5 * FRAME)


def test_a_hangup_whose_waiting_audio_reaches_the_maximum_says_so() -> None:
    codes = tone_codes(1.0)
    packets = audio(codes)
    rec = recorder(RecorderSettings(max_length=0.5, silence_timeout=None))
    feed(rec, packets[:24] + packets[25:29])  # 24 written, 4 waiting for the 25th
    assert rec.stop(StopReason.HANGUP) == Stop(reason=StopReason.MAX_LENGTH)
    assert rec.pcm() == decode(codes[: 24 * FRAME]) + silence(FRAME)


# --- silence ---------------------------------------------------------------------------------


def test_silence_past_the_timeout_stops_and_is_trimmed() -> None:
    talk = tone_codes(1.0)
    rec = recorder(RecorderSettings(silence_timeout=2.0))
    stops = feed(rec, audio(talk + quiet_codes(150)))
    # Stopped on the 100th silent packet (2 s of audio below the threshold).
    assert stops == [(149, Stop(reason=StopReason.SILENCE))]
    assert rec.pcm() == decode(talk)
    assert rec.duration == 1.0


def test_a_pause_shorter_than_the_timeout_is_kept() -> None:
    talk = tone_codes(0.5)
    codes = talk + quiet_codes(90) + talk
    rec = recorder(RecorderSettings(silence_timeout=2.0))
    assert feed(rec, audio(codes)) == []
    assert recorded(rec) == decode(codes)


def test_lost_audio_counts_as_silence() -> None:
    talk = tone_codes(1.0)
    packets = audio(talk + tone_codes(3.0))
    rec = recorder(RecorderSettings(silence_timeout=0.8))
    feed(rec, packets[:50])
    stops = feed(rec, packets[95:], start=1.9)  # 0.9 s of audio never came
    assert [stop for _, stop in stops] == [Stop(reason=StopReason.SILENCE)]
    assert rec.pcm() == decode(talk)


def test_a_loss_longer_than_max_jump_is_timed_by_arrival() -> None:
    codes = tone_codes(3.0)
    packets = audio(codes)
    rec = recorder()
    feed(rec, packets[:50])
    feed(rec, packets[110:], start=2.2)  # 1.2 s lost: a discontinuity, but on time
    assert recorded(rec) == decode(codes[: 50 * FRAME]) + silence(60 * FRAME) + decode(
        codes[110 * FRAME :]
    )


def test_nothing_but_silence_leaves_an_empty_message() -> None:
    rec = recorder(RecorderSettings(silence_timeout=1.0))
    stops = feed(rec, audio(quiet_codes(60)))
    assert [stop for _, stop in stops] == [Stop(reason=StopReason.SILENCE)]
    assert rec.pcm() == b""
    assert rec.duration == 0


@pytest.mark.parametrize(
    ("dbfs", "is_loud"),
    [(-30.0, True), (-42.0, True), (-48.0, False), (-60.0, False)],
)
@pytest.mark.parametrize("payload_type", [PCMU, PCMA])
def test_the_threshold_is_an_rms_level(dbfs: float, is_loud: bool, payload_type: int) -> None:
    # dBFS against a full-scale square wave: a sine's RMS is its amplitude / sqrt(2).
    amplitude = 10 ** (dbfs / 20) * 2**0.5
    codes = tone_codes(1.5, amplitude=amplitude, payload_type=payload_type)
    rec = recorder(RecorderSettings(silence_timeout=1.0), payload_type=payload_type)
    stops = feed(rec, audio(codes, payload_type=payload_type))
    assert (stops == []) is is_loud


def test_a_lone_click_does_not_break_the_silence() -> None:
    click = bytearray(quiet_codes(1))
    click[80] = 0x80  # one full-scale mu-law sample
    codes = tone_codes(0.2) + quiet_codes(30) + bytes(click) + quiet_codes(30)
    rec = recorder(RecorderSettings(silence_timeout=1.0))
    stops = feed(rec, audio(codes))
    assert [stop for _, stop in stops] == [Stop(reason=StopReason.SILENCE)]
    assert rec.pcm() == decode(tone_codes(0.2))


@pytest.mark.parametrize("frame", [240, 320, 480])
def test_longer_packets(frame: int) -> None:
    talk = tone_codes(0.96)
    rec = recorder(RecorderSettings(silence_timeout=0.96))
    stops = feed(rec, audio(talk + quiet_codes(60), frame=frame), step=frame / 8000)
    assert [stop for _, stop in stops] == [Stop(reason=StopReason.SILENCE)]
    assert rec.pcm() == decode(talk)


def test_empty_audio_packets_say_only_that_the_caller_is_there() -> None:
    rec = recorder()
    empty = build_packet(payload_type=PCMU, sequence_number=1, timestamp=TS, ssrc=SSRC)
    assert rec.feed(empty, 3.0) is None
    assert rec.next_deadline() == 13.0
    assert recorded(rec) == b""


def test_silence_off_records_it_all() -> None:
    rec = recorder(RecorderSettings(silence_timeout=None))
    assert feed(rec, audio(quiet_codes(600))) == []
    assert len(recorded(rec)) == 2 * FRAME * 600


# --- no RTP ----------------------------------------------------------------------------------


def test_no_rtp_from_the_start() -> None:
    rec = recorder(RecorderSettings(no_rtp_timeout=5.0), now=10.0)
    assert rec.next_deadline() == 15.0
    assert rec.check(14.99) is None
    assert rec.check(15.0) == Stop(reason=StopReason.NO_RTP)
    assert rec.next_deadline() is None
    assert rec.check(20.0) is None


def test_every_rtp_packet_moves_the_deadline_rtcp_and_garbage_do_not() -> None:
    rec = recorder(RecorderSettings(no_rtp_timeout=5.0))
    rec.feed(audio(tone_codes(0.02))[0], 1.0)
    assert rec.next_deadline() == 6.0
    rec.feed(key_press("1", TS, seq=SEQ + 1)[0], 2.0)
    assert rec.next_deadline() == 7.0
    comfort_noise = build_packet(
        payload_type=13, sequence_number=SEQ + 2, timestamp=TS, ssrc=SSRC, payload=b"\x40"
    )
    rec.feed(comfort_noise, 3.0)
    assert rec.next_deadline() == 8.0
    sender_report = struct.pack("!BBHIIIIII", 0x80, 200, 6, SSRC, 1, 2, TS, 10, 1600)
    for junk in (sender_report, b"\x80\x00", b"\x40" + bytes(20), b""):
        rec.feed(junk, 4.0)
    assert rec.next_deadline() == 8.0
    assert rec.check(8.0) == Stop(reason=StopReason.NO_RTP)
    assert rec.pcm() == decode(tone_codes(0.02))


# --- stop, take, pcm -------------------------------------------------------------------------


def test_hangup_writes_what_waits_and_stops_once() -> None:
    codes = tone_codes(0.2)
    packets = audio(codes)
    rec = recorder()
    feed(rec, [packets[0], packets[2], packets[3]])
    assert rec.stop(StopReason.HANGUP) == Stop(reason=StopReason.HANGUP)
    assert rec.stop(StopReason.NO_RTP) == Stop(reason=StopReason.HANGUP)
    assert rec.pcm() == decode(codes[:FRAME]) + silence(FRAME) + decode(
        codes[2 * FRAME : 4 * FRAME]
    )
    assert rec.feed(packets[4], 1.0) is None


def test_a_hangup_before_any_audio() -> None:
    rec = recorder()
    assert rec.stop(StopReason.HANGUP) == Stop(reason=StopReason.HANGUP)
    assert rec.pcm() == b""
    assert rec.take() == b""
    assert rec.duration == 0


def test_takes_add_up_to_the_message() -> None:
    talk = tone_codes(1.0)
    codes = talk + quiet_codes(20) + talk + quiet_codes(200)
    packets = audio(codes)
    whole = recorder(RecorderSettings(silence_timeout=2.0))
    feed(whole, packets)
    rec = recorder(RecorderSettings(silence_timeout=2.0))
    chunks = []
    for index, packet in enumerate(packets):
        rec.feed(packet, index * 0.02)
        if index % 7 == 0:
            chunks.append(rec.take())
    chunks.append(rec.take())
    assert rec.stopped == Stop(reason=StopReason.SILENCE)
    assert b"".join(chunks) == whole.pcm() == decode(talk + quiet_codes(20) + talk)
    with pytest.raises(RuntimeError, match="after take"):
        rec.pcm()


def test_a_silent_run_is_held_back_until_it_ends() -> None:
    talk = tone_codes(0.2)
    rec = recorder(RecorderSettings(silence_timeout=2.0))
    feed(rec, audio(talk + quiet_codes(10)))
    assert rec.take() == decode(talk)
    assert rec.duration == 0.2
    feed(rec, audio(talk, seq=SEQ + 20, ts=TS + 20 * FRAME))
    assert rec.take() == decode(quiet_codes(10) + talk)


def test_a_hangup_keeps_the_trailing_pause() -> None:
    talk = tone_codes(0.2)
    rec = recorder(RecorderSettings(silence_timeout=2.0))
    feed(rec, audio(talk + quiet_codes(10)))
    rec.stop(StopReason.HANGUP)
    assert rec.pcm() == decode(talk + quiet_codes(10))


@pytest.mark.parametrize("payload_type", [PCMU, PCMA])
def test_lost_audio_is_digital_silence_in_either_law(payload_type: int) -> None:
    codes = tone_codes(0.1, payload_type=payload_type)
    packets = audio(codes, payload_type=payload_type)
    rec = recorder(payload_type=payload_type)
    feed(rec, [packets[0], packets[2], packets[3], packets[4]])
    out = recorded(rec)
    assert out[2 * FRAME : 4 * FRAME] == silence(FRAME)


def test_the_beep_recorded_is_the_beep() -> None:
    rec = recorder(RecorderSettings())
    prompt = PromptPlayer([beep()], payload_type=PCMU, rng=random.Random(1), now=0.0)
    feed(rec, prompt.frames(1.0))
    assert tone_power(le_samples(recorded(rec)), 8000, 1000) > 0.95


# --- construction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"max_length": 0},
        {"no_rtp_timeout": -1},
        {"silence_timeout": 0},
        {"silence_threshold_dbfs": 3},
        {"reorder_window": -0.1},
        {"reorder_window": 2.0, "max_jump": 1.0},
    ],
)
def test_settings_refuse_nonsense(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        RecorderSettings(**settings)  # type: ignore[arg-type]


def test_only_g711_and_distinct_payload_types() -> None:
    with pytest.raises(ValueError, match="only PCMU"):
        VoicemailRecorder(payload_type=9, event_payload_type=101, now=0.0)
    with pytest.raises(ValueError, match="both on payload type"):
        VoicemailRecorder(payload_type=0, event_payload_type=0, now=0.0)
