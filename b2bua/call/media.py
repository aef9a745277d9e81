"""The switch's face in SDP (RFC 4566, RFC 3264): every session description that crosses
the switch is rewritten so that media flows through the relay.

Each leg sees the switch as one endpoint with an origin of its own (``o=``: our session
id, a version bumped whenever what we present changes, RFC 3264 section 8), our address
in ``c=`` and a relay port in the first audio ``m=`` line. Other media streams are
refused (port 0: the relay carries one audio stream), and attributes that would point
around the relay (``rtcp``, ICE candidates, ``rtcp-mux``) are removed. Payload formats,
``rtpmap``/``fmtp``, ``ptime`` and the direction pass through untouched: the two phones
negotiate codecs end to end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from b2bua.sip.sdp import (
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    SessionDescription,
    Timing,
    common_formats,
    hold_direction,
    parse_sdp,
)

#: Attributes removed from what crosses the relay (they name addresses or transports the
#: far side must not use: RFC 3605 rtcp, RFC 8445 ICE, RFC 5761 rtcp-mux).
_DROPPED_ATTRIBUTES: Final = frozenset(
    {
        "rtcp",
        "candidate",
        "ice-ufrag",
        "ice-pwd",
        "ice-options",
        "ice-lite",
        "rtcp-mux",
        "remote-candidates",
        "end-of-candidates",
    }
)


@dataclass(frozen=True, slots=True)
class MediaView:
    """What one side's SDP says about its audio: where it receives RTP (None when the
    stream is refused or the address is the RFC 2543 hold address 0.0.0.0), and its
    direction."""

    address: tuple[str, int] | None
    direction: Direction

    @property
    def is_held(self) -> bool:
        return self.direction in (Direction.SENDONLY, Direction.INACTIVE)


def _first_audio(sd: SessionDescription) -> int | None:
    for index, media in enumerate(sd.media):
        if media.media == "audio" and media.port != 0:
            return index
    return None


#: RFC 3264 section 8.4: the RFC 2543 way to put a stream on hold ("send me nothing")
#: is the address 0.0.0.0; what it means in today's terms, by the direction written.
_HOLD_ADDRESSES: Final = frozenset({"0.0.0.0", "::"})
_HELD: Final = {
    Direction.SENDRECV: Direction.SENDONLY,
    Direction.RECVONLY: Direction.INACTIVE,
    Direction.SENDONLY: Direction.SENDONLY,
    Direction.INACTIVE: Direction.INACTIVE,
}


def _audio_host(sd: SessionDescription, index: int) -> str:
    return (sd.connection_address(sd.media[index]) or "").split("/")[0]


def view_of(sdp: bytes) -> MediaView:
    """Read the first audio stream of ``sdp``. Raises SdpError (a ParseError, status 400)
    on SDP that does not parse. The RFC 2543 hold address reads as a direction that does
    not receive (sendonly or inactive), with no address."""
    return _view(parse_sdp(sdp))


def _view(sd: SessionDescription) -> MediaView:
    index = _first_audio(sd)
    if index is None:
        return MediaView(None, Direction.INACTIVE)
    media = sd.media[index]
    host = _audio_host(sd, index)
    direction = sd.media_direction(media)
    if not host or host in _HOLD_ADDRESSES:
        return MediaView(None, _HELD[direction])
    return MediaView((host, media.port), direction)


@dataclass(slots=True)
class SdpFace:
    """The switch as one leg sees it: ``host`` and the relay ``port`` that leg sends to."""

    host: str
    port: int
    session_id: str
    version: int = 1
    _last: bytes | None = None

    def present(self, sdp: bytes) -> bytes:
        """``sdp`` (from the other leg) as this leg must see it. Raises SdpError."""
        return self._present(parse_sdp(sdp))

    def cross(self, sdp: bytes) -> tuple[MediaView, bytes]:
        """What ``sdp`` says of its sender's audio, and ``sdp`` as this leg must see it:
        one parse for both (every SDP crossing the switch needs the two)."""
        sd = parse_sdp(sdp)
        return _view(sd), self._present(sd)

    def _present(self, sd: SessionDescription) -> bytes:
        """Rewrite ``sd`` in place and render it."""
        index = _first_audio(sd)
        if index is not None and _audio_host(sd, index) in _HOLD_ADDRESSES:
            # Say the RFC 2543 hold in today's words: the relay address stays.
            media = sd.media[index]
            media.set_direction(_HELD[sd.media_direction(media)])
        sd.set_address(self.host, [self.port if i == index else 0 for i in range(len(sd.media))])
        sd.attributes = [a for a in sd.attributes if a.name not in _DROPPED_ATTRIBUTES]
        for media in sd.media:
            media.attributes = [a for a in media.attributes if a.name not in _DROPPED_ATTRIBUTES]
        body = self._render(sd)
        if self._last is not None and body != self._last:
            self.version += 1
            body = self._render(sd)
        self._last = body
        return body

    def _render(self, sd: SessionDescription) -> bytes:
        addrtype = "IP6" if ":" in self.host else "IP4"
        sd.origin = Origin("b2bua", self.session_id, self.version, "IN", addrtype, self.host)
        return sd.to_bytes()


#: What the switch speaks when it answers a call itself (voicemail): G.711, 20 ms frames,
#: and RFC 4733 events for the keys.
VOICE_FORMATS: Final = ("PCMU/8000", "PCMA/8000")
EVENT_FORMAT: Final = "telephone-event/8000"


@dataclass(frozen=True, slots=True)
class OwnAnswer:
    """The switch's answer when it is the endpoint: ``sdp``, the voice ``payload_type``
    chosen, the telephone-event payload type (None when not offered) and what the caller
    said of its audio (``view``)."""

    sdp: bytes
    payload_type: int
    event_payload_type: int | None
    view: MediaView


def _g711_stream(sd: SessionDescription) -> tuple[int, list[str], list[str]] | None:
    """(index of the first audio stream, its G.711 formats, its telephone-event formats),
    each in the SDP's order; None when that stream has no G.711."""
    index = _first_audio(sd)
    if index is None:
        return None
    media = sd.media[index]
    voice = common_formats(media, VOICE_FORMATS)
    if not voice:
        return None
    return index, voice, common_formats(media, (EVENT_FORMAT,))


def g711_of(sdp: bytes) -> tuple[int, int | None] | None:
    """(voice payload type, telephone-event payload type or None) of ``sdp``'s first audio
    stream when it speaks G.711, for the switch to talk to that side itself (confirm-call);
    None otherwise. Raises SdpError for SDP that does not parse."""
    stream = _g711_stream(parse_sdp(sdp))
    if stream is None:
        return None
    _, voice, events = stream
    return int(voice[0]), int(events[0]) if events else None


def answer_as_endpoint(offer: bytes, host: str, port: int, session_id: str) -> OwnAnswer | None:
    """Answer ``offer`` as an endpoint at ``host``:``port`` (RFC 3264 section 6.1): the
    first audio stream takes the first of PCMU and PCMA in the caller's order of
    preference, plus telephone-event when offered; every other stream is refused (port
    0). None when the offer has no G.711 audio (the caller then gets 488). Raises
    SdpError for an offer that does not parse."""
    sd = parse_sdp(offer)
    stream = _g711_stream(sd)
    if stream is None:
        return None
    index, voice, events = stream
    offered = sd.media[index]
    chosen = [voice[0], *events[:1]]
    rtpmaps, fmtp = offered.rtpmaps, offered.fmtp
    attributes: list[Attribute] = []
    for fmt in chosen:
        rtpmap = rtpmaps[int(fmt)]
        attributes.append(Attribute("rtpmap", f"{fmt} {rtpmap.encoding_name}/{rtpmap.clock_rate}"))
    if events:
        attributes.append(Attribute("fmtp", f"{events[0]} {fmtp.get(int(events[0]), '0-16')}"))
    attributes.append(Attribute("ptime", "20"))
    attributes.append(Attribute(hold_direction(sd.media_direction(offered)).value))
    addrtype = "IP6" if ":" in host else "IP4"
    answer = SessionDescription(
        origin=Origin("b2bua", session_id, 1, "IN", addrtype, host),
        session_name="b2bua",
        timings=[Timing(0, 0)],
        connection=Connection("IN", addrtype, host),
        media=[
            MediaDescription(media.media, port, media.proto, chosen, attributes=attributes)
            if i == index
            else MediaDescription(media.media, 0, media.proto, list(media.formats))
            for i, media in enumerate(sd.media)
        ],
    )
    return OwnAnswer(
        answer.to_bytes(),
        int(voice[0]),
        int(events[0]) if events else None,
        _view(sd),
    )
