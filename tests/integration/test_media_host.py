"""MediaHost over real UDP sockets on 127.0.0.1: relaying both ways from the opposite
side's port, latching (NAT port, strangers dropped), RTCP on port + 1, a continuous stream
across SwitchLegB, the idle timeout, port release on close, busy ports, a clean stop.

Each test runs on uvloop and on the stock loop (``asyncio.Runner(loop_factory=...)``);
the phones are plain datagram endpoints on the same loop."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, closing, suppress
from dataclasses import replace
from typing import TypeAlias

import pytest

from media.commands import (
    Address,
    CloseSession,
    Latched,
    MediaReport,
    MediaSessionId,
    OpenSession,
    PortUnavailable,
    RtpTimeout,
    SessionStats,
    Side,
    SwitchLegB,
)
from media.host import MediaHost
from media.rtp import build_packet, parse_header

HOST = "127.0.0.1"
STRANGER_HOST = "127.0.0.2"  # also loopback on Linux, but not the IP anyone signalled
SID = MediaSessionId("call-1")
WAIT = 2.0  # bound on every wait for a packet or a report
PCMU = 0

Run: TypeAlias = Callable[[Callable[[], Awaitable[None]]], None]  # the ``run`` fixture


def free_pairs(count: int) -> list[int]:
    """``count`` even ports each free together with port + 1 (checked by binding them)."""
    rng = random.Random()
    found: list[int] = []
    while len(found) < count:
        port = rng.randrange(20000, 30000, 2)
        if port in found:
            continue
        try:
            with (
                closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as rtp,
                closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as rtcp,
            ):
                rtp.bind((HOST, port))
                rtcp.bind((HOST, port + 1))
        except OSError:
            continue
        found.append(port)
    return found


class _Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, Address]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.queue.put_nowait((data, (str(addr[0]), int(addr[1]))))


class Endpoint:
    """One UDP socket of a phone: send, and receive with a bounded wait."""

    def __init__(self, transport: asyncio.DatagramTransport, inbox: _Inbox) -> None:
        self.transport = transport
        self.inbox = inbox
        host, port = transport.get_extra_info("sockname")[:2]
        self.address: Address = (host, port)

    def send(self, data: bytes, to: Address) -> None:
        self.transport.sendto(data, to)

    async def recv(self) -> tuple[bytes, Address]:
        return await asyncio.wait_for(self.inbox.queue.get(), WAIT)

    async def expect_silence(self, seconds: float = 0.2) -> None:
        with suppress(TimeoutError):
            data, source = await asyncio.wait_for(self.inbox.queue.get(), seconds)
            pytest.fail(f"unexpected {len(data)} octets from {source}")


class Phone:
    """A plain UDP phone: RTP on an even port, RTCP on port + 1."""

    def __init__(self, rtp: Endpoint, rtcp: Endpoint) -> None:
        self.rtp = rtp
        self.rtcp = rtcp

    @property
    def address(self) -> Address:
        return self.rtp.address


async def endpoint(host: str, port: int) -> Endpoint:
    transport, inbox = await asyncio.get_running_loop().create_datagram_endpoint(
        _Inbox, local_addr=(host, port)
    )
    return Endpoint(transport, inbox)


@asynccontextmanager
async def phones(count: int, host: str = HOST) -> AsyncIterator[list[Phone]]:
    made: list[Phone] = []
    try:
        for port in free_pairs(count):
            rtp_end, rtcp_end = await endpoint(host, port), await endpoint(host, port + 1)
            made.append(Phone(rtp_end, rtcp_end))
        yield made
    finally:
        for phone in made:
            phone.rtp.transport.close()
            phone.rtcp.transport.close()
        await asyncio.sleep(0)  # let the transports' connection_lost run


class Reports:
    def __init__(self) -> None:
        self.items: list[MediaReport] = []
        self._changed = asyncio.Event()

    def __call__(self, report: MediaReport) -> None:
        self.items.append(report)
        self._changed.set()

    async def wait_for(self, kind: type[MediaReport], count: int = 1) -> list[MediaReport]:
        async def seen() -> list[MediaReport]:
            while len(found := [r for r in self.items if isinstance(r, kind)]) < count:
                self._changed.clear()
                await self._changed.wait()
            return found

        return await asyncio.wait_for(seen(), WAIT)


@asynccontextmanager
async def media_host(rtp_timeout: float = 30.0) -> AsyncIterator[tuple[MediaHost, Reports]]:
    reports = Reports()
    host = MediaHost(asyncio.get_running_loop(), reports, rtp_timeout=rtp_timeout, tick=0.05)
    try:
        yield host, reports
    finally:
        await host.close()


def open_session(
    port_a: int, port_b: int, a: Address | None, b: Address | None, session_id: str = SID
) -> OpenSession:
    return OpenSession(
        session_id=MediaSessionId(session_id),
        local_host=HOST,
        rtp_port_a=port_a,
        rtp_port_b=port_b,
        expected_a=a,
        expected_b=b,
    )


def rtp(seq: int, ssrc: int, *, ts_step: int = 160, marker: bool = False) -> bytes:
    return build_packet(
        payload_type=PCMU,
        sequence_number=seq & 0xFFFF,
        timestamp=(seq * ts_step) & 0xFFFF_FFFF,
        ssrc=ssrc,
        payload=bytes((seq + i) & 0xFF for i in range(160)),
        marker=marker,
    )


def rtcp_receiver_report(ssrc: int) -> bytes:
    # RFC 3550 §6.4.2: RR with no report blocks (V=2, RC=0, PT=201, length 1).
    return bytes((0x80, 201, 0, 1)) + ssrc.to_bytes(4, "big")


def assert_free(port: int) -> None:
    """Raises unless ``port`` and ``port + 1`` can be bound now (the host released them)."""
    with (
        closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as first,
        closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as second,
    ):
        first.bind((HOST, port))
        second.bind((HOST, port + 1))


def test_relays_rtp_both_ways_unchanged_from_the_opposite_port(run: Run) -> None:
    async def body() -> None:
        port_a, port_b = free_pairs(2)
        async with phones(2) as (a, b), media_host() as (host, reports):
            host.execute(open_session(port_a, port_b, a.address, b.address))
            assert (host.sessions, host.ports_in_use) == (1, 4)
            for seq in range(50):
                a.rtp.send(rtp(seq, 0xA), (HOST, port_a))
                data, source = await b.rtp.recv()
                assert (data, source) == (rtp(seq, 0xA), (HOST, port_b))
                b.rtp.send(rtp(seq, 0xB), (HOST, port_b))
                data, source = await a.rtp.recv()
                assert (data, source) == (rtp(seq, 0xB), (HOST, port_a))
                assert parse_header(data).payload_type == PCMU
            stats = host.stats(SID)
            assert stats is not None
            assert (stats.packets_a_to_b, stats.packets_b_to_a, stats.dropped) == (50, 50, 0)
            latched = await reports.wait_for(Latched, 2)
            assert {(r.side, r.address) for r in latched if isinstance(r, Latched)} == {
                (Side.A, a.address),
                (Side.B, b.address),
            }

    run(body)


def test_relays_over_ipv6_with_two_part_addresses(run: Run) -> None:
    """Over ::1 both sides take the general callback (not side A's IPv4 one): the socket
    layer's four-part source addresses are cut to (ip, port) before latching."""
    v6 = "::1"

    def free_v6_pairs(count: int) -> list[int]:
        found: list[int] = []
        while len(found) < count:
            with (
                closing(socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)) as rtp_probe,
                closing(socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)) as rtcp_probe,
            ):
                port = random.randrange(20000, 30000, 2)
                try:
                    rtp_probe.bind((v6, port))
                    rtcp_probe.bind((v6, port + 1))
                except OSError:
                    continue
            if port not in found:
                found.append(port)
        return found

    async def body() -> None:
        port_a, port_b = free_v6_pairs(2)
        phone_a, phone_b = free_v6_pairs(2)
        a_rtp, b_rtp = await endpoint(v6, phone_a), await endpoint(v6, phone_b)
        a_rtcp, b_rtcp = await endpoint(v6, phone_a + 1), await endpoint(v6, phone_b + 1)
        try:
            async with media_host() as (host, reports):
                command = open_session(port_a, port_b, (v6, phone_a), (v6, phone_b))
                host.execute(replace(command, local_host=v6))
                for seq in range(5):
                    a_rtp.send(rtp(seq, 0xA), (v6, port_a))
                    assert await b_rtp.recv() == (rtp(seq, 0xA), (v6, port_b))
                    b_rtp.send(rtp(seq, 0xB), (v6, port_b))
                    assert await a_rtp.recv() == (rtp(seq, 0xB), (v6, port_a))
                b_rtcp.send(rtcp_receiver_report(0xB), (v6, port_b + 1))
                assert await a_rtcp.recv() == (rtcp_receiver_report(0xB), (v6, port_a + 1))
                latched = await reports.wait_for(Latched, 3)
                seen = {(r.side, r.address, r.is_rtcp) for r in latched if isinstance(r, Latched)}
                assert seen == {
                    (Side.A, (v6, phone_a), False),
                    (Side.B, (v6, phone_b), False),
                    (Side.B, (v6, phone_b + 1), True),
                }
                stats = host.stats(SID)
                assert stats is not None
                assert (stats.packets_a_to_b, stats.packets_b_to_a, stats.dropped) == (5, 5, 0)
        finally:
            for end in (a_rtp, b_rtp, a_rtcp, b_rtcp):
                end.transport.close()
            await asyncio.sleep(0)

    run(body)


def test_drops_unsignalled_sources_and_latches_a_nat_port(run: Run) -> None:
    async def body() -> None:
        port_a, port_b = free_pairs(2)
        async with (
            phones(2) as (nat_a, b),
            phones(1, STRANGER_HOST) as (stranger,),
            media_host() as (host, _),
        ):
            signalled = (HOST, free_pairs(1)[0])  # what A's SDP said; A sends from elsewhere
            host.execute(open_session(port_a, port_b, signalled, b.address))
            stranger.rtp.send(rtp(1, 0x5), (HOST, port_a))  # unsignalled IP: dropped
            await b.rtp.expect_silence()
            nat_a.rtp.send(rtp(2, 0xA), (HOST, port_a))  # expected IP, other port: latches
            assert await b.rtp.recv() == (rtp(2, 0xA), (HOST, port_b))
            b.rtp.send(rtp(3, 0xB), (HOST, port_b))  # goes to the latched NAT port
            assert await nat_a.rtp.recv() == (rtp(3, 0xB), (HOST, port_a))
            stranger.rtp.send(rtp(4, 0x5), (HOST, port_a))  # still dropped once latched
            b.rtp.send(rtp(4, 0xB), (HOST, port_a))  # B's own address is not A's either
            await b.rtp.expect_silence()
            stats = host.stats(SID)
            assert stats is not None
            assert (stats.packets_a_to_b, stats.packets_b_to_a, stats.dropped_from_a) == (1, 1, 3)

    run(body)


def test_relays_rtcp_on_port_plus_one(run: Run) -> None:
    async def body() -> None:
        port_a, port_b = free_pairs(2)
        async with phones(2) as (a, b), media_host() as (host, _):
            host.execute(open_session(port_a, port_b, a.address, b.address))
            a.rtcp.send(rtcp_receiver_report(0xA), (HOST, port_a + 1))
            assert await b.rtcp.recv() == (rtcp_receiver_report(0xA), (HOST, port_b + 1))
            b.rtcp.send(rtcp_receiver_report(0xB), (HOST, port_b + 1))
            assert await a.rtcp.recv() == (rtcp_receiver_report(0xB), (HOST, port_a + 1))
            await a.rtp.expect_silence(0.05)  # nothing leaked onto the RTP ports
            await b.rtp.expect_silence(0.05)

    run(body)


def test_switch_leg_b_keeps_the_callers_stream_continuous(run: Run) -> None:
    async def body() -> None:
        port_a, port_b = free_pairs(2)
        async with phones(3) as (a, b, c), media_host() as (host, _):
            host.execute(open_session(port_a, port_b, a.address, b.address))
            for seq in range(1000, 1010):
                b.rtp.send(rtp(seq, 0xB), (HOST, port_b))
                await a.rtp.recv()
            host.execute(SwitchLegB(session_id=SID, expected_b=c.address))
            b.rtp.send(rtp(1010, 0xB), (HOST, port_b))  # the old callee is cut off
            await a.rtp.expect_silence(0.1)
            for index, seq in enumerate(range(7, 17)):
                c.rtp.send(rtp(seq, 0xC), (HOST, port_b))
                data, source = await a.rtp.recv()
                header = parse_header(data)
                assert source == (HOST, port_a)
                assert header.ssrc == 0xB
                assert header.sequence_number == 1010 + index
                assert header.marker == (index == 0)
                assert data[12:] == rtp(seq, 0xC)[12:]  # payload untouched
            a.rtp.send(rtp(5, 0xA), (HOST, port_a))  # A's media now goes to C
            assert await c.rtp.recv() == (rtp(5, 0xA), (HOST, port_b))
            await b.rtp.expect_silence(0.05)

    run(body)


def test_reports_rtp_timeout_once(run: Run) -> None:
    async def body() -> None:
        port_a, port_b = free_pairs(2)
        async with phones(2) as (a, b), media_host(rtp_timeout=0.3) as (host, reports):
            loop = asyncio.get_running_loop()
            opened_at = loop.time()
            host.execute(open_session(port_a, port_b, a.address, b.address))
            (timeout,) = await reports.wait_for(RtpTimeout)
            assert isinstance(timeout, RtpTimeout)
            assert timeout.session_id == SID
            assert 0.3 <= timeout.idle_for <= loop.time() - opened_at
            await asyncio.sleep(0.3)  # six more ticks of silence: no second report
            assert sum(isinstance(r, RtpTimeout) for r in reports.items) == 1

    run(body)


def test_close_session_releases_the_ports_and_reports_final_stats(run: Run) -> None:
    async def body() -> None:
        port_a, port_b = free_pairs(2)
        async with phones(2) as (a, b), media_host() as (host, reports):
            host.execute(open_session(port_a, port_b, a.address, b.address))
            a.rtp.send(rtp(1, 0xA), (HOST, port_a))
            await b.rtp.recv()
            host.execute(CloseSession(session_id=SID))
            host.execute(CloseSession(session_id=SID))  # idempotent
            assert (host.sessions, host.ports_in_use) == (0, 0)
            for port in (port_a, port_b):
                assert_free(port)
            (final,) = await reports.wait_for(SessionStats)
            assert isinstance(final, SessionStats)
            assert (final.session_id, final.packets_a_to_b) == (SID, 1)
            a.rtp.send(rtp(2, 0xA), (HOST, port_a))
            await b.rtp.expect_silence(0.05)
            assert sum(isinstance(r, SessionStats) for r in reports.items) == 1

    run(body)


def test_busy_port_reports_port_unavailable_and_leaves_nothing_open(run: Run) -> None:
    async def attempt() -> bool:
        """One try; False when another process took side A's pair between free_pairs
        and the bind (the machine is shared: then the report names that pair)."""
        port_a, port_b = free_pairs(2)
        async with phones(1) as (a,), media_host() as (host, reports):
            with closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as squatter:
                squatter.bind((HOST, port_b + 1))  # B's RTCP port: the pair is unusable
                host.execute(open_session(port_a, port_b, a.address, None))
                assert (host.sessions, host.ports_in_use) == (0, 0)
                (busy,) = await reports.wait_for(PortUnavailable)
                if isinstance(busy, PortUnavailable) and busy.port == port_a:
                    return False
                assert busy == PortUnavailable(session_id=SID, port=port_b)
            assert_free(port_a)  # side A's pair, bound before the failure, is free
            assert_free(port_b)
        return True

    async def body() -> None:
        for _ in range(5):
            if await attempt():
                return
        pytest.fail("another process took side A's port in five attempts out of five")

    run(body)


def test_close_leaves_no_socket_task_or_timer(run: Run) -> None:
    async def body() -> None:
        ports = free_pairs(4)
        async with phones(2) as (a, b):
            reports = Reports()
            host = MediaHost(asyncio.get_running_loop(), reports, rtp_timeout=0.05, tick=0.01)
            host.execute(open_session(ports[0], ports[1], a.address, b.address))
            host.execute(open_session(ports[2], ports[3], None, None, "call-2"))
            assert (host.sessions, host.ports_in_use) == (2, 8)
            await host.close()
            assert (host.sessions, host.ports_in_use) == (0, 0)
            for port in ports:
                assert_free(port)
            before = len(reports.items)
            await asyncio.sleep(0.1)  # ten tick periods: nothing fires after close
            assert len(reports.items) == before
            with pytest.raises(RuntimeError):
                host.execute(CloseSession(session_id=SID))

    run(body)
