"""Audio checks for calls: tone WAVs for the peers, tone detection, and RTP captured on ``lo``.

A test proves that audio crossed a call by sending a tone of a known frequency each way
and finding it, by frequency, in what the other side received:

- SIPp sends a tone with ``<exec rtp_stream="FILE.wav,LOOPS,0"/>``, which wants an 8 kHz
  mu-law WAV: :func:`write_tone_wav_ulaw`. baresip sends one from ``aufile`` (an 8 kHz
  16-bit WAV: ``tests.support.phones.write_tone_wav``) and writes what it decoded to
  ``snd_path/dump-*-dec.wav``: :func:`read_wav_samples`.
- SIPp records no audio, so :class:`RtpCapture` runs ``tcpdump`` on the
  loopback interface, filtered to the receiver's UDP ports; :func:`read_pcap`,
  :func:`rtp_payloads` and :func:`decode_pcmu` turn the capture back into samples.
- :func:`tone_power` says which share of the audio's power lies at one frequency (a
  Goertzel filter per 100 ms block, so gaps and phase jumps between packets do not
  matter); :func:`dominant_frequency` finds the strongest frequency.

Samples are signed 16-bit integers. Everything here but :class:`RtpCapture` is pure.
Capturing needs root or CAP_NET_RAW (CI runs as root); the capture process is always
bounded (``timeout``) and stopped by PID.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import struct
import subprocess
import time
from array import array
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Final, NamedTuple, Self

from media import g711, rtp

RATE: Final = 8000
PCMU: Final = 0
FRAME_SAMPLES: Final = 160
"""Samples in one 20 ms G.711 RTP packet at 8 kHz."""

# --- tones and WAV files -----------------------------------------------------------------


def tone_samples(
    frequency: float, seconds: float, rate: int = RATE, amplitude: float = 0.5
) -> list[int]:
    """A sine of ``frequency`` Hz, ``amplitude`` of full scale, as signed 16-bit samples."""
    peak = amplitude * 32767
    count = round(seconds * rate)
    step = 2 * math.pi * frequency / rate
    return [round(peak * math.sin(step * index)) for index in range(count)]


def pcm_bytes(samples: Sequence[int]) -> bytes:
    """Signed 16-bit little-endian PCM (the layout of :mod:`media.g711` and WAV data)."""
    return struct.pack(f"<{len(samples)}h", *samples)


def write_tone_wav_ulaw(
    path: Path, frequency: int, seconds: float, *, amplitude: float = 0.5
) -> Path:
    """An 8 kHz mono mu-law WAV of a sine: what SIPp's ``rtp_stream`` plays as PCMU.

    The layout is sox's (``sox -n -r 8000 -c 1 -e u-law``): an 18-byte ``fmt`` chunk with
    format tag 7, a ``fact`` chunk, then the codes. SIPp 3.6.1 does not parse the file:
    it sends every byte as PCMU, the 58-byte header included (a 7 ms click each time the
    file starts). So the tone is laid out as if it had started under the header, and the
    data is lengthened (by less than one period) until the whole file is a whole number
    of tone periods: looped, the tone keeps its phase and only the click interrupts it.
    """
    period = RATE // math.gcd(frequency, RATE)  # samples after which the sine repeats
    step = period if period % 2 == 0 else 2 * period  # even: no RIFF pad byte to play
    total = -(-(_ULAW_HEADER_SIZE + round(seconds * RATE)) // step) * step
    tone = tone_samples(frequency, total / RATE, RATE, amplitude)[_ULAW_HEADER_SIZE:]
    codes = g711.linear_to_ulaw(pcm_bytes(tone))
    # wFormatTag 7 (mu-law), 1 channel, 8000 Hz, 8000 bytes/s, block 1, 8 bits, cbSize 0
    fmt = struct.pack("<HHIIHHH", 7, 1, RATE, RATE, 1, 8, 0)
    body = b"WAVE" + _chunk(b"fmt ", fmt) + _chunk(b"fact", struct.pack("<I", len(codes)))
    data = _chunk(b"data", codes)
    path.write_bytes(_chunk(b"RIFF", body + data))
    return path


_ULAW_HEADER_SIZE: Final = 58
"""RIFF (12) + fmt chunk (8 + 18) + fact chunk (8 + 4) + data chunk header (8)."""


def _chunk(name: bytes, data: bytes) -> bytes:
    padding = b"\x00" if len(data) % 2 else b""
    return name + struct.pack("<I", len(data)) + data + padding


def read_wav_samples(path: Path) -> tuple[int, list[int]]:
    """``(rate, samples)`` of a 16-bit PCM WAV (the first channel of a multi-channel one).

    Reads the RIFF chunks itself rather than through :mod:`wave`, so that a recording
    whose writer never fixed up the sizes (baresip killed mid-call) still reads: a data
    chunk whose size is 0 or runs past the end of the file takes the rest of the file.
    Raises ``ValueError`` for anything but 16-bit PCM.
    """
    data = path.read_bytes()
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/WAVE file")
    offset = 12
    fmt: tuple[int, int, int, int] | None = None
    while offset + 8 <= len(data):
        name, size = struct.unpack_from("<4sI", data, offset)
        offset += 8
        if name == b"fmt ":
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, offset)
            fmt = (tag, channels, rate, bits)
        elif name == b"data":
            if fmt is None:
                raise ValueError(f"{path}: data chunk before the fmt chunk")
            tag, channels, rate, bits = fmt
            if tag not in (1, 0xFFFE) or bits != 16:
                raise ValueError(f"{path}: format tag {tag}, {bits} bits; expected 16-bit PCM")
            end = len(data) if size == 0 or offset + size > len(data) else offset + size
            end -= (end - offset) % (2 * channels)
            samples = array("h", data[offset:end])
            if struct.pack("=h", 1) != struct.pack("<h", 1):
                samples.byteswap()  # WAV is little-endian
            return rate, list(samples[::channels])
        offset += size + (size & 1)
    raise ValueError(f"{path}: no data chunk")


# --- tone detection ------------------------------------------------------------------------

BLOCK_SECONDS: Final = 0.1


def _goertzel(samples: Sequence[int], start: int, stop: int, rate: int, frequency: float) -> float:
    """``|X(f)|^2`` of ``samples[start:stop]``: the squared DTFT magnitude at ``frequency``."""
    omega = 2 * math.pi * frequency / rate
    coeff = 2 * math.cos(omega)
    s1 = s2 = 0.0
    for index in range(start, stop):
        s1, s2 = samples[index] + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def _blocks(count: int, rate: int, block_seconds: float) -> list[tuple[int, int]]:
    size = max(1, round(rate * block_seconds))
    return [(start, min(start + size, count)) for start in range(0, count, size)]


def tone_power(
    samples: Sequence[int], rate: int, frequency: float, *, block_seconds: float = BLOCK_SECONDS
) -> float:
    """The share (0 to about 1) of the audio's power that lies at ``frequency``.

    Per block of ``block_seconds`` (resolution about ``1 / block_seconds`` Hz), a pure
    sine at ``frequency`` scores ``2 |X|^2 / (N * energy)`` = 1; silence adds nothing to
    either side, so leading or trailing silence does not dilute the score. A pure tone
    scores above 0.9 at its own frequency and below 0.01 some 50 Hz away. Silence: 0.
    """
    energy = math.fsum(float(value) * value for value in samples)
    if energy == 0:
        return 0.0
    at_frequency = 0.0
    for start, stop in _blocks(len(samples), rate, block_seconds):
        at_frequency += 2 * _goertzel(samples, start, stop, rate, frequency) / (stop - start)
    return at_frequency / energy


def dominant_frequency(
    samples: Sequence[int],
    rate: int,
    *,
    low: float = 50.0,
    high: float | None = None,
    step: float = 10.0,
) -> float:
    """The strongest frequency (to ``step`` Hz) in the loudest block of ``samples``.

    Scans ``low`` to ``high`` (default: just below half the rate) with a Goertzel filter
    over the loudest block of ``rate / step`` samples, so a call's silent start does not
    count. Raises ``ValueError`` on silence.
    """
    blocks = _blocks(len(samples), rate, 1 / step)
    loudest = max(blocks, key=lambda b: sum(abs(v) for v in samples[b[0] : b[1]]), default=None)
    if loudest is None or not any(samples[loudest[0] : loudest[1]]):
        raise ValueError("no audio: every sample is zero")
    top = high if high is not None else rate / 2 - step
    candidates = [low + step * index for index in range(int((top - low) / step) + 1)]
    return max(candidates, key=lambda f: _goertzel(samples, *loudest, rate, f))


# --- pcap ----------------------------------------------------------------------------------

LINKTYPE_NULL: Final = 0
"""BSD loopback: a 4-byte address family in the capturing host's byte order."""
LINKTYPE_ETHERNET: Final = 1
"""What tcpdump gives for ``-i lo`` on Linux."""
LINKTYPE_RAW: Final = 101
LINKTYPE_LINUX_SLL: Final = 113
"""Linux cooked capture (``-i any``), 16-byte header."""
LINKTYPE_LINUX_SLL2: Final = 276
"""Linux cooked capture v2 (newer ``-i any``), 20-byte header."""

_ETHERTYPE_IPV4: Final = 0x0800
_ETHERTYPE_VLAN: Final = 0x8100
_UDP: Final = 17
_MAGIC: Final = {
    b"\xd4\xc3\xb2\xa1": "<",  # microseconds, little-endian
    b"\xa1\xb2\xc3\xd4": ">",
    b"\x4d\x3c\xb2\xa1": "<",  # nanoseconds
    b"\xa1\xb2\x3c\x4d": ">",
}


class UdpDatagram(NamedTuple):
    """One captured IPv4 UDP datagram."""

    time: float
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes


def read_pcap(path: Path) -> Iterator[UdpDatagram]:
    """The IPv4 UDP datagrams of a classic pcap file (not pcapng), in capture order.

    Link types: Ethernet (``tcpdump -i lo``), Linux cooked v1 and v2 (``-i any``), BSD
    loopback and raw IP. Other packets (TCP, IPv6, ARP, fragments after the first) are
    skipped; a record cut short at the end of the file (capture killed) ends the list.
    """
    data = path.read_bytes()
    order = _MAGIC.get(data[:4])
    if order is None:
        raise ValueError(f"{path}: not a classic pcap file (pcapng? write with -F pcap)")
    nanos = data[:4] in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    (linktype,) = struct.unpack_from(order + "I", data, 20)
    record = struct.Struct(order + "IIII")
    offset = 24
    while offset + record.size <= len(data):
        seconds, fraction, captured, _ = record.unpack_from(data, offset)
        offset += record.size
        frame = data[offset : offset + captured]
        offset += captured
        if len(frame) < captured:
            return
        packet = _ip_packet(frame, linktype)
        datagram = _udp(packet) if packet is not None else None
        if datagram is not None:
            stamp = seconds + fraction / (1e9 if nanos else 1e6)
            yield UdpDatagram(stamp, *datagram)


def _ip_packet(frame: bytes, linktype: int) -> bytes | None:
    """The IPv4 packet inside one link-layer frame, or ``None``."""
    if linktype == LINKTYPE_ETHERNET:
        ethertype, start = struct.unpack_from("!H", frame, 12)[0], 14
        if ethertype == _ETHERTYPE_VLAN:
            ethertype, start = struct.unpack_from("!H", frame, 16)[0], 18
    elif linktype == LINKTYPE_LINUX_SLL:
        ethertype, start = struct.unpack_from("!H", frame, 14)[0], 16
    elif linktype == LINKTYPE_LINUX_SLL2:
        ethertype, start = struct.unpack_from("!H", frame, 0)[0], 20
    elif linktype == LINKTYPE_NULL:
        # AF_INET is 2 everywhere; the field is in the capturing host's byte order.
        inet = 2 in (int.from_bytes(frame[:4], "little"), int.from_bytes(frame[:4], "big"))
        ethertype, start = (_ETHERTYPE_IPV4 if inet else 0), 4
    elif linktype == LINKTYPE_RAW:
        ethertype, start = _ETHERTYPE_IPV4, 0
    else:
        raise ValueError(f"pcap link type {linktype} not supported")
    packet = frame[start:]
    if ethertype != _ETHERTYPE_IPV4 or len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    return packet


def _udp(packet: bytes) -> tuple[tuple[str, int], tuple[str, int], bytes] | None:
    header = (packet[0] & 0x0F) * 4
    total, flags_offset = struct.unpack_from("!H2xH", packet, 2)
    if packet[9] != _UDP or flags_offset & 0x1FFF or len(packet) < header + 8:
        return None  # not UDP, or a fragment other than the first
    src_port, dst_port, length = struct.unpack_from("!HHH", packet, header)
    end = min(header + length, total, len(packet))
    src = ".".join(map(str, packet[12:16]))
    dst = ".".join(map(str, packet[16:20]))
    return (src, src_port), (dst, dst_port), packet[header + 8 : end]


# --- RTP -----------------------------------------------------------------------------------


def rtp_payloads(
    datagrams: Iterable[UdpDatagram], *, dst_port: int, payload_type: int = PCMU
) -> list[bytes]:
    """The payloads of the RTP packets of ``payload_type`` sent to UDP ``dst_port``.

    In sequence order per SSRC (streams one after the other, in order of first packet),
    with duplicates dropped; RTCP and datagrams that are not RTP are skipped.
    """
    firsts: dict[int, int] = {}  # SSRC -> its first sequence number
    streams: dict[int, dict[int, bytes]] = {}  # SSRC -> position -> payload
    for datagram in datagrams:
        if datagram.dst[1] != dst_port or rtp.is_rtcp(datagram.payload):
            continue
        try:
            header = rtp.parse_header(datagram.payload)
        except rtp.RtpError:
            continue
        if header.payload_type != payload_type:
            continue
        first = firsts.setdefault(header.ssrc, header.sequence_number)
        # The 16-bit sequence number, unwrapped relative to the stream's first packet.
        position = rtp.seq_diff(header.sequence_number, first)
        stream = streams.setdefault(header.ssrc, {})
        stream.setdefault(position, bytes(header.payload(datagram.payload)))
    return [stream[key] for stream in streams.values() for key in sorted(stream)]


def decode_pcmu(payloads: bytes | Iterable[bytes]) -> list[int]:
    """Signed 16-bit samples of PCMU codes (one payload, or several in order)."""
    codes = payloads if isinstance(payloads, bytes) else b"".join(payloads)
    samples = array("h", g711.ulaw_to_linear(codes))
    if struct.pack("=h", 1) != struct.pack("<h", 1):
        samples.byteswap()
    return list(samples)


def pcmu_packets(
    samples: Sequence[int], *, ssrc: int = 0x1234, first_sequence: int = 0
) -> list[bytes]:
    """``samples`` as PCMU RTP packets of 20 ms (for tests that play a tone themselves)."""
    codes = g711.linear_to_ulaw(pcm_bytes(samples))
    return [
        rtp.build_packet(
            payload_type=PCMU,
            sequence_number=(first_sequence + index) & 0xFFFF,
            timestamp=(index * FRAME_SAMPLES) & 0xFFFF_FFFF,
            ssrc=ssrc,
            payload=codes[start : start + FRAME_SAMPLES],
            marker=index == 0,
        )
        for index, start in enumerate(range(0, len(codes), FRAME_SAMPLES))
    ]


# --- capture -------------------------------------------------------------------------------

CAPTURE_LIMIT: Final = 120.0
"""Seconds after which a capture stops by itself (``timeout``), whatever the test does."""
CAPTURE_START_TIMEOUT: Final = 5.0
CAPTURE_STOP_TIMEOUT: Final = 5.0
CAPTURE_QUIET: Final = 0.2
CAPTURE_DRAIN: Final = 2.0
_READY_LINE: Final = "listening on"
"""What tcpdump prints on stderr once its filter is in place."""


class CaptureError(RuntimeError):
    """tcpdump is missing, or failed to start; carries its output."""


def capture_command(pcap: Path, ports: Sequence[int], interface: str, limit: float) -> list[str]:
    """tcpdump writing the UDP traffic to or from ``ports`` on ``interface`` to ``pcap``.

    Under ``timeout -s INT`` (it ends by itself after ``limit`` s, and passes our SIGINT
    on). ``-Z root``: keep root to write into a private (0700) directory. ``-U`` and
    ``--immediate-mode``: each packet reaches the file at once. ``-B 8192 -s 2048``: a
    bigger ring of smaller frames (the default 2 MiB ring of 256 KiB frames dropped most
    of a 50-packet burst here). RTP fits in 2048 bytes; longer datagrams are cut.
    """
    bpf = "udp and (" + " or ".join(f"port {port}" for port in ports) + ")"
    return [
        "timeout", "-s", "INT", "-k", "5", f"{limit:g}",
        "tcpdump", "-i", interface, "-n", "-U", "--immediate-mode", "-B", "8192", "-s", "2048",
        "-Z", "root", "-w", str(pcap), bpf,
    ]  # fmt: skip


class RtpCapture:
    """Capture UDP to or from ``ports`` on the loopback while the ``with`` block runs.

    ``__enter__`` returns once tcpdump says it is listening (bounded by
    ``CAPTURE_START_TIMEOUT``). ``__exit__`` waits until the file stops growing, then
    stops tcpdump with SIGINT by PID (it flushes the file), then SIGKILL. Under
    ``timeout``, tcpdump also ends by itself after ``limit`` s, should this process die.
    Then ``datagrams()`` reads the file and ``pcmu_samples(port)`` decodes the PCMU sent
    to one port. Needs root or CAP_NET_RAW.
    """

    def __init__(
        self,
        directory: Path,
        ports: Sequence[int],
        *,
        interface: str = "lo",
        limit: float = CAPTURE_LIMIT,
    ) -> None:
        if not ports:
            raise ValueError("capture what? no ports given")
        if shutil.which("tcpdump") is None:
            raise CaptureError("tcpdump is not installed (packaging/apt-packages.txt)")
        self.pcap = directory / f"capture-{'-'.join(map(str, ports))}.pcap"
        self.log = self.pcap.with_suffix(".log")
        self.command = capture_command(self.pcap, ports, interface, limit)
        self.process: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None

    def __enter__(self) -> Self:
        with self.log.open("wb") as log:
            # Its own process group (timeout's and tcpdump's): SIGKILL reaches both.
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        try:
            self._wait_listening()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_listening(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + CAPTURE_START_TIMEOUT
        while _READY_LINE not in self.output():
            if self.process.poll() is not None:
                raise CaptureError(f"tcpdump exited: {self.output()}")
            if time.monotonic() > deadline:
                raise CaptureError(
                    f"not listening after {CAPTURE_START_TIMEOUT} s: {self.output()}"
                )
            time.sleep(0.02)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> int | None:
        """SIGINT by PID (``timeout`` passes it to tcpdump), then SIGKILL to the process
        group after ``CAPTURE_STOP_TIMEOUT`` s; the exit code. Idempotent."""
        process = self.process
        if process is None or self.exit_code is not None:
            return self.exit_code
        if process.poll() is None:  # not reaped: the PID is still ours
            self._drain()
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=CAPTURE_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        self.exit_code = process.wait(timeout=CAPTURE_STOP_TIMEOUT)
        return self.exit_code

    def _drain(self) -> None:
        """Until the file has not grown for ``CAPTURE_QUIET`` s (at most ``CAPTURE_DRAIN`` s).

        SIGINT ends the capture at once: packets sent just before it, still in the
        kernel's buffer, would be lost.
        """
        deadline = time.monotonic() + CAPTURE_DRAIN
        size, quiet_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            current = self.pcap.stat().st_size if self.pcap.exists() else 0
            if current != size:
                size, quiet_since = current, time.monotonic()
            elif time.monotonic() - quiet_since >= CAPTURE_QUIET:
                return
            time.sleep(0.02)

    def output(self) -> str:
        """What the capture program printed (its counts come at the end)."""
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def datagrams(self) -> list[UdpDatagram]:
        """Every captured datagram (call after the ``with`` block)."""
        return list(read_pcap(self.pcap)) if self.pcap.exists() else []

    def pcmu_samples(self, dst_port: int) -> list[int]:
        """The PCMU audio sent to ``dst_port``, decoded, in sequence order."""
        return decode_pcmu(rtp_payloads(self.datagrams(), dst_port=dst_port))
