"""Self-test of ``tests.support.audio``: tones, WAV files, pcap reading, RTP, capture.

Everything but the last tests is pure. The module is marked ``e2e`` only because
``make test`` runs ``tests/support`` with ``-m e2e``; the capture tests need tcpdump
(root or CAP_NET_RAW) and skip without it, or fail when ``B2BUA_REQUIRE_E2E=1``.
"""

from __future__ import annotations

import math
import socket
import struct
import subprocess
import time
from pathlib import Path
from typing import Final

import pytest

from media import g711, rtp
from tests.support.audio import (
    FRAME_SAMPLES,
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    RATE,
    CaptureError,
    RtpCapture,
    UdpDatagram,
    capture_command,
    decode_pcmu,
    dominant_frequency,
    pcm_bytes,
    pcmu_packets,
    read_pcap,
    read_wav_samples,
    rtp_payloads,
    tone_power,
    tone_samples,
    write_tone_wav_ulaw,
)
from tests.support.phones import write_tone_wav
from tests.support.processes import require_tools

pytestmark = pytest.mark.e2e

HOST: Final = "127.0.0.1"


# --- tone detection -------------------------------------------------------------------------


@pytest.mark.parametrize("frequency", [350, 600, 1000, 2500, 3400])
def test_a_tone_is_found_at_its_frequency_and_not_elsewhere(frequency: int) -> None:
    samples = tone_samples(frequency, 1.0)
    assert tone_power(samples, RATE, frequency) > 0.99
    assert tone_power(samples, RATE, frequency + 50) < 0.01
    assert tone_power(samples, RATE, frequency - 50) < 0.01
    assert dominant_frequency(samples, RATE) == frequency


def test_two_tones_share_the_power() -> None:
    mixed = [a + b for a, b in zip(tone_samples(600, 1.0), tone_samples(1000, 1.0), strict=True)]
    assert 0.45 < tone_power(mixed, RATE, 600) < 0.55
    assert 0.45 < tone_power(mixed, RATE, 1000) < 0.55
    assert tone_power(mixed, RATE, 800) < 0.01
    assert dominant_frequency(mixed, RATE) in (600, 1000)


def test_silence_and_loudness_do_not_change_the_score() -> None:
    quiet = tone_samples(1000, 1.0, amplitude=0.01)
    padded = [0] * RATE + tone_samples(1000, 1.0) + [0] * RATE
    assert tone_power(quiet, RATE, 1000) > 0.99
    assert tone_power(padded, RATE, 1000) > 0.99
    assert dominant_frequency(padded, RATE) == 1000
    assert tone_power([0] * RATE, RATE, 1000) == 0.0
    assert tone_power([], RATE, 1000) == 0.0
    with pytest.raises(ValueError, match="no audio"):
        dominant_frequency([0] * RATE, RATE)


def test_phase_jumps_between_blocks_are_tolerated() -> None:
    """Packets lost or concealed shift the phase: score per block, not over the whole."""
    jumpy: list[int] = []
    for index in range(8):
        step = 2 * math.pi * 600 / RATE
        jumpy += [round(16000 * math.sin(step * n + index)) for n in range(RATE // 2)]
    assert tone_power(jumpy, RATE, 600) > 0.8
    assert tone_power(jumpy, RATE, 1000) < 0.01


def test_noise_is_not_a_tone() -> None:
    # A fixed pseudo-random sequence (linear congruential), so the test is repeatable.
    state, noise = 12345, []
    for _ in range(RATE):
        state = (state * 1103515245 + 12345) % 2**31
        noise.append(state % 20000 - 10000)
    assert tone_power(noise, RATE, 1000) < 0.05
    assert tone_power(noise, RATE, 600) < 0.05


# --- WAV files -----------------------------------------------------------------------------


def _riff_chunks(data: bytes) -> dict[bytes, tuple[int, bytes]]:
    chunks, offset = {}, 12
    while offset + 8 <= len(data):
        name, size = struct.unpack_from("<4sI", data, offset)
        chunks[name] = (offset + 8, data[offset + 8 : offset + 8 + size])
        offset += 8 + size + (size & 1)
    return chunks


@pytest.mark.parametrize("frequency", [440, 600, 1000, 1234])
def test_ulaw_wav_is_what_sipp_rtp_stream_plays(tmp_path: Path, frequency: int) -> None:
    wav = write_tone_wav_ulaw(tmp_path / "tone.wav", frequency, 1.0).read_bytes()
    assert wav[:4] == b"RIFF"
    assert wav[8:12] == b"WAVE"
    assert struct.unpack_from("<I", wav, 4)[0] == len(wav) - 8
    chunks = _riff_chunks(wav)
    tag, channels, rate, byte_rate, block, bits, extra = struct.unpack(
        "<HHIIHHH", chunks[b"fmt "][1]
    )
    assert (tag, channels, rate, byte_rate, block, bits, extra) == (7, 1, 8000, 8000, 1, 8, 0)
    data_offset, codes = chunks[b"data"]
    assert data_offset == 58
    assert struct.unpack("<I", chunks[b"fact"][1])[0] == len(codes)
    assert 1.0 <= len(codes) / RATE < 1.5
    samples = decode_pcmu(codes)
    assert dominant_frequency(samples, RATE) == pytest.approx(frequency, abs=5)
    assert tone_power(samples, RATE, frequency) > 0.99
    # SIPp sends the whole file, header included, loop after loop: the tone keeps its
    # phase across the loops, so only the header's 58 samples cost anything.
    period = RATE // math.gcd(frequency, RATE)
    assert len(wav) % period == 0
    assert tone_power(decode_pcmu(wav * 3), RATE, frequency) > 0.95


def test_sox_reads_the_ulaw_wav(tmp_path: Path) -> None:
    require_tools("sox")
    wav = write_tone_wav_ulaw(tmp_path / "tone.wav", 1000, 1.0)
    info = subprocess.run(
        ["sox", "--i", str(wav)], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    assert "u-law" in info
    assert "Sample Rate    : 8000" in info
    assert "Channels       : 1" in info


def test_read_wav_samples_reads_a_16_bit_wav(tmp_path: Path) -> None:
    wav = write_tone_wav(tmp_path / "tone.wav", frequency=600, seconds=0.5)
    rate, samples = read_wav_samples(wav)
    assert rate == RATE
    assert len(samples) == RATE // 2
    assert dominant_frequency(samples, rate) == 600


def _pcm_wav(channels: int, frames: list[tuple[int, ...]], data_size: int | None = None) -> bytes:
    data = b"".join(struct.pack(f"<{channels}h", *frame) for frame in frames)
    fmt = struct.pack("<HHIIHH", 1, channels, RATE, RATE * 2 * channels, 2 * channels, 16)
    size = len(data) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # an odd-sized chunk to skip
    body += b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_read_wav_samples_takes_the_first_channel(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    path.write_bytes(_pcm_wav(2, [(1, -1), (2, -2), (3, -3)]))
    assert read_wav_samples(path) == (RATE, [1, 2, 3])


@pytest.mark.parametrize("size", [0, 1_000_000])
def test_read_wav_samples_reads_a_recording_never_closed(tmp_path: Path, size: int) -> None:
    """A writer killed mid-call leaves a data size of 0 (or a wrong one): read to the end."""
    path = tmp_path / "cut.wav"
    path.write_bytes(_pcm_wav(1, [(5,), (6,), (7,)], data_size=size) + b"\x08")
    assert read_wav_samples(path) == (RATE, [5, 6, 7])


def test_read_wav_samples_refuses_other_formats(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="16-bit PCM"):
        read_wav_samples(write_tone_wav_ulaw(tmp_path / "ulaw.wav", 1000, 0.1))
    (tmp_path / "text.wav").write_bytes(b"not a wav file at all")
    with pytest.raises(ValueError, match="RIFF"):
        read_wav_samples(tmp_path / "text.wav")


# --- G.711 and RTP -------------------------------------------------------------------------


def test_pcmu_round_trip_keeps_the_signal() -> None:
    samples = tone_samples(1000, 0.1)
    decoded = decode_pcmu(g711.linear_to_ulaw(pcm_bytes(samples)))
    assert len(decoded) == len(samples)
    # mu-law keeps about 4 significant bits past the segment: error within 1/16 + a step.
    assert all(abs(a - b) <= abs(a) / 16 + 8 for a, b in zip(samples, decoded, strict=True))
    codes = bytes(range(256))
    assert g711.linear_to_ulaw(pcm_bytes(decode_pcmu(codes))) == codes.replace(b"\x7f", b"\xff")


def test_pcmu_packets_carry_20_ms_each() -> None:
    packets = pcmu_packets(tone_samples(600, 0.1), ssrc=7, first_sequence=65534)
    assert len(packets) == 5
    headers = [rtp.parse_header(packet) for packet in packets]
    assert [h.sequence_number for h in headers] == [65534, 65535, 0, 1, 2]
    assert [h.timestamp for h in headers] == [0, 160, 320, 480, 640]
    assert {h.payload_type for h in headers} == {0}
    assert {h.payload_length for h in headers} == {FRAME_SAMPLES}
    assert [h.marker for h in headers] == [True, False, False, False, False]


def _datagram(payload: bytes, dst_port: int = 4000, src_port: int = 5000) -> UdpDatagram:
    return UdpDatagram(0.0, (HOST, src_port), (HOST, dst_port), payload)


def test_rtp_payloads_orders_filters_and_drops_duplicates() -> None:
    packets = pcmu_packets(tone_samples(600, 0.1), ssrc=1, first_sequence=65533)
    other_stream = pcmu_packets(tone_samples(600, 0.04), ssrc=2)
    dtmf = rtp.build_packet(payload_type=101, sequence_number=9, timestamp=0, ssrc=1)
    rtcp = bytes([0x80, 200]) + bytes(26)
    shuffled = [packets[2], packets[0], packets[1], packets[1], packets[4], packets[3]]
    datagrams = [
        *map(_datagram, shuffled),
        _datagram(other_stream[1]),
        _datagram(other_stream[0]),
        _datagram(dtmf),
        _datagram(rtcp),
        _datagram(b"\x00junk"),
        _datagram(packets[0], dst_port=4002),
    ]
    payloads = rtp_payloads(datagrams, dst_port=4000)
    expected = [rtp.parse_header(p).payload(p).tobytes() for p in packets + other_stream]
    assert payloads == expected
    assert rtp_payloads(datagrams, dst_port=4000, payload_type=101) == [b""]
    assert rtp_payloads(datagrams, dst_port=4001) == []


# --- pcap ----------------------------------------------------------------------------------


def _ipv4_udp(src_port: int, dst_port: int, payload: bytes, *, fragment: int = 0) -> bytes:
    udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload
    return (
        struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, fragment, 64, 17, 0,
                    socket.inet_aton("127.0.0.2"), socket.inet_aton(HOST))
        + udp
    )  # fmt: skip


def _ipv4_tcp() -> bytes:
    tcp = bytes(20)
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 1, 0, 64, 6, 0, bytes(4), bytes(4)) + tcp


def _frame(linktype: int, packet: bytes, ethertype: int = 0x0800) -> bytes:
    if linktype == LINKTYPE_ETHERNET:
        return bytes(12) + struct.pack("!H", ethertype) + packet
    if linktype == LINKTYPE_LINUX_SLL:
        return struct.pack("!HHH8sH", 0, 772, 6, bytes(8), ethertype) + packet
    if linktype == LINKTYPE_LINUX_SLL2:
        return struct.pack("!HHIHBB8s", ethertype, 0, 1, 772, 0, 6, bytes(8)) + packet
    if linktype == LINKTYPE_NULL:
        family = 2 if ethertype == 0x0800 else 30
        return struct.pack("=I", family) + packet
    return packet


def _pcap(linktype: int, frames: list[bytes], *, endian: str = "<", nanos: bool = False) -> bytes:
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    for index, frame in enumerate(frames):
        fraction = 500_000_000 if nanos else 500_000
        out += struct.pack(endian + "IIII", 100 + index, fraction, len(frame), len(frame)) + frame
    return out


@pytest.mark.parametrize(
    "linktype",
    [LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_NULL, LINKTYPE_RAW],
)
@pytest.mark.parametrize(("endian", "nanos"), [("<", False), (">", False), ("<", True)])
def test_read_pcap_yields_udp_datagrams(
    tmp_path: Path, linktype: int, endian: str, nanos: bool
) -> None:
    frames = [
        _frame(linktype, _ipv4_udp(5000, 4000, b"first")),
        _frame(linktype, _ipv4_tcp()),
        _frame(linktype, _ipv4_udp(5000, 4000, b"tail", fragment=0x0010)),  # not the first
        _frame(linktype, _ipv4_udp(6000, 4002, b"second")),
    ]
    if linktype != LINKTYPE_RAW:
        frames.insert(1, _frame(linktype, bytes(40), ethertype=0x86DD))  # IPv6: skipped
    path = tmp_path / "capture.pcap"
    path.write_bytes(_pcap(linktype, frames, endian=endian, nanos=nanos) + b"\x01\x02")
    datagrams = list(read_pcap(path))
    assert [(d.src, d.dst, d.payload) for d in datagrams] == [
        (("127.0.0.2", 5000), (HOST, 4000), b"first"),
        (("127.0.0.2", 6000), (HOST, 4002), b"second"),
    ]
    assert datagrams[0].time == pytest.approx(100.5)


def test_read_pcap_stops_at_a_record_cut_short(tmp_path: Path) -> None:
    whole = _pcap(LINKTYPE_ETHERNET, [_frame(LINKTYPE_ETHERNET, _ipv4_udp(1, 2, b"x" * 40))] * 2)
    path = tmp_path / "cut.pcap"
    path.write_bytes(whole[:-10])
    assert [d.payload for d in read_pcap(path)] == [b"x" * 40]


def test_read_pcap_refuses_pcapng_and_unknown_links(tmp_path: Path) -> None:
    path = tmp_path / "capture.pcapng"
    path.write_bytes(b"\x0a\x0d\x0d\x0a" + bytes(40))
    with pytest.raises(ValueError, match="pcapng"):
        list(read_pcap(path))
    path.write_bytes(_pcap(147, [b"\x00" * 30]))
    with pytest.raises(ValueError, match="link type 147"):
        list(read_pcap(path))


def test_capture_command_filters_udp_on_the_ports(tmp_path: Path) -> None:
    command = capture_command(tmp_path / "c.pcap", [4000, 4002], "lo", 30)
    assert command[:7] == ["timeout", "-s", "INT", "-k", "5", "30", "tcpdump"]
    assert command[-1] == "udp and (port 4000 or port 4002)"
    assert command[7:9] == ["-i", "lo"]
    assert command[command.index("-w") + 1] == str(tmp_path / "c.pcap")


# --- capture on the loopback ---------------------------------------------------------------


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def test_capture_finds_a_pcmu_tone_sent_on_the_loopback(tmp_path: Path) -> None:
    """Real RTP from a Python socket: only the filtered port is kept, the tone is found."""
    require_tools("tcpdump")
    port, other = _free_udp_port(), _free_udp_port()
    packets = pcmu_packets(tone_samples(600, 1.0))
    noise = pcmu_packets(tone_samples(1000, 0.2))
    with (
        RtpCapture(tmp_path, [port]) as capture,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        for packet in packets:
            sender.sendto(packet, (HOST, port))
            time.sleep(0.002)
        for packet in noise:
            sender.sendto(packet, (HOST, other))
    assert capture.exit_code == 0, capture.output()
    assert capture.process is not None
    assert capture.process.poll() is not None
    datagrams = capture.datagrams()
    assert len(datagrams) == len(packets), capture.output()
    assert {d.dst for d in datagrams} == {(HOST, port)}
    samples = capture.pcmu_samples(port)
    assert len(samples) == RATE
    assert tone_power(samples, RATE, 600) > 0.95
    assert tone_power(samples, RATE, 1000) < 0.01
    assert dominant_frequency(samples, RATE) == 600


def test_capture_of_nothing_is_empty(tmp_path: Path) -> None:
    require_tools("tcpdump")
    port = _free_udp_port()
    with RtpCapture(tmp_path, [port]) as capture:
        pass
    assert capture.datagrams() == []
    assert capture.pcmu_samples(port) == []


def test_capture_start_failure_is_reported(tmp_path: Path) -> None:
    require_tools("tcpdump")
    capture = RtpCapture(tmp_path, [4000], interface="nosuchif0")
    with pytest.raises(CaptureError, match="exited"), capture:
        pass
    assert capture.process is not None
    assert capture.process.poll() is not None


def test_capture_needs_ports(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no ports"):
        RtpCapture(tmp_path, [])
