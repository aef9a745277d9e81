"""RelaySession: the per-call decision of an RTP relay between side A (the caller) and
side B (the answered callee), two RTP sockets and two RTCP sockets' worth of logic.

The host calls :meth:`RelaySession.on_packet` for every datagram on a side's RTP socket
and :meth:`RelaySession.on_rtcp_packet` for its RTCP socket (port + 1); each answers where
to send the datagram, or ``None`` to drop it, after rewriting it in place when needed.
Per packet this is plain attribute work and one ``struct`` call: no event objects, no
allocation (PEERS.md: the whole budget per relayed packet is about 15 us).

Latching (symmetric RTP, RFC 4961; the policy is chosen against "RTP bleed"):

* Each side has an expected address from its SDP (:class:`~media.commands.OpenSession`,
  :class:`~media.commands.UpdateRemote`). Until the side latches, packets are accepted
  only from the expected IP, on any port (a NAT may rewrite the port), and the first one
  latches the side to its exact source address. With ``latch_any`` the first packet from
  any address latches (for NATs the switch cannot see through); the window is the same.
* Once latched, only the latched address is accepted; packets from anywhere else are
  dropped and counted. Media to a side goes to its latched address, else its expected one.
* An ``UpdateRemote`` (answer SDP, re-INVITE) opens the latch again: the next accepted
  packet latches. Media to that side keeps going to the old latched address while its IP
  is still the expected one, so a session refresh loses nothing behind a NAT.
* RTCP has its own latch under the same rules; until it latches, RTCP to a side goes to
  its expected IP on the expected RTP port + 1 (RFC 3550 §11; ``a=rtcp``, RFC 3605, is
  not honoured). A NAT rebinding the port mid-call without a re-INVITE is not followed.

Hold: a re-INVITE with ``sendonly`` or ``inactive`` is only SDP. The relay keeps relaying
whatever arrives; :meth:`RelaySession.idle_for` lets the switch end a call without RTP,
and the switch knows when a silent call is merely held.

Re-pointing side B (:meth:`RelaySession.switch_b`): when the call moves to another callee,
the caller must hear one stream. From the first packet of the new B source on, packets
B->A carry the SSRC the caller last saw from B; their sequence numbers continue from the
highest one sent to A (+1) and their timestamps from the last one sent, advanced by the
time elapsed since the last packet to A rounded to whole frames (RFC 3550 §5.1: the
timestamp reflects the sampling instant), at least one frame; the new source's own
increments are kept (fixed offsets, modulo 2**16 and 2**32), and the first packet carries
the marker bit (RFC 3550 §5.1, first packet after a discontinuity). Once rewriting, any
later SSRC change from B re-anchors the same way. RTCP from B gets the same SSRC (SR, RR,
SDES first chunk, BYE) and, in a sender report, the same timestamp offset. Direction A->B
is never rewritten: the new callee simply sees a new stream. Before the first switch
everything passes untouched.

Payloads are never touched (PCMU, PCMA, G.722, telephone-event alike). The protocol has
no rtcp-mux (RFC 5761): we do not offer it, so RTCP-looking packets on an RTP socket are
forwarded unchanged and do not disturb the rewrite state.

Inputs: on_packet, on_rtcp_packet (per datagram); update_remote, switch_b (commands);
idle_for, stats, take_reports (queries).
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Final, cast

from media.commands import (
    Address,
    Latched,
    MediaReport,
    MediaSessionId,
    OpenSession,
    SessionStats,
    Side,
)
from media.rtp import FIXED_HEADER_SIZE

# One struct call reads (and one writes) sequence number, timestamp and SSRC together
# (RFC 3550 §5.1, octets 2-11), rather than media.rtp's parse_header (an 11-field tuple
# and CSRC/padding checks the relay does not need) and its three single-field setters.
_SEQ_TS_SSRC: Final = struct.Struct("!HII")
_read_seq_ts_ssrc: Final = _SEQ_TS_SSRC.unpack_from
_write_seq_ts_ssrc: Final = _SEQ_TS_SSRC.pack_into
_U16: Final = struct.Struct("!H")
_U32: Final = struct.Struct("!I")

_SEQ_MASK: Final = 0xFFFF
_SEQ_HALF: Final = 0x8000
_TS_MASK: Final = 0xFFFF_FFFF
_VERSION_MASK: Final = 0xC0
_VERSION_2: Final = 0x80  # V=2 in the top two bits of the first octet
_MARKER: Final = 0x80
_RTCP_HEADER_SIZE: Final = 8  # V/P/count, packet type, length, first SSRC (RFC 3550 §6.4)
_RTCP_SR: Final = 200
_RTCP_RR: Final = 201
_RTCP_SDES: Final = 202
_RTCP_BYE: Final = 203
_SR_TIMESTAMP_OFFSET: Final = 16  # header 4, SSRC 4, NTP timestamp 8 (RFC 3550 §6.4.1)


def _canonical_ip(host: str) -> str:
    """The form the socket layer reports a source IP in, so that comparisons hold for
    ``2001:DB8::1`` versus ``2001:db8::1``; a name is left as it is."""
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host


class _Leg:
    """One side's view: what its SDP said, what it latched to, and its counters.
    ``packets``/``octets``/``rtcp_packets`` count what it sent that was forwarded."""

    __slots__ = (
        "dropped",
        "expected",
        "expected_ip",
        "last_packet_at",
        "octets",
        "packets",
        "retired",
        "rtcp_dest",
        "rtcp_packets",
        "rtcp_source",
        "rtp_dest",
        "rtp_source",
    )

    def __init__(self, expected: Address | None) -> None:
        self.expected: Address | None = None
        self.expected_ip: str | None = None
        self.rtp_source: Address | None = None  # latched RTP source
        self.rtcp_source: Address | None = None  # latched RTCP source
        self.rtp_dest: Address | None = None  # where this side's RTP goes
        self.rtcp_dest: Address | None = None
        self.retired: frozenset[Address] = frozenset()  # sources of callees switched away from
        self.packets = 0
        self.octets = 0
        self.rtcp_packets = 0
        self.dropped = 0
        self.last_packet_at: float | None = None
        self.expect(expected)

    def expect(self, expected: Address | None) -> None:
        """Take a new expectation and open both latches; keep sending to a latched
        address while its IP is still the expected one."""
        self.expected = expected
        self.expected_ip = None if expected is None else _canonical_ip(expected[0])
        rtp, rtcp = self.rtp_source, self.rtcp_source
        self.rtp_source = self.rtcp_source = None
        self.rtp_dest = rtp if rtp is not None and rtp[0] == self.expected_ip else expected
        if rtcp is not None and rtcp[0] == self.expected_ip:
            self.rtcp_dest = rtcp
        else:
            self.rtcp_dest = None if expected is None else (expected[0], expected[1] + 1)

    def accepts_new(self, source: Address, latch_any: bool) -> bool:
        return source not in self.retired and (latch_any or source[0] == self.expected_ip)


class RelaySession:
    """Relay state of one call: latching per side, counters, and the B->A rewrite that
    keeps the caller's stream continuous when side B is re-pointed.

    ``now`` is the host's monotonic time; the session reads no clock.
    """

    __slots__ = (
        "_a",
        "_b",
        "_b_switches",
        "_clock_rate",
        "_frame_samples",
        "_hi_seq",
        "_hi_ts",
        "_is_rewriting",
        "_last_to_a_at",
        "_latch_any",
        "_out_ssrc",
        "_quiet_since",
        "_reports",
        "_seq_offset",
        "_source_ssrc",
        "_switch_pending",
        "_ts_offset",
        "session_id",
    )

    def __init__(
        self,
        session_id: MediaSessionId,
        *,
        expected_a: Address | None,
        expected_b: Address | None,
        now: float,
        latch_any: bool = False,
        clock_rate: int = 8000,
        frame_samples: int = 160,
    ) -> None:
        if clock_rate <= 0 or frame_samples <= 0:
            raise ValueError(f"clock_rate {clock_rate} and frame_samples {frame_samples}")
        self.session_id = session_id
        self._a = _Leg(expected_a)
        self._b = _Leg(expected_b)
        self._latch_any = latch_any
        self._clock_rate = clock_rate
        self._frame_samples = frame_samples
        self._quiet_since = now  # idle_for counts from here when no RTP came since
        self._reports: list[MediaReport] = []
        # The B->A stream as the caller hears it.
        self._out_ssrc: int | None = None  # SSRC the caller last saw from B
        self._source_ssrc: int | None = None  # SSRC of the B source being mapped onto it
        self._hi_seq = 0  # highest sequence number sent to A (modular), its timestamp
        self._hi_ts = 0
        self._last_to_a_at = now
        self._is_rewriting = False
        self._switch_pending = False
        self._seq_offset = 0
        self._ts_offset = 0
        self._b_switches = 0

    @classmethod
    def from_command(cls, command: OpenSession, now: float) -> RelaySession:
        return cls(
            command.session_id,
            expected_a=command.expected_a,
            expected_b=command.expected_b,
            now=now,
            latch_any=command.latch_any,
            clock_rate=command.clock_rate,
            frame_samples=command.frame_samples,
        )

    # Per packet.

    def on_packet(
        self, side: Side, data: bytes | bytearray, source: Address, now: float
    ) -> Address | None:
        """A datagram arrived on side ``side``'s RTP socket from ``source``: return where
        to send ``data`` (rewritten in place when needed), or ``None`` to drop it.

        The host binds :meth:`on_packet_a` and :meth:`on_packet_b` to each side's socket
        directly (no side argument to pass and test per packet); this is the same."""
        if side is Side.A:
            return self.on_packet_a(data, source, now)
        return self.on_packet_b(cast(bytearray, data), source, now)

    def on_packet_a(self, data: bytes | bytearray, source: Address, now: float) -> Address | None:
        """:meth:`on_packet` for side A (the caller): never rewritten, so ``data`` may be
        the received ``bytes``."""
        leg = self._a
        if len(data) < FIXED_HEADER_SIZE or data[0] & _VERSION_MASK != _VERSION_2:
            leg.dropped += 1
            return None
        if source != leg.rtp_source and not self._latch_rtp(leg, Side.A, source):
            leg.dropped += 1
            return None
        leg.last_packet_at = now
        dest = self._b.rtp_dest
        if dest is None:
            leg.dropped += 1
            return None
        leg.packets += 1
        leg.octets += len(data)
        return dest

    def on_packet_b(self, data: bytearray, source: Address, now: float) -> Address | None:
        """:meth:`on_packet` for side B (the callee): ``data`` must be writable once the
        session rewrites (after :meth:`switch_b`), before that ``bytes`` will do."""
        # The checks up to the counters repeat on_packet_a's with the legs swapped, on
        # purpose: a shared helper would cost a call per packet (about 0.1 us).
        leg = self._b
        if len(data) < FIXED_HEADER_SIZE or data[0] & _VERSION_MASK != _VERSION_2:
            leg.dropped += 1
            return None
        if source != leg.rtp_source and not self._latch_rtp(leg, Side.B, source):
            leg.dropped += 1
            return None
        leg.last_packet_at = now
        dest = self._a.rtp_dest
        if dest is None:
            leg.dropped += 1
            return None
        leg.packets += 1
        leg.octets += len(data)
        if 192 <= data[1] <= 223:  # RTCP on the RTP port (RFC 5761 §4): not ours to track
            return dest
        seq, ts, ssrc = _read_seq_ts_ssrc(data, 2)
        if ssrc != self._source_ssrc or self._switch_pending:
            self._new_b_source(data, seq, ts, ssrc, now)
        if self._is_rewriting:
            seq = (seq + self._seq_offset) & _SEQ_MASK
            ts = (ts + self._ts_offset) & _TS_MASK
            _write_seq_ts_ssrc(data, 2, seq, ts, self._out_ssrc)
        if (seq - self._hi_seq) & _SEQ_MASK < _SEQ_HALF:
            self._hi_seq = seq
            self._hi_ts = ts
        self._last_to_a_at = now
        return dest

    def on_rtcp_packet(
        self, side: Side, data: bytearray, source: Address, now: float
    ) -> Address | None:
        """A datagram arrived on side ``side``'s RTCP socket (RTP port + 1): return where
        to send it, or ``None`` to drop it. RTCP does not count as activity for
        :meth:`idle_for` (it goes on during hold)."""
        leg, other = (self._a, self._b) if side is Side.A else (self._b, self._a)
        if len(data) < _RTCP_HEADER_SIZE or data[0] & _VERSION_MASK != _VERSION_2:
            leg.dropped += 1
            return None
        if source != leg.rtcp_source:
            if leg.rtcp_source is not None or not leg.accepts_new(source, self._latch_any):
                leg.dropped += 1
                return None
            leg.rtcp_source = leg.rtcp_dest = source
            self._reports.append(
                Latched(session_id=self.session_id, side=side, address=source, is_rtcp=True)
            )
        dest = other.rtcp_dest
        if dest is None:
            leg.dropped += 1
            return None
        if side is Side.B and self._is_rewriting:
            self._rewrite_rtcp_from_b(data)
        leg.rtcp_packets += 1
        return dest

    def _latch_rtp(self, leg: _Leg, side: Side, source: Address) -> bool:
        """The slow path: ``source`` is not the latched one. Latch if the side is open."""
        if leg.rtp_source is not None or not leg.accepts_new(source, self._latch_any):
            return False
        leg.rtp_source = leg.rtp_dest = source
        self._reports.append(Latched(session_id=self.session_id, side=side, address=source))
        return True

    def _new_b_source(self, data: bytearray, seq: int, ts: int, ssrc: int, now: float) -> None:
        """The first packet from a new B source (after :meth:`switch_b`, or an SSRC change
        once rewriting): fix the offsets that map it onto the stream the caller hears."""
        self._source_ssrc = ssrc
        self._switch_pending = False
        if self._out_ssrc is None or not (self._is_rewriting or self._b_switches):
            # Nothing heard by the caller yet, or B changed SSRC by itself before any
            # switch: pass the new stream through as it is.
            self._out_ssrc = ssrc
            self._hi_seq = seq
            self._hi_ts = ts
            return
        # RFC 3550 §5.1: continue the sequence, advance the timestamp by the sampling time
        # that passed (in whole frames, at least one), and mark the discontinuity.
        frame = self._frame_samples
        frames = max(1, round((now - self._last_to_a_at) * self._clock_rate / frame))
        self._seq_offset = (self._hi_seq + 1 - seq) & _SEQ_MASK
        self._ts_offset = (self._hi_ts + frames * frame - ts) & _TS_MASK
        self._is_rewriting = True
        data[1] |= _MARKER

    def _rewrite_rtcp_from_b(self, data: bytearray) -> None:
        """Give B's compound RTCP packet the caller-facing SSRC and timestamp: the sender
        SSRC of SR/RR, the first SDES chunk and BYE's first source (RFC 3550 §6.4-6.6), and
        a sender report's RTP timestamp (§6.4.1). Anything not from the mapped source is
        left alone; the walk stops at the first malformed part."""
        source, out = self._source_ssrc, self._out_ssrc
        if source is None or out is None:
            return
        offset, size = 0, len(data)
        while offset + _RTCP_HEADER_SIZE <= size:
            first, packet_type = data[offset], data[offset + 1]
            end = offset + 4 * (_U16.unpack_from(data, offset + 2)[0] + 1)
            if first & _VERSION_MASK != _VERSION_2 or end > size:
                return
            has_ssrc = packet_type in (_RTCP_SR, _RTCP_RR) or (
                packet_type in (_RTCP_SDES, _RTCP_BYE) and first & 0x1F
            )
            if has_ssrc and _U32.unpack_from(data, offset + 4)[0] == source:
                _U32.pack_into(data, offset + 4, out)
                if packet_type == _RTCP_SR and end - offset >= _SR_TIMESTAMP_OFFSET + 4:
                    at = offset + _SR_TIMESTAMP_OFFSET
                    ts = _U32.unpack_from(data, at)[0]
                    _U32.pack_into(data, at, (ts + self._ts_offset) & _TS_MASK)
            offset = end

    # Commands.

    def update_remote(self, side: Side, expected: Address, now: float) -> None:
        """A side's SDP changed (answer, re-INVITE): expect media from ``expected`` and let
        that side latch again. Restarts the idle clock."""
        (self._a if side is Side.A else self._b).expect(expected)
        self._quiet_since = max(self._quiet_since, now)

    def switch_b(self, expected_b: Address, now: float) -> None:
        """Side B now belongs to another callee at ``expected_b``: forget the old callee
        (its late packets are dropped, also from the same IP), send to the new one, and
        map its stream onto the caller's at its first packet. Restarts the idle clock."""
        leg = self._b
        old = {address for address in (leg.rtp_source, leg.rtcp_source) if address is not None}
        leg.retired = frozenset((leg.retired | old) - {expected_b})
        leg.rtp_source = leg.rtcp_source = None  # so expect() sends to the new callee only
        leg.expect(expected_b)
        self._switch_pending = True
        self._b_switches += 1
        self._quiet_since = max(self._quiet_since, now)

    # Queries.

    def idle_for(self, now: float) -> float:
        """Seconds since RTP last came from either side (or since the session opened or a
        side was re-pointed, when later)."""
        last = self._quiet_since
        a, b = self._a.last_packet_at, self._b.last_packet_at
        if a is not None and a > last:
            last = a
        if b is not None and b > last:
            last = b
        return max(0.0, now - last)

    def last_packet_at(self, side: Side) -> float | None:
        return (self._a if side is Side.A else self._b).last_packet_at

    def latched(self, side: Side) -> Address | None:
        """The RTP source side ``side`` is latched to, or ``None`` while it is open."""
        return (self._a if side is Side.A else self._b).rtp_source

    def destination(self, side: Side) -> Address | None:
        """Where RTP for side ``side`` is sent now (latched, else expected)."""
        return (self._a if side is Side.A else self._b).rtp_dest

    def stats(self) -> SessionStats:
        a, b = self._a, self._b
        return SessionStats(
            session_id=self.session_id,
            packets_a_to_b=a.packets,
            packets_b_to_a=b.packets,
            bytes_a_to_b=a.octets,
            bytes_b_to_a=b.octets,
            rtcp_a_to_b=a.rtcp_packets,
            rtcp_b_to_a=b.rtcp_packets,
            dropped_from_a=a.dropped,
            dropped_from_b=b.dropped,
            last_packet_at_a=a.last_packet_at,
            last_packet_at_b=b.last_packet_at,
            b_switches=self._b_switches,
        )

    def take_reports(self) -> list[MediaReport]:
        """The :class:`~media.commands.Latched` reports since the last call, oldest first.
        Latching is rare, so the host may collect them on its periodic tick."""
        reports, self._reports = self._reports, []
        return reports
