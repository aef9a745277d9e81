"""The real asyncio shell over 127.0.0.1: listeners, the driver, the switch, stop."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from b2bua.config import Config, ListenAddress
from b2bua.runtime.server import Server, ephemeral_overlap
from b2bua.sip.address import Transport

OPTIONS = (
    "OPTIONS sip:127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/{transport} 127.0.0.1:{port};branch=z9hG4bK{branch};rport\r\n"
    "Max-Forwards: 70\r\n"
    "To: <sip:127.0.0.1>\r\n"
    "From: <sip:probe@127.0.0.1>;tag=probe\r\n"
    "Call-ID: {branch}@127.0.0.1\r\n"
    "CSeq: 1 OPTIONS\r\n"
    "Content-Length: 0\r\n\r\n"
)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    config = Config.model_validate({"sip": {"t1": 0.05}})
    listen = [
        ListenAddress(Transport.UDP, "127.0.0.1", 0),
        ListenAddress(Transport.TCP, "127.0.0.1", 0),
    ]
    server = Server(config, listen, tmp_path / "data", tmp_path / "ready.json")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def bound(server: Server, transport: Transport) -> tuple[str, int]:
    address = next(b for b in server.bound if b.transport is transport)
    return address.host, address.port


async def udp_exchange(target: tuple[str, int], data: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    received: asyncio.Queue[bytes] = asyncio.Queue()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            received.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(Client, local_addr=("127.0.0.1", 0))
    try:
        transport.sendto(data, target)
        return await asyncio.wait_for(received.get(), 5)
    finally:
        transport.close()


async def test_ready_file_names_the_bound_ports(server: Server, tmp_path: Path) -> None:
    ready = json.loads((tmp_path / "ready.json").read_text())
    assert ready["listen"] == [str(b) for b in server.bound]
    assert all(b.port != 0 for b in server.bound)


async def test_options_over_udp(server: Server) -> None:
    data = OPTIONS.format(transport="UDP", port=9, branch="udp1").encode()
    reply = await udp_exchange(bound(server, Transport.UDP), data)
    assert reply.startswith(b"SIP/2.0 200 OK\r\n")
    # rport was asked for: the reply came back to the real source port, recorded in Via.
    assert b";rport=" in reply
    assert b";received=127.0.0.1" in reply


async def test_options_over_tcp_and_keepalive(server: Server) -> None:
    reader, writer = await asyncio.open_connection(*bound(server, Transport.TCP))
    try:
        writer.write(b"\r\n\r\n")  # RFC 5626 keep-alive ping: answered with CRLF
        assert await asyncio.wait_for(reader.readexactly(2), 5) == b"\r\n"
        data = OPTIONS.format(transport="TCP", port=9, branch="tcp1").encode()
        writer.write(data[:50])
        await writer.drain()
        writer.write(data[50:])
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"SIP/2.0 200 OK\r\n")
    finally:
        writer.close()


async def test_bad_content_length_on_tcp_closes_only_that_connection(server: Server) -> None:
    target = bound(server, Transport.TCP)
    bad_reader, bad_writer = await asyncio.open_connection(*target)
    good_reader, good_writer = await asyncio.open_connection(*target)
    try:
        bad = OPTIONS.format(transport="TCP", port=9, branch="bad").replace(
            "Content-Length: 0", "Content-Length: -5"
        )
        bad_writer.write(bad.encode())
        assert await asyncio.wait_for(bad_reader.read(), 5) == b""  # EOF: closed
        good_writer.write(OPTIONS.format(transport="TCP", port=9, branch="good").encode())
        head = await asyncio.wait_for(good_reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"SIP/2.0 200 OK\r\n")
    finally:
        bad_writer.close()
        good_writer.close()


async def test_stop_releases_the_ports(tmp_path: Path) -> None:
    config = Config()
    listen = [
        ListenAddress(Transport.UDP, "127.0.0.1", 0),
        ListenAddress(Transport.TCP, "127.0.0.1", 0),
    ]
    server = Server(config, listen, tmp_path / "data", tmp_path / "ready.json")
    await server.start()
    udp, tcp = bound(server, Transport.UDP), bound(server, Transport.TCP)
    await server.stop()
    assert not (tmp_path / "ready.json").exists()
    # Both ports can be bound again at once: nothing leaked.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(udp)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(tcp)
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert tasks == []


@pytest.mark.parametrize(
    ("rtp", "expected"),
    [
        ((20000, 29999), None),  # below 32768-60999: the advice the docs give
        ((30000, 32768), (32768, 60999)),  # touches the first ephemeral port
        ((60999, 61998), (32768, 60999)),  # touches the last
        ((61000, 65000), None),
    ],
)
def test_an_rtp_range_in_the_ephemeral_ports_is_named(
    tmp_path: Path, rtp: tuple[int, int], expected: tuple[int, int] | None
) -> None:
    source = tmp_path / "ip_local_port_range"
    source.write_text("32768\t60999\n")
    assert ephemeral_overlap(*rtp, source=source) == expected


def test_an_unreadable_ephemeral_range_is_no_warning(tmp_path: Path) -> None:
    assert ephemeral_overlap(1024, 65535, source=tmp_path / "missing") is None
    (tmp_path / "garbled").write_text("not numbers")
    assert ephemeral_overlap(1024, 65535, source=tmp_path / "garbled") is None
