"""RTP packets on the wire (RFC 3550), read and patched in place with :mod:`struct`.

The relay reads each packet's fixed header (RFC 3550 section 5.1), decides, and may rewrite
SSRC, sequence number and timestamp in place before sending the same buffer on; nothing
here copies the payload. Generated audio (prompts, tests) is framed with :func:`build_packet`.

Sequence numbers live in a 16-bit space and timestamps in a 32-bit space that wrap around;
:func:`seq_diff` and :func:`ts_diff` compare them modulo that space (RFC 3550 appendix A.1).

A :class:`RtpError` is the sender's fault: the datagram is dropped, never answered.
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple, TypeAlias

BytesLike: TypeAlias = bytes | bytearray | memoryview
WritableBuffer: TypeAlias = bytearray | memoryview

RTP_VERSION: Final = 2
FIXED_HEADER_SIZE: Final = 12
MAX_PAYLOAD_TYPE: Final = 127
MAX_CSRC_COUNT: Final = 15

_SEQ_MASK: Final = 0xFFFF
_TS_MASK: Final = 0xFFFF_FFFF
_SEQ_HALF: Final = 0x8000
_TS_HALF: Final = 0x8000_0000

# RFC 3550 section 5.1: V(2) P(1) X(1) CC(4) | M(1) PT(7) | sequence number(16) | timestamp(32)
# | SSRC(32), all in network byte order.
_FIXED: Final = struct.Struct("!BBHII")
# RFC 3550 section 5.3.1: "defined by profile"(16) | length in 32-bit words, excluding these 4(16)
_EXTENSION: Final = struct.Struct("!HH")
_U16: Final = struct.Struct("!H")
_U32: Final = struct.Struct("!I")


class RtpError(Exception):
    """A datagram that is not a valid RTP packet (RFC 3550 section 5.1, appendix A.1).

    The remote side is at fault; the packet is dropped (RTP has no error reply).
    """


class HeaderExtension(NamedTuple):
    """The RFC 3550 section 5.3.1 header extension: a profile-defined id and its data.

    ``data`` is a whole number of 32-bit words (RFC 8285 one-byte and two-byte forms
    are carried inside it untouched).
    """

    profile: int
    data: bytes


class RtpHeader(NamedTuple):
    """The fixed RTP header of one packet (RFC 3550 section 5.1), plus where its payload is.

    A ``NamedTuple`` rather than a frozen dataclass: one is built per relayed packet, and
    a tuple is built several times faster. ``payload_offset`` skips the CSRC list and the
    header extension (section 5.3.1); ``payload_length`` leaves out the padding octets.
    """

    version: int
    padding: bool
    extension: bool
    csrc_count: int
    marker: bool
    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload_offset: int
    payload_length: int

    def payload(self, data: BytesLike) -> memoryview:
        """The payload of ``data`` (the packet this header was parsed from), without a copy."""
        start = self.payload_offset
        return memoryview(data)[start : start + self.payload_length]

    def csrcs(self, data: BytesLike) -> tuple[int, ...]:
        """The contributing sources listed after the fixed header (RFC 3550 section 5.1)."""
        return struct.unpack_from(f"!{self.csrc_count}I", data, FIXED_HEADER_SIZE)

    def header_extension(self, data: BytesLike) -> HeaderExtension | None:
        """The header extension (RFC 3550 section 5.3.1), or ``None`` when X is clear."""
        if not self.extension:
            return None
        start = FIXED_HEADER_SIZE + 4 * self.csrc_count
        profile, _ = _EXTENSION.unpack_from(data, start)
        return HeaderExtension(profile, bytes(data[start + 4 : self.payload_offset]))


def parse_header(data: BytesLike) -> RtpHeader:
    """Read the fixed header of the RTP packet ``data`` and locate its payload.

    Checks what RFC 3550 appendix A.1 asks of a valid packet: version 2, room for the
    CSRC list and the header extension, and a padding count (the last octet, when P is
    set, RFC 3550 section 5.1) between 1 and the octets left after the header.
    Raises :class:`RtpError` otherwise. RTCP is not told apart here: see :func:`is_rtcp`.
    """
    size = len(data)
    if size < FIXED_HEADER_SIZE:
        raise RtpError(f"{size} bytes: shorter than the 12-byte RTP fixed header")
    first, second, sequence_number, timestamp, ssrc = _FIXED.unpack_from(data)
    version = first >> 6
    if version != RTP_VERSION:
        raise RtpError(f"RTP version {version}, expected 2")
    csrc_count = first & 0x0F
    offset = FIXED_HEADER_SIZE + 4 * csrc_count
    if size < offset:
        raise RtpError(f"{size} bytes: too short for {csrc_count} CSRC identifiers")
    has_extension = bool(first & 0x10)
    if has_extension:
        if size < offset + 4:
            raise RtpError(f"{size} bytes: X bit set but no room for the extension header")
        _, words = _EXTENSION.unpack_from(data, offset)
        offset += 4 + 4 * words
        if size < offset:
            raise RtpError(f"{size} bytes: header extension of {words} words runs past the end")
    end = size
    has_padding = bool(first & 0x20)
    if has_padding:
        count = data[-1]
        # RFC 3550 section 5.1: the count includes the last octet itself, so 0 is invalid.
        if count == 0 or count > size - offset:
            raise RtpError(f"padding count {count} with {size - offset} octets after the header")
        end -= count
    return RtpHeader(
        version,
        has_padding,
        has_extension,
        csrc_count,
        bool(second & 0x80),
        second & 0x7F,
        sequence_number,
        timestamp,
        ssrc,
        offset,
        end - offset,
    )


def is_rtcp(data: BytesLike) -> bool:
    """Whether a datagram on a shared RTP/RTCP port is RTCP (RFC 5761 section 4).

    RFC 5761 demultiplexes on the second octet: RTCP packet types 192-223 (SR 200, RR 201,
    SDES 202, BYE 203, APP 204, feedback and XR after them) fall where an RTP packet would
    carry the marker bit and payload type 64-95, which multiplexing peers must not use.
    """
    return len(data) >= 2 and 192 <= data[1] <= 223


def build_packet(
    *,
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    payload: BytesLike = b"",
    marker: bool = False,
    csrcs: tuple[int, ...] = (),
    extension: HeaderExtension | None = None,
    padding: int = 0,
) -> bytes:
    """Frame ``payload`` as an RTP packet (RFC 3550 section 5.1).

    ``padding`` is the number of padding octets to append (0 for none, else 1-255, the
    last of which carries the count). Out-of-range fields are our own bug: ``ValueError``.
    """
    if not 0 <= payload_type <= MAX_PAYLOAD_TYPE:
        raise ValueError(f"payload type {payload_type} outside 0-127")
    if not 0 <= sequence_number <= _SEQ_MASK:
        raise ValueError(f"sequence number {sequence_number} outside 16 bits")
    if not 0 <= timestamp <= _TS_MASK or not 0 <= ssrc <= _TS_MASK:
        raise ValueError("timestamp and SSRC must fit in 32 bits")
    if len(csrcs) > MAX_CSRC_COUNT:
        raise ValueError(f"{len(csrcs)} CSRCs: at most 15 fit in the CC field")
    if not 0 <= padding <= 255:
        raise ValueError(f"padding of {padding} octets: the count is one octet")
    first = RTP_VERSION << 6 | len(csrcs) | (0x20 if padding else 0)
    parts = [
        _FIXED.pack(
            first | (0x10 if extension is not None else 0),
            payload_type | (0x80 if marker else 0),
            sequence_number,
            timestamp,
            ssrc,
        )
    ]
    if csrcs:
        parts.append(struct.pack(f"!{len(csrcs)}I", *csrcs))
    if extension is not None:
        words, remainder = divmod(len(extension.data), 4)
        if remainder or words > _SEQ_MASK or not 0 <= extension.profile <= _SEQ_MASK:
            raise ValueError("header extension data must be whole 32-bit words, at most 65535")
        parts.append(_EXTENSION.pack(extension.profile, words))
        parts.append(extension.data)
    parts.append(bytes(payload))
    if padding:
        parts.append(bytes(padding - 1) + bytes((padding,)))
    return b"".join(parts)


# In-place rewriting for the relay. Values are taken modulo their field, so a caller can pass
# `sequence_number + offset` straight through.


def set_sequence(packet: WritableBuffer, sequence_number: int) -> None:
    """Overwrite the sequence number (modulo 2**16) of the packet in ``packet``."""
    _U16.pack_into(packet, 2, sequence_number & _SEQ_MASK)


def set_timestamp(packet: WritableBuffer, timestamp: int) -> None:
    """Overwrite the timestamp (modulo 2**32) of the packet in ``packet``."""
    _U32.pack_into(packet, 4, timestamp & _TS_MASK)


def set_ssrc(packet: WritableBuffer, ssrc: int) -> None:
    """Overwrite the SSRC (modulo 2**32) of the packet in ``packet``."""
    _U32.pack_into(packet, 8, ssrc & _TS_MASK)


def set_marker(packet: WritableBuffer, marker: bool) -> None:
    """Set or clear the marker bit, keeping the payload type beside it."""
    packet[1] = (packet[1] & 0x7F) | (0x80 if marker else 0)


def set_payload_type(packet: WritableBuffer, payload_type: int) -> None:
    """Change the payload type (after transcoding PCMU <-> PCMA), keeping the marker bit."""
    if not 0 <= payload_type <= MAX_PAYLOAD_TYPE:
        raise ValueError(f"payload type {payload_type} outside 0-127")
    packet[1] = (packet[1] & 0x80) | payload_type


# Modular arithmetic (RFC 3550 appendix A.1): a difference of less than half the space is
# taken as "ahead", anything else as "behind".


def seq_diff(a: int, b: int) -> int:
    """How far sequence number ``a`` is ahead of ``b``, in -32768..32767 (negative: behind).

    ``seq_diff(0, 65535) == 1``: ``a`` is the packet after ``b`` across the wrap.
    """
    return ((a - b + _SEQ_HALF) & _SEQ_MASK) - _SEQ_HALF


def seq_add(sequence_number: int, delta: int) -> int:
    """``sequence_number + delta`` modulo 2**16."""
    return (sequence_number + delta) & _SEQ_MASK


def ts_diff(a: int, b: int) -> int:
    """How far timestamp ``a`` is ahead of ``b``, in -2**31..2**31-1 (negative: behind)."""
    return ((a - b + _TS_HALF) & _TS_MASK) - _TS_HALF


def ts_add(timestamp: int, delta: int) -> int:
    """``timestamp + delta`` modulo 2**32."""
    return (timestamp + delta) & _TS_MASK
