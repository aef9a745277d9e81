"""SDP: parse and format session descriptions (RFC 4566), plus RFC 3264 offer/answer helpers.

Lines v o s c b t r a m are typed; every other line (i u e p z k, unknown letters) is kept
verbatim as a :class:`Line` in the ``other`` list of its section, in the order it came.
:meth:`SessionDescription.to_bytes` writes the canonical order of RFC 4566 section 5 (session:
v o s i u e p c b t r z k a, then unknown letters; media: m i c b k a, then unknown letters), so
``parse_sdp(x).to_bytes() == x`` for any well-formed SDP with CRLF line ends, that order and
numbers without leading zeros; other input is normalised. Mutators work in place: call
:meth:`SessionDescription.copy` first to keep the original (say, the offer of the other leg).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from b2bua.sip.errors import LocalProtocolError, ParseError


class SdpError(ParseError):
    """Bytes that are not a well-formed session description; ``reason`` names the fault."""


class Direction(StrEnum):
    """Media direction attributes (RFC 4566 section 6, RFC 3264 section 5.1)."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"


@dataclass(slots=True)
class Origin:
    """``o=`` (RFC 4566 5.2). ``sess_id`` stays text: it identifies, it is never computed on."""

    username: str
    sess_id: str
    sess_version: int
    nettype: str
    addrtype: str
    unicast_address: str


@dataclass(slots=True)
class Connection:
    """``c=<nettype> <addrtype> <connection-address>`` (5.7); ``address`` keeps any ``/ttl``."""

    nettype: str
    addrtype: str
    address: str


@dataclass(slots=True)
class Bandwidth:
    """``b=<bwtype>:<bandwidth>`` (RFC 4566 5.8)."""

    bwtype: str
    bandwidth: int


@dataclass(slots=True)
class Timing:
    """``t=<start-time> <stop-time>`` (5.9) and the raw values of the ``r=`` lines under it."""

    start: int
    stop: int
    repeats: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Attribute:
    """``a=<name>`` (a property: ``value`` is None) or ``a=<name>:<value>`` (RFC 4566 5.13)."""

    name: str
    value: str | None = None


@dataclass(slots=True)
class Line:
    """A line the module does not model, kept verbatim: ``<type>=<value>``."""

    type: str
    value: str


@dataclass(slots=True, frozen=True)
class RtpMap:
    """``a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]`` (RFC 4566 6)."""

    payload_type: int
    encoding_name: str
    clock_rate: int
    channels: int | None = None


_DIRECTIONS = frozenset(d.value for d in Direction)
# Where unmodeled lines are written (RFC 4566 section 5 order); other letters go last.
_SESSION_AFTER_S = frozenset("iuep")
_SESSION_AFTER_T = frozenset("zk")
_MEDIA_AFTER_M = frozenset("i")
_MEDIA_AFTER_B = frozenset("k")
_MAX_DIGITS = 20  # fits 64-bit NTP times and versions; bounds int() on hostile input


@dataclass(slots=True)
class MediaDescription:
    """``m=<media> <port>[/<port_count>] <proto> <fmt> ...`` and its lines (RFC 4566 5.14).

    The views read ``attributes`` on each access and skip the attributes they cannot read.
    """

    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    connections: list[Connection] = field(default_factory=list)
    bandwidths: list[Bandwidth] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    other: list[Line] = field(default_factory=list)

    @property
    def rtpmaps(self) -> dict[int, RtpMap]:
        """Payload type -> RtpMap for the formats of the m= line, in order: from a=rtpmap, else
        (RTP profiles) :data:`STATIC_PAYLOAD_TYPES`; formats with neither are absent."""
        explicit: dict[int, RtpMap] = {}
        for rtpmap in map(_parse_rtpmap, self._values("rtpmap")):
            if rtpmap is not None:
                explicit.setdefault(rtpmap.payload_type, rtpmap)
        static = STATIC_PAYLOAD_TYPES if "RTP/" in self.proto.upper() else {}
        found: dict[int, RtpMap] = {}
        for pt in map(_payload_type, self.formats):
            rtpmap = None if pt is None else explicit.get(pt) or static.get(pt)
            if pt is not None and rtpmap is not None:
                found[pt] = rtpmap
        return found

    @property
    def fmtp(self) -> dict[int, str]:
        """Payload type -> format parameters of ``a=fmtp:<pt> <params>`` (first one wins)."""
        params: dict[int, str] = {}
        for value in self._values("fmtp"):
            pt_text, _, rest = value.partition(" ")
            pt = _payload_type(pt_text)
            if pt is not None:
                params.setdefault(pt, rest.strip())
        return params

    @property
    def ptime(self) -> int | None:
        """Milliseconds of the first ``a=ptime`` (RFC 4566 6), None when absent or unreadable."""
        return next((_small_int(v) for v in self._values("ptime")), None)

    @property
    def direction(self) -> Direction | None:
        """The media-level direction attribute, or None (see SessionDescription.media_direction)."""
        return _direction_of(self.attributes)

    @property
    def connection(self) -> Connection | None:
        """The first media-level c= line, or None."""
        return self.connections[0] if self.connections else None

    def set_direction(self, direction: Direction | None) -> None:
        """Replace the direction attributes by ``direction`` (None: remove them), in place; the
        new one takes the place of the first old one, else goes last."""
        _replace_direction(self.attributes, direction)

    def _values(self, name: str) -> Iterator[str]:
        return (a.value for a in self.attributes if a.name == name and a.value is not None)


@dataclass(slots=True)
class SessionDescription:
    """A whole session description (RFC 4566 section 5); ``v=`` is always 0 and not stored."""

    origin: Origin
    session_name: str
    timings: list[Timing]
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    other: list[Line] = field(default_factory=list)

    @property
    def direction(self) -> Direction | None:
        """The session-level direction attribute, or None."""
        return _direction_of(self.attributes)

    def media_direction(self, media: MediaDescription) -> Direction:
        """Direction of ``media``: its own attribute, else the session's, else sendrecv (RFC 4566
        section 6 makes sendrecv the default)."""
        return media.direction or self.direction or Direction.SENDRECV

    def connection_address(self, media: MediaDescription) -> str | None:
        """Address (as written, with any ``/ttl``) of ``media``'s first c= line, else of the
        session one (RFC 4566 5.7); None only for a description built without either."""
        conn = media.connection or self.connection
        return conn.address if conn is not None else None

    def is_hold(self, media: MediaDescription) -> bool:
        """True when the writer puts ``media`` on hold: sendonly or inactive, or the RFC 2543
        address 0.0.0.0 that RFC 3264 section 8.4 still asks to understand."""
        held = self.media_direction(media) in (Direction.SENDONLY, Direction.INACTIVE)
        return held or (self.connection_address(media) or "").split("/")[0] == "0.0.0.0"

    def copy(self) -> SessionDescription:
        """A deep copy, to mutate without touching this description."""
        return copy.deepcopy(self)

    def set_direction(self, direction: Direction) -> None:
        """Set ``direction`` on every media description and drop the session-level one (in
        place), so that only the media-level attributes are in force (RFC 4566 section 6)."""
        _replace_direction(self.attributes, None)
        for media in self.media:
            media.set_direction(direction)

    def set_address(self, address: str, ports: Sequence[int]) -> None:
        """Point the description at ``address`` and media ``i`` at ``ports[i]``, in place.

        Sets the session c= line and the origin's address (IP6 if ``address`` has a colon, else
        IP4) and drops media c= lines. Port 0 stays 0 (a disabled stream stays disabled, RFC 3264
        section 8.2). Attributes holding addresses (rtcp, candidate) are left alone. Raises
        LocalProtocolError unless ``ports`` has one port per media description.
        """
        if len(ports) != len(self.media):
            raise LocalProtocolError(f"{len(ports)} ports given for {len(self.media)} m= lines")
        addrtype = "IP6" if ":" in address else "IP4"
        self.connection = Connection("IN", addrtype, address)
        self.origin.addrtype, self.origin.unicast_address = addrtype, address
        for media, port in zip(self.media, ports, strict=True):
            media.connections.clear()
            if media.port != 0:
                media.port = port

    def bump_version(self) -> None:
        """Add one to the origin's sess-version (in place): each new offer or answer within the
        session must (RFC 3264 section 8)."""
        self.origin.sess_version += 1

    def to_bytes(self) -> bytes:
        """UTF-8, CRLF after every line; LocalProtocolError if a field holds CR, LF or NUL."""
        lines = list(_format_session(self))
        if any("\r" in line or "\n" in line or "\0" in line for line in lines):
            raise LocalProtocolError("SDP field contains CR, LF or NUL")
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Parse a session description with CRLF or bare LF line ends (blank lines at the end ok).

    Requires v=0 first, o=, s= and a t= in the session part, and a c= line for each media
    description at its level or the session's (RFC 4566 5.7). Raises only :class:`SdpError`.
    """
    lines = _split_lines(data)
    if lines[0][0] != "v":
        raise SdpError("SDP does not begin with a v= line")
    if lines[0][1] != "0":
        raise SdpError("SDP version is not 0")
    sd = SessionDescription(Origin("", "", 0, "", "", ""), "", [])
    seen = {"v"}
    media: MediaDescription | None = None
    for kind, value in lines[1:]:
        if media is not None and kind in "vostr":  # session part only (RFC 4566 section 5)
            raise SdpError(f"SDP {kind}= line is not allowed in a media description")
        if media is None and kind in "vosc" and kind in seen:
            raise SdpError(f"SDP session has more than one {kind}= line")
        seen.add(kind)
        section = sd if media is None else media
        match kind:
            case "m":
                media = _parse_media(value)
                sd.media.append(media)
            case "o":
                user, sess_id, version, net, addrtype, address = _fields(value, "o=", 6)
                number = _number(version, "o=", "sess-version")
                sd.origin = Origin(user, sess_id, number, net, addrtype, address)
            case "s":
                sd.session_name = value
            case "c" if media is not None:
                media.connections.append(Connection(*_fields(value, "c=", 3)))
            case "c":
                sd.connection = Connection(*_fields(value, "c=", 3))
            case "t":
                start, stop = (_number(f, "t=", "time") for f in _fields(value, "t=", 2))
                sd.timings.append(Timing(start, stop))
            case "r" if sd.timings:
                sd.timings[-1].repeats.append(value)
            case "r":
                raise SdpError("SDP r= line comes before any t= line")
            case "b":
                section.bandwidths.append(_parse_bandwidth(value))
            case "a":
                name, sep, rest = value.partition(":")
                if not name:
                    raise SdpError("SDP a= line has an empty attribute name")
                section.attributes.append(Attribute(name, rest if sep else None))
            case _:
                section.other.append(Line(kind, value))
    for kind in "ost":
        if kind not in seen:
            raise SdpError(f"SDP has no {kind}= line")
    if sd.connection is None and any(not m.connections for m in sd.media):
        raise SdpError("SDP media description has no c= line and the session has none")
    return sd


def hold_direction(offered: Direction) -> Direction:
    """The direction to answer an offered one with (RFC 3264 section 6.1): sendonly -> recvonly,
    recvonly -> sendonly, inactive -> inactive, sendrecv -> sendrecv."""
    swap = {Direction.SENDONLY: Direction.RECVONLY, Direction.RECVONLY: Direction.SENDONLY}
    return swap.get(offered, offered)


def common_formats(offer_media: MediaDescription, answer_supported: Sequence[str]) -> list[str]:
    """The formats of ``offer_media`` the answerer supports, in offer order (RFC 3264 6.1).

    Each supported entry is ``name``, ``name/rate`` or ``name/rate/channels`` (for example
    ``"PCMU/8000"``, ``"telephone-event/8000"``). It matches an offered format whose rtpmap
    (explicit or static) has that encoding name, case-insensitively, and the rate and channel
    count given (an rtpmap without channels means 1). A format without any rtpmap (``t38``)
    matches an entry equal to it. Raises LocalProtocolError for an unreadable entry.
    """
    wanted = [_codec_key(entry) for entry in answer_supported]
    rtpmaps = offer_media.rtpmaps
    chosen: list[str] = []
    for fmt in offer_media.formats:
        pt = _payload_type(fmt)
        m = rtpmaps.get(pt) if pt is not None else None
        name, rate, channels = (
            (fmt, None, None) if m is None else (m.encoding_name, m.clock_rate, m.channels or 1)
        )
        if any(
            w_name == name.lower() and w_rate in (None, rate) and w_channels in (None, channels)
            for w_name, w_rate, w_channels in wanted
        ):
            chosen.append(fmt)
    return chosen


def _codec_key(entry: str) -> tuple[str, int | None, int | None]:
    parts = entry.split("/")
    numbers = [_small_int(p) for p in parts[1:]]
    if not parts[0] or len(parts) > 3 or None in numbers:
        raise LocalProtocolError(f"supported format {entry!r} is not name[/rate[/channels]]")
    rate, channels = (*numbers, None, None)[:2]
    return parts[0].lower(), rate, channels


# --- parsing -------------------------------------------------------------------------------


def _split_lines(data: bytes | str) -> list[tuple[str, str]]:
    """Decode and cut into (type, value) pairs, checking the line syntax of RFC 4566 section 5."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        text.encode("utf-8")  # a str may hold lone surrogates, which cannot be written back
    except UnicodeError:
        raise SdpError("SDP is not valid UTF-8") from None
    raw = text.split("\n")
    while raw and raw[-1] in ("", "\r"):
        raw.pop()
    if not raw:
        raise SdpError("SDP is empty")
    lines: list[tuple[str, str]] = []
    for line in raw:
        body = line.removesuffix("\r")
        if not body:
            raise SdpError("SDP has an empty line")
        if "\r" in body or "\0" in body:
            raise SdpError("SDP line contains a bare CR or a NUL")
        kind, sep, value = body.partition("=")
        if not sep:
            raise SdpError("SDP line has no '='")
        if len(kind) != 1:
            raise SdpError("SDP line type is not a single character")
        if not (kind.isascii() and kind.isalpha()):
            raise SdpError("SDP line type is not a letter")
        lines.append((kind, value))
    return lines


def _fields(value: str, line: str, count: int) -> list[str]:
    fields = value.split()
    if len(fields) != count:
        raise SdpError(f"SDP {line} line has {len(fields)} fields instead of {count}")
    return fields


def _parse_media(value: str) -> MediaDescription:
    fields = value.split()
    if len(fields) < 3:
        raise SdpError("SDP m= line has fewer than 3 fields")
    port_text, slash, count_text = fields[1].partition("/")
    port = _number(port_text, "m=", "port")
    if port > 65535:
        raise SdpError("SDP m= line has a port out of range")
    count = _number(count_text, "m=", "port count") if slash else None
    return MediaDescription(fields[0], port, fields[2], fields[3:], count)


def _parse_bandwidth(value: str) -> Bandwidth:
    bwtype, sep, amount = value.partition(":")
    if not sep or not bwtype:
        raise SdpError("SDP b= line is not <bwtype>:<bandwidth>")
    return Bandwidth(bwtype, _number(amount, "b=", "bandwidth"))


def _number(text: str, line: str, what: str) -> int:
    # isdigit() alone accepts non-ASCII digits that int() reads or rejects.
    if not (text.isascii() and text.isdigit()):
        raise SdpError(f"SDP {line} line has a non-numeric {what}")
    if len(text) > _MAX_DIGITS:
        raise SdpError(f"SDP {line} line has a {what} that is too long")
    return int(text)


def _small_int(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else None


def _payload_type(fmt: str) -> int | None:
    pt = _small_int(fmt)
    return pt if pt is not None and pt <= 127 else None  # 7 bits (RFC 3550 section 5.1)


def _parse_rtpmap(value: str) -> RtpMap | None:
    pt_text, _, encoding = value.partition(" ")
    pt = _payload_type(pt_text)
    parts = encoding.strip().split("/")
    numbers = [_small_int(p) for p in parts[1:]]
    if pt is None or not parts[0] or len(parts) not in (2, 3) or None in numbers:
        return None
    rate, channels = (*numbers, None)[:2]
    return None if rate is None else RtpMap(pt, parts[0], rate, channels)


# RFC 3551 section 6, tables 4 and 5: payload types with a fixed meaning in RTP/AVP, used when
# an m= line lists one without an a=rtpmap (RFC 4566 section 6 allows that).
_STATIC = (
    "0 PCMU/8000,3 GSM/8000,4 G723/8000,5 DVI4/8000,6 DVI4/16000,7 LPC/8000,8 PCMA/8000,"
    "9 G722/8000,10 L16/44100/2,11 L16/44100,12 QCELP/8000,13 CN/8000,14 MPA/90000,"
    "15 G728/8000,16 DVI4/11025,17 DVI4/22050,18 G729/8000,25 CelB/90000,26 JPEG/90000,"
    "28 nv/90000,31 H261/90000,32 MPV/90000,33 MP2T/90000,34 H263/90000"
)
STATIC_PAYLOAD_TYPES: dict[int, RtpMap] = {
    m.payload_type: m for m in map(_parse_rtpmap, _STATIC.split(",")) if m is not None
}


def _direction_of(attributes: list[Attribute]) -> Direction | None:
    return next((Direction(a.name) for a in attributes if _is_direction(a)), None)


def _is_direction(attr: Attribute) -> bool:
    return attr.value is None and attr.name in _DIRECTIONS


def _replace_direction(attributes: list[Attribute], direction: Direction | None) -> None:
    new = [] if direction is None else [Attribute(direction.value)]
    first = next((i for i, a in enumerate(attributes) if _is_direction(a)), len(attributes))
    attributes[:] = (
        attributes[:first] + new + [a for a in attributes[first:] if not _is_direction(a)]
    )


# --- formatting ----------------------------------------------------------------------------


def _format_session(sd: SessionDescription) -> Iterator[str]:
    o = sd.origin
    yield "v=0"
    origin = (o.username, o.sess_id, str(o.sess_version), o.nettype, o.addrtype, o.unicast_address)
    yield "o=" + " ".join(origin)
    yield f"s={sd.session_name}"
    yield from _raw(sd.other, _SESSION_AFTER_S)
    yield from _format_connections([sd.connection] if sd.connection is not None else [])
    yield from (f"b={b.bwtype}:{b.bandwidth}" for b in sd.bandwidths)
    for timing in sd.timings:
        yield f"t={timing.start} {timing.stop}"
        yield from (f"r={r}" for r in timing.repeats)
    yield from _raw(sd.other, _SESSION_AFTER_T)
    yield from _format_attributes(sd.attributes)
    yield from _raw(sd.other, _SESSION_AFTER_S | _SESSION_AFTER_T, unknown=True)
    for media in sd.media:
        count = "" if media.port_count is None else f"/{media.port_count}"
        yield " ".join([f"m={media.media} {media.port}{count} {media.proto}", *media.formats])
        yield from _raw(media.other, _MEDIA_AFTER_M)
        yield from _format_connections(media.connections)
        yield from (f"b={b.bwtype}:{b.bandwidth}" for b in media.bandwidths)
        yield from _raw(media.other, _MEDIA_AFTER_B)
        yield from _format_attributes(media.attributes)
        yield from _raw(media.other, _MEDIA_AFTER_M | _MEDIA_AFTER_B, unknown=True)


def _raw(lines: list[Line], kinds: frozenset[str], *, unknown: bool = False) -> Iterator[str]:
    """The lines whose type is in ``kinds`` (with ``unknown``: is not), in order."""
    return (f"{line.type}={line.value}" for line in lines if (line.type in kinds) != unknown)


def _format_connections(connections: list[Connection]) -> Iterator[str]:
    return (f"c={c.nettype} {c.addrtype} {c.address}" for c in connections)


def _format_attributes(attributes: list[Attribute]) -> Iterator[str]:
    return (f"a={a.name}" if a.value is None else f"a={a.name}:{a.value}" for a in attributes)


def refusing_answer(offer: bytes | str) -> bytes:
    """An answer that refuses every stream of ``offer`` (RFC 3264 section 6: one m= line
    per offered one, port 0, its formats kept). For an ACK that must answer an offer made
    in a 2xx the UA does not want (RFC 3261 section 13.2.2.4) just before its BYE. Raises
    SdpError when the offer does not parse."""
    sd = parse_sdp(offer)
    answer = SessionDescription(
        origin=Origin("-", sd.origin.sess_id, sd.origin.sess_version, "IN", "IP4", "0.0.0.0"),
        session_name="-",
        timings=[Timing(0, 0)],
        connection=Connection("IN", "IP4", "0.0.0.0"),
        media=[
            MediaDescription(media.media, 0, media.proto, list(media.formats)) for media in sd.media
        ],
    )
    return answer.to_bytes()
