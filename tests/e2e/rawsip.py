"""Hand-built SIP bytes and bounded socket reads, for what SIPp cannot send or see."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Sequence
from typing import Final

from tests.support.processes import Address

CRLF: Final = "\r\n"
_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*$", re.I | re.M)


def options_request(
    transport: str,
    via: Address,
    *,
    target: Address,
    branch: str,
    call_id: str | None,
    content_length: str | None = "0",
    extra_headers: Sequence[str] = (),
) -> bytes:
    """An OPTIONS to ``target`` whose answer goes to ``via``; ``None`` leaves a header out."""
    lines = [
        f"OPTIONS sip:probe@{target} SIP/2.0",
        f"Via: SIP/2.0/{transport.upper()} {via};branch={branch}",
        "Max-Forwards: 70",
        f"From: <sip:e2e@{via}>;tag=e2e-{branch[-8:]}",
        f"To: <sip:probe@{target}>",
    ]
    if call_id is not None:
        lines.append(f"Call-ID: {call_id}")
    lines.append("CSeq: 1 OPTIONS")
    lines.extend(extra_headers)
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    return (CRLF.join(lines) + CRLF + CRLF).encode()


def status_line(message: bytes) -> str:
    return message.split(b"\r\n", 1)[0].decode(errors="replace")


def recv_datagram(sock: socket.socket, timeout: float) -> bytes:
    """The next datagram; ``TimeoutError`` after ``timeout`` s."""
    sock.settimeout(timeout)
    try:
        data, _ = sock.recvfrom(65535)
    except TimeoutError:
        raise TimeoutError(f"no datagram within {timeout} s") from None
    return data


def read_stream_message(sock: socket.socket, timeout: float) -> bytes:
    """One SIP message from a stream, framed by Content-Length.

    ``TimeoutError`` after ``timeout`` s; ``ConnectionError`` if the peer closes first.
    """
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        head, separator, rest = data.partition(b"\r\n\r\n")
        if separator:
            match = _CONTENT_LENGTH.search(head)
            length = int(match.group(1)) if match else 0
            if len(rest) >= length:
                return head + separator + rest[:length]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no complete message within {timeout} s; got {data!r}")
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed after {data!r}")
        data += chunk


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the peer sends until it closes (EOF or reset); ``TimeoutError`` if it
    has not closed within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"connection still open after {timeout} s; got {data!r}")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        except TimeoutError:
            continue
        if not chunk:
            return data
        data += chunk
