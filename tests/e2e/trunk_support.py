"""Helpers for the trunk e2e tests (test_trunks_outbound.py, test_trunks_confirm.py).

- :func:`gateway_sipp`: the provider's PSTN gateway as a SIPp UAS for one call, with
  extra SIPp arguments if any (``-key``, ``-d``), and the media port SIPp was given
  (``-mp``: where it plays pcaps from).
- :class:`RtpSink`: a UDP socket the test owns, on 127.0.0.1, that a peer's SDP can
  name in its m= line; a thread keeps every datagram (arrival time, source, RTP header)
  until it is closed, so what the switch sent there can be counted afterwards.
- :func:`sdp_address`: the (host, port) of an SDP body's first audio stream.

Every process is stopped by PID; every thread and socket is closed on exit.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final, NamedTuple

import pytest

from tests.support.processes import SIPP, free_port, free_udp_pair, wait_until
from tests.support.sipp_calls import SCENARIOS, BackgroundCall, traces

HOST: Final = "127.0.0.1"
SIPP_TIMEOUT: Final = 20.0
_RTP_HEADER: Final = struct.Struct("!BBHII")


class RunningGateway(NamedTuple):
    call: BackgroundCall
    media_port: int
    """SIPp's ``-mp``: the port its pcaps are played from."""


@contextlib.contextmanager
def gateway_sipp(
    directory: Path, scenario: str, port: int, *extra: str, timeout: float = SIPP_TIMEOUT
) -> Iterator[RunningGateway]:
    """A SIPp UAS on ``port`` running ``scenario`` for one call, with ``extra`` SIPp
    arguments; traces ``gateway-messages.log`` and ``gateway-errors.log`` (and its
    ``<log>`` actions in ``gateway-actions.log``) in ``directory``; stopped by PID."""
    media_port = free_udp_pair()
    command = [
        SIPP, "-sf", str(SCENARIOS / scenario), "-i", HOST,
        *traces(directory, "gateway"), "-trace_logs", "-log_file",
        str(directory / "gateway-actions.log"),
        "-p", str(port), "-cp", str(free_port()), "-mp", str(media_port), *extra,
        "-m", "1", "-timeout", f"{timeout:g}s", "-timeout_error", "-nd", "-nostdin",
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=directory,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    with BackgroundCall(process, "gateway", directory) as gateway:
        _wait_bound(gateway, port)
        yield RunningGateway(gateway, media_port)


def _wait_bound(uas: BackgroundCall, port: int) -> None:
    def bound() -> bool:
        if uas.process.poll() is not None:
            pytest.fail(f"SIPp {uas.name} exited with {uas.process.returncode}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                return True
        return False

    wait_until(bound, 5, f"SIPp {uas.name} binding UDP port {port}")


class RtpPacket(NamedTuple):
    """One datagram an :class:`RtpSink` got: when (Unix time), from where, its RTP
    header fields and payload (``payload_type`` -1 when it is too short or not RTP
    version 2: ``payload`` is then the whole datagram)."""

    at: float
    source: tuple[str, int]
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes


@dataclass
class RtpSink:
    """A UDP socket on 127.0.0.1 (an ephemeral port) whose datagrams a thread keeps."""

    sock: socket.socket = field(init=False)
    packets: list[RtpPacket] = field(init=False, default_factory=list)
    _stop: threading.Event = field(init=False, default_factory=threading.Event)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _thread: threading.Thread | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.05)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def __enter__(self) -> RtpSink:
        self._thread = threading.Thread(target=self._run, name="rtp-sink", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.sock.close()

    def received(self) -> list[RtpPacket]:
        with self._lock:
            return list(self.packets)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, source = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            at = time.time()
            if len(data) >= _RTP_HEADER.size and data[0] >> 6 == 2:
                first, second, sequence, timestamp, ssrc = _RTP_HEADER.unpack_from(data)
                header = _RTP_HEADER.size + 4 * (first & 0x0F)
                packet = RtpPacket(
                    at, source, second & 0x7F, sequence, timestamp, ssrc, data[header:]
                )
            else:
                packet = RtpPacket(at, source, -1, 0, 0, 0, data)
            with self._lock:
                self.packets.append(packet)


def sdp_address(sdp: str) -> tuple[str, int]:
    """(connection address, port) of the first ``m=audio`` of ``sdp`` (session-level
    ``c=`` unless the stream has its own)."""
    lines = [line.strip() for line in sdp.splitlines()]
    session_host: str | None = None
    for index, line in enumerate(lines):
        if line.startswith("c=") and session_host is None:
            session_host = line.split()[-1]
        if line.startswith("m=audio "):
            port = int(line.split()[1])
            host = session_host
            for after in lines[index + 1 :]:
                if after.startswith("m="):
                    break
                if after.startswith("c="):
                    host = after.split()[-1]
            assert host is not None, sdp
            return host, port
    raise AssertionError(f"no m=audio in {sdp!r}")


def sdp_body(message_text: str) -> str:
    """The body of a traced SIP message (after the first empty line)."""
    parts = re.split(r"\r?\n\r?\n", message_text, maxsplit=1)
    return parts[1] if len(parts) == 2 else ""
