"""RelaySession: latching, forwarding both ways, counters, idle time, and the caller's
stream staying continuous when side B is re-pointed to another callee."""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.commands import (
    Address,
    Latched,
    MediaSessionId,
    OpenSession,
    Side,
)
from media.relay import RelaySession
from media.rtp import build_packet, parse_header

SID = MediaSessionId("call-1")
CALLER: Address = ("198.51.100.10", 4000)
CALLEE: Address = ("203.0.113.20", 5000)
CALLEE_2: Address = ("203.0.113.30", 6000)
STRANGER: Address = ("192.0.2.66", 4000)
FRAME = 160  # G.711, 20 ms at 8 kHz
PTIME = 0.02


def rtp(seq: int, ts: int, ssrc: int, *, marker: bool = False, payload_type: int = 0) -> bytearray:
    payload = bytes((seq + i) & 0xFF for i in range(FRAME))  # 172 bytes in all
    return bytearray(
        build_packet(
            payload_type=payload_type,
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload=payload,
            marker=marker,
        )
    )


def sender_report(ssrc: int, rtp_ts: int) -> bytearray:
    """A compound RTCP packet: SR without report blocks, then SDES with one CNAME chunk."""
    sr = struct.pack("!BBHIIIIII", 0x80, 200, 6, ssrc, 1, 2, rtp_ts, 10, 1600)
    cname = b"\x01\x03abc\x00\x00\x00"  # CNAME "abc", END, padding to 32 bits
    sdes = struct.pack("!BBHI", 0x81, 202, 3, ssrc) + cname
    return bytearray(sr + sdes)


def session(
    *,
    expected_a: Address | None = CALLER,
    expected_b: Address | None = CALLEE,
    now: float = 0.0,
    latch_any: bool = False,
    frame_samples: int = FRAME,
) -> RelaySession:
    return RelaySession(
        SID,
        expected_a=expected_a,
        expected_b=expected_b,
        now=now,
        latch_any=latch_any,
        frame_samples=frame_samples,
    )


# Forwarding and latching.


def test_packets_go_to_the_other_sides_expected_address_until_it_latches() -> None:
    relay = session()
    assert relay.on_packet(Side.A, rtp(1, 0, 7), CALLER, 0.0) == CALLEE
    nat_port = ("203.0.113.20", 61000)  # the callee's NAT rewrote its port
    assert relay.on_packet(Side.B, rtp(1, 0, 9), nat_port, 0.01) == CALLER
    assert relay.latched(Side.B) == nat_port
    assert relay.on_packet(Side.A, rtp(2, 160, 7), CALLER, 0.02) == nat_port


def test_before_latching_only_the_signalled_ip_is_accepted() -> None:
    relay = session()
    assert relay.on_packet(Side.A, rtp(1, 0, 7), STRANGER, 0.0) is None
    assert relay.latched(Side.A) is None
    assert relay.on_packet(Side.A, rtp(1, 0, 7), ("198.51.100.10", 4444), 0.0) == CALLEE
    assert relay.latched(Side.A) == ("198.51.100.10", 4444)
    assert relay.stats().dropped_from_a == 1


def test_after_latching_only_the_latched_source_is_accepted() -> None:
    relay = session()
    relay.on_packet(Side.A, rtp(1, 0, 7), CALLER, 0.0)
    assert relay.on_packet(Side.A, rtp(2, 160, 7), ("198.51.100.10", 4002), 0.02) is None
    assert relay.on_packet(Side.A, rtp(2, 160, 7), STRANGER, 0.02) is None
    assert relay.on_packet(Side.A, rtp(2, 160, 7), CALLER, 0.02) == CALLEE
    stats = relay.stats()
    assert (stats.packets_a_to_b, stats.dropped_from_a) == (2, 2)


def test_update_remote_lets_a_side_latch_again() -> None:
    relay = session()
    relay.on_packet(Side.B, rtp(1, 0, 9), CALLEE, 0.0)
    moved = ("203.0.113.99", 7000)  # re-INVITE from the callee's new network
    relay.update_remote(Side.B, moved, 1.0)
    assert relay.latched(Side.B) is None
    assert relay.destination(Side.B) == moved
    assert relay.on_packet(Side.B, rtp(2, 160, 9), CALLEE, 1.0) is None  # the old IP
    assert relay.on_packet(Side.B, rtp(2, 160, 9), ("203.0.113.99", 7010), 1.0) == CALLER
    assert relay.latched(Side.B) == ("203.0.113.99", 7010)


def test_update_remote_with_the_same_ip_keeps_sending_to_the_latched_port() -> None:
    relay = session()
    natted = ("203.0.113.20", 61000)
    relay.on_packet(Side.B, rtp(1, 0, 9), natted, 0.0)
    relay.update_remote(Side.B, CALLEE, 60.0)  # session refresh, same SDP
    assert relay.destination(Side.B) == natted
    assert relay.on_packet(Side.A, rtp(1, 0, 7), CALLER, 60.0) == natted
    rebound = ("203.0.113.20", 62000)  # the NAT rebound; the open latch follows it
    assert relay.on_packet(Side.B, rtp(2, 160, 9), rebound, 60.01) == CALLER
    assert relay.destination(Side.B) == rebound


def test_latch_any_accepts_the_first_source_only() -> None:
    relay = session(latch_any=True)
    assert relay.on_packet(Side.A, rtp(1, 0, 7), STRANGER, 0.0) == CALLEE
    assert relay.on_packet(Side.A, rtp(2, 160, 7), CALLER, 0.02) is None
    assert relay.latched(Side.A) == STRANGER


def test_a_side_without_expectation_gets_nothing_and_sends_nothing() -> None:
    relay = session(expected_b=None)
    assert relay.on_packet(Side.A, rtp(1, 0, 7), CALLER, 0.0) is None  # nowhere to go
    assert relay.on_packet(Side.B, rtp(1, 0, 9), CALLEE, 0.0) is None  # nothing accepted
    relay.update_remote(Side.B, CALLEE, 1.0)  # the answer arrived
    assert relay.on_packet(Side.A, rtp(2, 160, 7), CALLER, 1.0) == CALLEE
    assert relay.stats().dropped == 2


@pytest.mark.parametrize(
    "datagram",
    [bytearray(b"\x80\x00\x00"), bytearray(11), bytearray(b"\x40" + bytes(171))],
    ids=["short", "eleven-bytes", "version-1"],
)
def test_non_rtp_is_dropped_and_does_not_latch(datagram: bytearray) -> None:
    relay = session()
    assert relay.on_packet(Side.A, datagram, CALLER, 0.0) is None
    assert relay.on_packet(Side.B, bytearray(datagram), CALLEE, 0.0) is None
    assert relay.latched(Side.A) is None
    assert relay.latched(Side.B) is None
    assert relay.stats().dropped == 2


def test_latches_are_reported_once() -> None:
    relay = session()
    relay.on_packet(Side.A, rtp(1, 0, 7), CALLER, 0.0)
    relay.on_packet(Side.A, rtp(2, 160, 7), CALLER, 0.02)
    relay.on_rtcp_packet(Side.B, sender_report(9, 0), ("203.0.113.20", 5001), 0.5)
    assert relay.take_reports() == [
        Latched(session_id=SID, side=Side.A, address=CALLER),
        Latched(session_id=SID, side=Side.B, address=("203.0.113.20", 5001), is_rtcp=True),
    ]
    assert relay.take_reports() == []


def test_ipv6_expectations_compare_in_canonical_form() -> None:
    relay = session(expected_a=("2001:DB8:0:0::10", 4000))
    assert relay.on_packet(Side.A, rtp(1, 0, 7), ("2001:db8::10", 4000), 0.0) == CALLEE


# Counters and idle time.


def test_counters_per_direction() -> None:
    relay = session()
    for i in range(3):
        relay.on_packet(Side.A, rtp(i, i * FRAME, 7), CALLER, i * PTIME)
    for i in range(2):
        relay.on_packet(Side.B, rtp(i, i * FRAME, 9), CALLEE, i * PTIME)
    relay.on_packet(Side.B, rtp(5, 0, 9), STRANGER, 0.1)
    stats = relay.stats()
    assert (stats.packets_a_to_b, stats.bytes_a_to_b) == (3, 3 * 172)
    assert (stats.packets_b_to_a, stats.bytes_b_to_a) == (2, 2 * 172)
    assert (stats.dropped_from_a, stats.dropped_from_b, stats.dropped) == (0, 1, 1)
    assert (stats.last_packet_at_a, stats.last_packet_at_b) == (0.04, 0.02)
    assert relay.last_packet_at(Side.A) == 0.04
    assert stats.b_switches == 0


def test_idle_for_counts_from_the_last_rtp_of_either_side() -> None:
    relay = session(now=100.0)
    assert relay.idle_for(130.0) == 30.0  # no RTP at all since the session opened
    relay.on_packet(Side.A, rtp(1, 0, 7), CALLER, 131.0)
    relay.on_packet(Side.B, rtp(1, 0, 9), CALLEE, 132.0)
    assert relay.idle_for(140.0) == 8.0
    relay.on_packet(Side.A, rtp(1, 0, 7), STRANGER, 139.0)  # dropped: not activity
    relay.on_rtcp_packet(Side.A, sender_report(7, 0), ("198.51.100.10", 4001), 139.0)
    assert relay.idle_for(140.0) == 8.0  # RTCP goes on during hold: not activity either
    relay.update_remote(Side.B, CALLEE, 150.0)  # a re-INVITE restarts the clock
    assert relay.idle_for(155.0) == 5.0


def test_rtp_with_nowhere_to_go_yet_still_counts_as_activity() -> None:
    """The caller talks before the callee's SDP is known: dropped, but the call is not
    silent (no RTP timeout for it)."""
    relay = session(expected_b=None, now=100.0)
    assert relay.on_packet_a(rtp(1, 0, 7), CALLER, 125.0) is None
    assert relay.idle_for(130.0) == 5.0
    assert relay.last_packet_at(Side.A) == 125.0


def test_the_side_bound_handlers_decide_as_on_packet_does() -> None:
    by_side, bound = session(), session()
    packets = [
        (Side.A, rtp(1, 0, 7), CALLER),
        (Side.B, rtp(1, 0, 9), CALLEE),
        (Side.A, rtp(2, 160, 7), STRANGER),
        (Side.B, bytearray(11), CALLEE),
        (Side.B, rtp(2, 160, 9), CALLEE),
    ]
    for at, (side, data, source) in enumerate(packets):
        handler = bound.on_packet_a if side is Side.A else bound.on_packet_b
        assert by_side.on_packet(side, bytearray(data), source, float(at)) == handler(
            bytearray(data), source, float(at)
        )
    assert by_side.stats() == bound.stats()
    assert by_side.take_reports() == bound.take_reports()


# RTCP.


def test_rtcp_has_its_own_latch_and_goes_to_port_plus_one() -> None:
    relay = session()
    caller_rtcp = ("198.51.100.10", 4001)
    assert relay.on_rtcp_packet(Side.A, sender_report(7, 0), caller_rtcp, 0.0) == (
        "203.0.113.20",
        5001,
    )
    assert relay.on_rtcp_packet(Side.A, sender_report(7, 0), STRANGER, 0.0) is None
    callee_rtcp = ("203.0.113.20", 61001)
    assert relay.on_rtcp_packet(Side.B, sender_report(9, 0), callee_rtcp, 0.1) == caller_rtcp
    assert relay.on_rtcp_packet(Side.A, sender_report(7, 0), caller_rtcp, 5.0) == callee_rtcp
    assert relay.latched(Side.A) is None  # the RTP latch is separate
    assert relay.on_rtcp_packet(Side.A, bytearray(b"\x80\xc8\x00"), caller_rtcp, 5.0) is None
    stats = relay.stats()
    assert (stats.rtcp_a_to_b, stats.rtcp_b_to_a, stats.dropped_from_a) == (2, 1, 2)


# Re-pointing side B.


def test_nothing_is_rewritten_before_a_switch() -> None:
    relay = session()
    for seq, ssrc in [(100, 0xAAAA), (101, 0xAAAA), (7, 0xBBBB), (8, 0xBBBB)]:
        packet = rtp(seq, seq * FRAME, ssrc)
        original = bytes(packet)
        assert relay.on_packet(Side.B, packet, CALLEE, 0.0) == CALLER
        assert bytes(packet) == original  # even when B changes SSRC by itself


def stream(
    relay: RelaySession, source: Address, packets: list[bytearray], start: float
) -> list[bytearray]:
    """Send B->A packets 20 ms apart; return the ones forwarded (as rewritten)."""
    out = []
    for i, packet in enumerate(packets):
        if relay.on_packet(Side.B, packet, source, start + i * PTIME) == CALLER:
            out.append(packet)
    return out


def callee_packets(n: int, seq: int, ts: int, ssrc: int) -> list[bytearray]:
    return [rtp((seq + i) & 0xFFFF, (ts + i * FRAME) & 0xFFFF_FFFF, ssrc) for i in range(n)]


def assert_one_continuous_stream(heard: list[bytearray], switch_at: set[int]) -> None:
    headers = [parse_header(p) for p in heard]
    assert len({h.ssrc for h in headers}) == 1
    for before, after in itertools.pairwise(headers):
        assert (after.sequence_number - before.sequence_number) % 2**16 == 1
        assert (after.timestamp - before.timestamp) % 2**32 == FRAME
    assert {i for i, h in enumerate(headers) if h.marker} == switch_at


def test_switching_callee_keeps_the_callers_stream_continuous() -> None:
    relay = session()
    first = callee_packets(50, seq=100, ts=1000, ssrc=0x1111)
    second = callee_packets(50, seq=65500, ts=4294967000, ssrc=0x2222)  # both wrap
    heard = stream(relay, CALLEE, first, 0.0)
    relay.switch_b(CALLEE_2, 50 * PTIME)
    assert relay.destination(Side.B) == CALLEE_2
    payloads = [bytes(p[12:]) for p in second]
    heard += stream(relay, CALLEE_2, second, 50 * PTIME)
    assert len(heard) == 100
    assert_one_continuous_stream(heard, switch_at={50})
    assert parse_header(heard[-1]).ssrc == 0x1111
    assert [bytes(p[12:]) for p in heard[50:]] == payloads  # payloads untouched
    assert relay.stats().b_switches == 1


def test_the_timestamp_gap_reflects_the_time_between_callees() -> None:
    relay = session()
    heard = stream(relay, CALLEE, callee_packets(3, 100, 1000, 0x1111), 0.0)
    relay.switch_b(CALLEE_2, 1.0)
    heard += stream(relay, CALLEE_2, callee_packets(2, 9, 77, 0x2222), 0.04 + 3.0)
    ts = [parse_header(p).timestamp for p in heard]
    seq = [parse_header(p).sequence_number for p in heard]
    assert seq == [100, 101, 102, 103, 104]
    assert ts[3] - ts[2] == 150 * FRAME  # 3 s of silence, in whole 20 ms frames
    assert ts[4] - ts[3] == FRAME


def test_the_old_callee_is_not_heard_after_the_switch_even_from_the_same_ip() -> None:
    relay = session()
    stream(relay, CALLEE, callee_packets(3, 100, 1000, 0x1111), 0.0)
    same_nat = ("203.0.113.20", 5002)  # the next callee sits behind the same NAT
    relay.switch_b(same_nat, 1.0)
    assert relay.on_packet(Side.B, rtp(103, 1480, 0x1111), CALLEE, 1.0) is None  # late
    assert relay.on_packet(Side.B, rtp(1, 0, 0x2222), same_nat, 1.02) == CALLER
    assert relay.on_packet(Side.B, rtp(104, 1640, 0x1111), CALLEE, 1.03) is None


def test_a_to_b_is_not_rewritten_after_a_switch() -> None:
    relay = session()
    stream(relay, CALLEE, callee_packets(3, 100, 1000, 0x1111), 0.0)
    relay.switch_b(CALLEE_2, 1.0)
    packet = rtp(500, 8000, 0x7777)
    original = bytes(packet)
    assert relay.on_packet(Side.A, packet, CALLER, 1.0) == CALLEE_2
    assert bytes(packet) == original


def test_the_stream_continues_from_the_highest_sequence_sent() -> None:
    relay = session()
    reordered = [rtp(100, 1000, 0x1111), rtp(102, 1320, 0x1111), rtp(101, 1160, 0x1111)]
    stream(relay, CALLEE, reordered, 0.0)
    relay.switch_b(CALLEE_2, 1.0)
    (first,) = stream(relay, CALLEE_2, [rtp(40000, 5, 0x2222)], 0.06)
    header = parse_header(first)
    assert (header.sequence_number, header.timestamp, header.marker) == (103, 1480, True)


def test_an_ssrc_change_after_a_switch_is_mapped_as_well() -> None:
    relay = session()
    heard = stream(relay, CALLEE, callee_packets(5, 100, 1000, 0x1111), 0.0)
    relay.switch_b(CALLEE_2, 0.1)
    heard += stream(relay, CALLEE_2, callee_packets(5, 3000, 0, 0x2222), 0.1)
    heard += stream(relay, CALLEE_2, callee_packets(5, 17, 999, 0x3333), 0.2)  # a new SSRC
    assert_one_continuous_stream(heard, switch_at={5, 10})


def test_switch_before_the_caller_heard_b_passes_the_new_stream_as_is() -> None:
    relay = session()
    relay.switch_b(CALLEE_2, 1.0)  # the first callee never sent RTP
    packet = rtp(9, 99, 0x2222)
    original = bytes(packet)
    assert relay.on_packet(Side.B, packet, CALLEE_2, 1.0) == CALLER
    assert bytes(packet) == original


def test_rtcp_from_the_new_callee_speaks_for_the_callers_stream() -> None:
    relay = session()
    stream(relay, CALLEE, callee_packets(5, 100, 1000, 0x1111), 0.0)
    relay.switch_b(CALLEE_2, 0.1)
    stream(relay, CALLEE_2, callee_packets(5, 3000, 50_000, 0x2222), 0.1)
    report = sender_report(0x2222, 50_000 + 4 * FRAME)
    dest = relay.on_rtcp_packet(Side.B, report, ("203.0.113.30", 6001), 0.2)
    assert dest == ("198.51.100.10", 4001)
    sr_ssrc, sr_ts = struct.unpack_from("!I8xI", report, 4)
    (sdes_ssrc,) = struct.unpack_from("!I", report, 28 + 4)
    assert (sr_ssrc, sdes_ssrc) == (0x1111, 0x1111)
    assert sr_ts == 1000 + 9 * FRAME  # the last packet the caller heard carried this


def test_rtcp_on_the_rtp_port_is_forwarded_untouched() -> None:
    relay = session()
    stream(relay, CALLEE, callee_packets(2, 100, 1000, 0x1111), 0.0)
    relay.switch_b(CALLEE_2, 0.1)
    stream(relay, CALLEE_2, callee_packets(2, 3000, 0, 0x2222), 0.1)
    muxed = sender_report(0x2222, 0)
    original = bytes(muxed)
    assert relay.on_packet(Side.B, muxed, CALLEE_2, 0.2) == CALLER
    assert bytes(muxed) == original
    (after,) = stream(relay, CALLEE_2, [rtp(3002, 320, 0x2222)], 0.14)
    assert parse_header(after).sequence_number == 104  # the rewrite state was not disturbed


def test_from_command() -> None:
    command = OpenSession(
        session_id=SID,
        local_host="192.0.2.1",
        rtp_port_a=30000,
        rtp_port_b=30002,
        expected_a=CALLER,
        expected_b=None,
        latch_any=True,
    )
    relay = RelaySession.from_command(command, now=5.0)
    assert relay.session_id == SID
    assert relay.destination(Side.A) == CALLER
    assert relay.destination(Side.B) is None
    assert relay.on_packet(Side.A, rtp(1, 0, 7), STRANGER, 5.0) is None  # no B yet
    assert relay.latched(Side.A) == STRANGER  # latch_any came through


def test_invalid_clock_is_refused() -> None:
    with pytest.raises(ValueError, match="frame_samples 0"):
        session(frame_samples=0)


@settings(max_examples=300, deadline=None)
@given(
    segments=st.lists(
        st.tuples(
            st.integers(1, 40),  # packets from this callee
            st.integers(0, 2**16 - 1),  # its first sequence number
            st.integers(0, 2**32 - 1),  # its first timestamp
            st.integers(0, 2**32 - 1),  # its SSRC
            st.integers(0, 200),  # frames missing between the callees
        ),
        min_size=1,
        max_size=5,
    )
)
def test_any_sequence_of_callees_sounds_like_one_stream(
    segments: list[tuple[int, int, int, int, int]],
) -> None:
    callees = [(f"203.0.113.{40 + i}", 5000 + 2 * i) for i in range(len(segments))]
    relay = session(expected_b=callees[0])
    heard: list[bytearray] = []
    expected_ts_gaps: list[int] = []
    now = 0.0
    for index, ((count, seq, ts, ssrc, silence), callee) in enumerate(
        zip(segments, callees, strict=True)
    ):
        if index:
            relay.switch_b(callee, now)
            now += silence * PTIME
            expected_ts_gaps.append((silence + 1) * FRAME)
        for packet in callee_packets(count, seq, ts, ssrc):
            assert relay.on_packet(Side.B, packet, callee, now) == CALLER
            heard.append(packet)
            now += PTIME
    headers = [parse_header(p) for p in heard]
    first_ssrc = segments[0][3]
    assert {h.ssrc for h in headers} == {first_ssrc}
    starts = set()
    total = 0
    for count, *_ in segments:
        starts.add(total)
        total += count
    assert {i for i, h in enumerate(headers) if h.marker} == starts - {0}
    gaps = []
    for i, (before, after) in enumerate(itertools.pairwise(headers), start=1):
        assert (after.sequence_number - before.sequence_number) % 2**16 == 1
        step = (after.timestamp - before.timestamp) % 2**32
        if i in starts:
            gaps.append(step)
        else:
            assert step == FRAME
    assert gaps == expected_ts_gaps
