"""The switch survives garbage: malformed datagrams, half-sent and badly framed TCP."""

from __future__ import annotations

import contextlib
import random
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import pytest

from tests.e2e.rawsip import (
    options_request,
    read_stream_message,
    read_until_closed,
    recv_datagram,
    status_line,
)
from tests.e2e.scenarios import run_scenario
from tests.support.processes import Address, RunningSwitch, free_port

pytestmark = pytest.mark.e2e

FLOOD_SIZE: Final = 1000
SEED: Final = 20261123
OVERSIZED: Final = 60 * 1024
"""Under the 65,507-byte UDP limit, so the datagram really leaves the socket."""
PROBE_EVERY: Final = 10
"""A valid OPTIONS after every 10 bad datagrams: proves the switch answers throughout,
and paces the flood so that it reaches the parser instead of overflowing the socket."""
RESEND_INTERVAL: Final = 0.1
CLOSE_TIMEOUT: Final = 5.0
ANSWER_TIMEOUT: Final = 5.0


@contextlib.contextmanager
def udp_socket() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock


@contextlib.contextmanager
def tcp_connection(address: Address) -> Iterator[socket.socket]:
    with socket.create_connection(address, timeout=ANSWER_TIMEOUT) as sock:
        yield sock


def local_address(sock: socket.socket) -> Address:
    host, port = sock.getsockname()[:2]
    return Address(str(host), int(port))


# --- The flood: one generator per kind of damage, all from one seeded Random.

Damage = Callable[[random.Random, bytes], bytes]


def random_bytes(rng: random.Random, valid: bytes) -> bytes:
    return rng.randbytes(rng.randint(1, 1400))


def truncated(rng: random.Random, valid: bytes) -> bytes:
    return valid[: rng.randint(1, len(valid) - 5)]


def bad_content_length(rng: random.Random, valid: bytes) -> bytes:
    value = rng.choice(["abc", "-1", "99999", "1.5", "", "0x10", "18446744073709551616", "3 4"])
    return valid.replace(b"Content-Length: 0", b"Content-Length: " + value.encode())


def nul_bytes(rng: random.Random, valid: bytes) -> bytes:
    data = bytearray(valid)
    for _ in range(rng.randint(1, 5)):
        data.insert(rng.randrange(len(data)), 0)
    return bytes(data)


def huge_header_line(rng: random.Random, valid: bytes) -> bytes:
    line = b"X-Filler: " + b"a" * rng.randint(9_000, 40_000) + b"\r\n"
    return valid.replace(b"Max-Forwards: 70\r\n", b"Max-Forwards: 70\r\n" + line)


def oversized(rng: random.Random, valid: bytes) -> bytes:
    if rng.random() < 0.5:
        return rng.randbytes(OVERSIZED)
    # A SIP-looking message made of thousands of short headers.
    head, _, _ = valid.partition(b"\r\n\r\n")
    filler = b"".join(b"X-H%d: v\r\n" % n for n in range(8000))
    return (head + b"\r\n" + filler)[: OVERSIZED - 4] + b"\r\n\r\n"


def broken_grammar(rng: random.Random, valid: bytes) -> bytes:
    return rng.choice(
        [
            valid.replace(b"SIP/2.0\r\n", b"SIP/7.0\r\n", 1),
            valid.replace(b"CSeq: 1 OPTIONS", b"CSeq: OPTIONS 1"),
            valid.replace(b"Call-ID:", b"X-Not-Call-ID:"),
            valid.replace(b"Via: SIP/2.0/UDP", b"Via: SIP/2.0/UDP  \x7f\xff"),
            valid.replace(b"OPTIONS sip:", b"OPTIONS <sip:"),
            b"SIP/2.0 200 OK\r\n" + valid.partition(b"\r\n")[2],
            b"\r\n" * rng.randint(1, 50),
            valid.replace(b"\r\n", b"\n"),
            valid.replace(b": ", b":\r\n ", 3),
        ]
    )


DAMAGE: Final[tuple[Damage, ...]] = (
    random_bytes,
    truncated,
    bad_content_length,
    nul_bytes,
    huge_header_line,
    oversized,
    broken_grammar,
)


def malformed_datagrams(
    rng: random.Random, switch: Address, reply_to: tuple[Address, Address]
) -> Iterator[bytes]:
    """``FLOOD_SIZE`` damaged datagrams; answers go to ``reply_to`` in turn (one of them a
    port nobody listens on, so the switch also meets ICMP port-unreachable errors)."""
    for index in range(FLOOD_SIZE):
        valid = options_request(
            "udp",
            reply_to[index % 2],
            target=switch,
            branch=f"z9hG4bK-flood-{index:06d}",
            call_id=f"flood-{index}@e2e",
        )
        yield DAMAGE[index % len(DAMAGE)](rng, valid)


def probe_options(sock: socket.socket, switch: RunningSwitch, index: int) -> None:
    """Send a valid OPTIONS from ``sock`` and wait for its 200, skipping the answers
    (400s) to the bad datagrams still queued on the socket.

    Like any UDP client (RFC 3261 section 17.1.2.2, Timer E) it resends the request
    until answered, here every 0.1 s: a batch with several 60 KB datagrams can overflow
    the switch's socket buffer, and the kernel then drops the probe too.
    """
    branch = f"z9hG4bK-probe-{index:06d}"
    request = options_request(
        "udp", local_address(sock), target=switch.udp, branch=branch, call_id=f"probe-{index}"
    )
    deadline = time.monotonic() + ANSWER_TIMEOUT
    next_send = 0.0
    while (now := time.monotonic()) < deadline:
        if now >= next_send:
            sock.sendto(request, switch.udp)
            next_send = now + RESEND_INTERVAL
        try:
            answer = recv_datagram(sock, max(0.001, min(next_send, deadline) - now))
        except TimeoutError:
            continue
        if branch.encode() in answer:
            assert status_line(answer) == "SIP/2.0 200 OK", answer
            return
    pytest.fail(
        f"no 200 to the OPTIONS sent after {index + 1} bad datagrams within "
        f"{ANSWER_TIMEOUT} s; switch alive: {switch.is_alive()}; stderr:\n"
        + switch.stderr_text()[-3000:]
    )


def assert_options_answered(switch: RunningSwitch, tmp_path: Path) -> None:
    for transport in ("udp", "tcp"):
        run = run_scenario("uac_options.xml", switch.address(transport), transport, tmp_path)
        assert run.passed, run.report() + "\n--- switch stderr:\n" + switch.stderr_text()[-3000:]


def test_switch_survives_garbage_and_keeps_answering(switch: RunningSwitch, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    nobody = Address("127.0.0.1", free_port())
    with udp_socket() as flood:
        reply_to = (local_address(flood), nobody)
        for index, datagram in enumerate(malformed_datagrams(rng, switch.udp, reply_to)):
            flood.sendto(datagram, switch.udp)
            if index % PROBE_EVERY == PROBE_EVERY - 1:
                probe_options(flood, switch, index)

        # A TCP request cut in half, left hanging: it must not block anyone else.
        with tcp_connection(switch.tcp) as half_open:
            request = options_request(
                "tcp",
                local_address(half_open),
                target=switch.tcp,
                branch="z9hG4bK-half-open",
                call_id="half-open@e2e",
            )
            half_open.sendall(request[: len(request) // 2])

            assert_options_answered(switch, tmp_path)
            assert switch.is_alive(), switch.stderr_text()[-3000:]
            # It must also stop cleanly (exit 0, within STOP_TIMEOUT) with the
            # half-sent request still pending.
            exit_code = switch.stop()
    assert exit_code == 0, f"exit {exit_code}; stderr:\n{switch.stderr_text()[-3000:]}"


@pytest.mark.parametrize(
    "content_length",
    ["abc", "-1", None],
    ids=["non-numeric", "negative", "missing"],
)
@pytest.mark.python_only
def test_tcp_framing_error_closes_only_that_connection(
    switch: RunningSwitch, content_length: str | None
) -> None:
    def request(sock: socket.socket, name: str, length: str | None = "0") -> bytes:
        return options_request(
            "tcp",
            local_address(sock),
            target=switch.tcp,
            branch=f"z9hG4bK-{name}",
            call_id=f"{name}@e2e",
            content_length=length,
        )

    with tcp_connection(switch.tcp) as good, tcp_connection(switch.tcp) as bad:
        good.sendall(request(good, "good-before"))
        answer = read_stream_message(good, ANSWER_TIMEOUT)
        assert status_line(answer) == "SIP/2.0 200 OK", answer

        # RFC 3261 section 18.3: on a stream, Content-Length is the framing; without a
        # usable one the switch cannot find the next message and must close.
        bad.sendall(request(bad, "bad-length", content_length))
        before_close = read_until_closed(bad, CLOSE_TIMEOUT)
        assert b"200 OK" not in before_close, before_close

        good.sendall(request(good, "good-after"))
        answer = read_stream_message(good, ANSWER_TIMEOUT)
        assert status_line(answer) == "SIP/2.0 200 OK", answer
    assert switch.is_alive(), switch.stderr_text()[-3000:]


@pytest.mark.python_only
def test_request_without_call_id_gets_400_naming_it(switch: RunningSwitch) -> None:
    # SIPp cannot check this one: it drops every message without a Call-ID.
    with udp_socket() as sock:
        request = options_request(
            "udp",
            local_address(sock),
            target=switch.udp,
            branch="z9hG4bK-no-call-id",
            call_id=None,
        )
        sock.sendto(request, switch.udp)
        answer = recv_datagram(sock, ANSWER_TIMEOUT)
    line = status_line(answer)
    assert line.startswith("SIP/2.0 400 "), answer
    assert "call-id" in line.lower(), answer
    assert b"z9hG4bK-no-call-id" in answer, answer
