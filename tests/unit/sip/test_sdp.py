"""Tests of b2bua.sip.sdp: RFC 4566 parse/format and the RFC 3264 helpers."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from b2bua.sip.errors import LocalProtocolError, ParseError
from b2bua.sip.sdp import (
    STATIC_PAYLOAD_TYPES,
    Attribute,
    Bandwidth,
    Connection,
    Direction,
    Line,
    MediaDescription,
    Origin,
    RtpMap,
    SdpError,
    SessionDescription,
    Timing,
    common_formats,
    hold_direction,
    parse_sdp,
)


def crlf(*lines: str) -> bytes:
    """SDP bytes from lines, CRLF after each."""
    return "".join(f"{line}\r\n" for line in lines).encode()


# Offers in the style of real phones (written for these tests).
YEALINK_OFFER = crlf(
    "v=0",
    "o=- 20012 20012 IN IP4 192.168.1.50",
    "s=SDP data",
    "c=IN IP4 192.168.1.50",
    "t=0 0",
    "m=audio 11780 RTP/AVP 0 8 9 18 101",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:18 G729/8000",
    "a=fmtp:18 annexb=no",
    "a=ptime:20",
    "a=sendrecv",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-16",
)

POLYCOM_OFFER = crlf(
    "v=0",
    "o=- 1700000000 1700000000 IN IP4 10.1.2.3",
    "s=Polycom IP Phone",
    "c=IN IP4 10.1.2.3",
    "b=AS:512",
    "t=0 0",
    "a=sendrecv",
    "m=audio 2222 RTP/AVP 9 0 8 101",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-16",
    "a=ptime:30",
    "m=video 0 RTP/AVP 109 34",
    "b=TIAS:448000",
    "a=rtpmap:109 H264/90000",
    "a=fmtp:109 profile-level-id=42801f",
    "a=rtpmap:34 H263/90000",
)

BARESIP_OFFER = crlf(
    "v=0",
    "o=- 1414113117 3419548591 IN IP4 192.0.2.10",
    "s=-",
    "c=IN IP4 192.0.2.10",
    "t=0 0",
    "a=tool:baresip 3.10.1",
    "m=audio 10418 RTP/AVP 96 9 0 8 101",
    "b=AS:64",
    "a=rtpmap:96 opus/48000/2",
    "a=fmtp:96 stereo=1;sprop-stereo=1",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-15",
    "a=rtcp-mux",
    "a=ptime:20",
    "a=sendrecv",
    "m=video 0 RTP/AVP 100",
    "a=rtpmap:100 VP8/90000",
)

# IPv6, c= at media level only, session-level extension attribute.
LINPHONE_OFFER = crlf(
    "v=0",
    "o=alice 3345 2112 IN IP6 2001:db8::10",
    "s=Talk",
    "t=0 0",
    "a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics",
    "m=audio 7078 RTP/AVP 96 97 0 8 101",
    "c=IN IP6 2001:db8::10",
    "a=rtpmap:96 opus/48000/2",
    "a=fmtp:96 useinbandfec=1",
    "a=rtpmap:97 speex/16000",
    "a=rtpmap:101 telephone-event/48000",
    "a=rtcp-fb:* trr-int 1000",
)

# Every line type of RFC 4566 section 5, in canonical order, plus unknown letters.
ALL_LINES = crlf(
    "v=0",
    "o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5",
    "s=SDP Seminar",
    "i=A Seminar on the session description protocol",
    "u=http://www.example.com/seminars/sdp.pdf",
    "e=j.doe@example.com (Jane Doe)",
    "p=+1 617 555-6011",
    "c=IN IP4 224.2.17.12/127",
    "b=CT:1000",
    "t=2873397496 2873404696",
    "r=7d 1h 0 25h",
    "t=0 0",
    "z=2882844526 -1h 2898848070 0",
    "k=prompt",
    "a=recvonly",
    "y=unknown session line",
    "m=audio 49170/2 RTP/AVP 0",
    "i=audio stream",
    "c=IN IP4 224.2.17.12/127/2",
    "b=AS:64",
    "k=clear:secret",
    "a=ptime:20",
    "X=unknown media line",
    "m=application 32416 udp wb",
    "a=orient:portrait",
)

HOLD_SENDONLY = crlf(
    "v=0",
    "o=- 20012 20013 IN IP4 192.168.1.50",
    "s=SDP data",
    "c=IN IP4 192.168.1.50",
    "t=0 0",
    "m=audio 11780 RTP/AVP 0 101",
    "a=rtpmap:101 telephone-event/8000",
    "a=sendonly",
)

HOLD_INACTIVE_SESSION = crlf(
    "v=0",
    "o=- 20012 20013 IN IP4 192.168.1.50",
    "s=-",
    "c=IN IP4 192.168.1.50",
    "t=0 0",
    "a=inactive",
    "m=audio 11780 RTP/AVP 8",
)

HOLD_RFC2543 = crlf(
    "v=0",
    "o=- 20012 20013 IN IP4 192.168.1.50",
    "s=-",
    "c=IN IP4 0.0.0.0",
    "t=0 0",
    "m=audio 11780 RTP/AVP 0",
)

REALISTIC = [
    YEALINK_OFFER,
    POLYCOM_OFFER,
    BARESIP_OFFER,
    LINPHONE_OFFER,
    ALL_LINES,
    HOLD_SENDONLY,
    HOLD_INACTIVE_SESSION,
    HOLD_RFC2543,
]


# --- parsing and round trip ----------------------------------------------------------------


@pytest.mark.parametrize("data", REALISTIC)
def test_round_trip_is_byte_exact(data: bytes) -> None:
    assert parse_sdp(data).to_bytes() == data


@pytest.mark.parametrize("data", REALISTIC)
def test_bare_lf_and_str_input_parse_the_same(data: bytes) -> None:
    expected = parse_sdp(data)
    assert parse_sdp(data.replace(b"\r\n", b"\n")) == expected
    assert parse_sdp(data.decode()) == expected
    assert parse_sdp(data.replace(b"\r\n", b"\n")).to_bytes() == data


def test_missing_final_line_end_and_trailing_blank_lines_are_accepted() -> None:
    assert parse_sdp(YEALINK_OFFER.rstrip(b"\r\n")).to_bytes() == YEALINK_OFFER
    assert parse_sdp(YEALINK_OFFER + b"\r\n\r\n").to_bytes() == YEALINK_OFFER


def test_yealink_offer_fields() -> None:
    sd = parse_sdp(YEALINK_OFFER)
    assert sd.origin == Origin("-", "20012", 20012, "IN", "IP4", "192.168.1.50")
    assert sd.session_name == "SDP data"
    assert sd.connection == Connection("IN", "IP4", "192.168.1.50")
    assert sd.timings == [Timing(0, 0)]
    [audio] = sd.media
    assert (audio.media, audio.port, audio.port_count, audio.proto) == (
        "audio",
        11780,
        None,
        "RTP/AVP",
    )
    assert audio.formats == ["0", "8", "9", "18", "101"]
    assert audio.attributes[0] == Attribute("rtpmap", "0 PCMU/8000")
    assert Attribute("sendrecv") in audio.attributes


def test_every_line_type_is_kept_in_place() -> None:
    sd = parse_sdp(ALL_LINES)
    assert [line.type for line in sd.other] == ["i", "u", "e", "p", "z", "k", "y"]
    assert sd.other[3] == Line("p", "+1 617 555-6011")
    assert sd.timings == [Timing(2873397496, 2873404696, ["7d 1h 0 25h"]), Timing(0, 0)]
    assert sd.bandwidths == [Bandwidth("CT", 1000)]
    assert sd.connection == Connection("IN", "IP4", "224.2.17.12/127")
    audio, app = sd.media
    assert (audio.port, audio.port_count) == (49170, 2)
    assert audio.connections == [Connection("IN", "IP4", "224.2.17.12/127/2")]
    assert audio.other == [
        Line("i", "audio stream"),
        Line("k", "clear:secret"),
        Line("X", "unknown media line"),
    ]
    assert app.formats == ["wb"]
    assert app.rtpmaps == {}


def test_non_canonical_order_is_normalised() -> None:
    data = crlf("v=0", "o=- 1 1 IN IP4 h", "s=-", "t=0 0", "y=x", "c=IN IP4 h", "i=late", "a=b")
    assert parse_sdp(data).to_bytes() == crlf(
        "v=0", "o=- 1 1 IN IP4 h", "s=-", "i=late", "c=IN IP4 h", "t=0 0", "a=b", "y=x"
    )


def test_attribute_value_may_be_empty_or_hold_colons() -> None:
    sd = parse_sdp(crlf("v=0", "o=- 1 1 IN IP4 h", "s=", "c=IN IP4 h", "t=0 0", "a=x:", "a=y:a:b"))
    assert sd.session_name == ""
    assert sd.attributes == [Attribute("x", ""), Attribute("y", "a:b")]


# --- typed views ---------------------------------------------------------------------------


def test_rtpmaps_follow_the_m_line() -> None:
    audio = parse_sdp(BARESIP_OFFER).media[0]
    assert list(audio.rtpmaps) == [96, 9, 0, 8, 101]
    assert audio.rtpmaps[96] == RtpMap(96, "opus", 48000, 2)
    assert audio.rtpmaps[101] == RtpMap(101, "telephone-event", 8000, None)


def test_static_payload_types_without_rtpmap() -> None:
    sd = parse_sdp(
        crlf(
            "v=0",
            "o=- 1 1 IN IP4 h",
            "s=-",
            "c=IN IP4 h",
            "t=0 0",
            "m=audio 5004 RTP/AVP 0 8 9 18 3 4 13",
        )
    )
    rtpmaps = sd.media[0].rtpmaps
    assert {pt: (m.encoding_name, m.clock_rate) for pt, m in rtpmaps.items()} == {
        0: ("PCMU", 8000),
        8: ("PCMA", 8000),
        9: ("G722", 8000),
        18: ("G729", 8000),
        3: ("GSM", 8000),
        4: ("G723", 8000),
        13: ("CN", 8000),
    }
    assert STATIC_PAYLOAD_TYPES[10] == RtpMap(10, "L16", 44100, 2)
    assert STATIC_PAYLOAD_TYPES[34] == RtpMap(34, "H263", 90000)


def test_explicit_rtpmap_overrides_static_and_unknown_dynamic_is_absent() -> None:
    media = MediaDescription("audio", 1, "RTP/AVP", ["0", "96", "abc", "300"])
    media.attributes = [Attribute("rtpmap", "0 FOO/16000"), Attribute("rtpmap", "bad")]
    assert media.rtpmaps == {0: RtpMap(0, "FOO", 16000)}


def test_static_payload_types_apply_to_rtp_profiles_only() -> None:
    assert MediaDescription("audio", 1, "UDP/TLS/RTP/SAVPF", ["0"]).rtpmaps == {
        0: STATIC_PAYLOAD_TYPES[0]
    }
    assert MediaDescription("image", 1, "udptl", ["0"]).rtpmaps == {}


def test_fmtp_and_ptime() -> None:
    audio, video = parse_sdp(POLYCOM_OFFER).media
    assert audio.fmtp == {101: "0-16"}
    assert audio.ptime == 30
    assert video.fmtp == {109: "profile-level-id=42801f"}
    assert video.ptime is None
    assert (
        MediaDescription("audio", 1, "RTP/AVP", [], attributes=[Attribute("ptime", "2x")]).ptime
        is None
    )


def test_direction_levels() -> None:
    polycom = parse_sdp(POLYCOM_OFFER)
    assert polycom.direction is Direction.SENDRECV
    assert polycom.media[0].direction is None
    assert polycom.media_direction(polycom.media[0]) is Direction.SENDRECV
    linphone = parse_sdp(LINPHONE_OFFER)
    assert linphone.media_direction(linphone.media[0]) is Direction.SENDRECV  # the default
    inactive = parse_sdp(HOLD_INACTIVE_SESSION)
    assert inactive.media_direction(inactive.media[0]) is Direction.INACTIVE
    # A media-level attribute overrides the session one (RFC 4566 section 6).
    all_lines = parse_sdp(ALL_LINES)
    assert all_lines.direction is Direction.RECVONLY
    all_lines.media[0].set_direction(Direction.SENDONLY)
    assert all_lines.media_direction(all_lines.media[0]) is Direction.SENDONLY
    assert all_lines.media_direction(all_lines.media[1]) is Direction.RECVONLY


def test_connection_address_prefers_media_level() -> None:
    sd = parse_sdp(ALL_LINES)
    assert sd.connection_address(sd.media[0]) == "224.2.17.12/127/2"
    assert sd.connection_address(sd.media[1]) == "224.2.17.12/127"
    linphone = parse_sdp(LINPHONE_OFFER)
    assert linphone.connection_address(linphone.media[0]) == "2001:db8::10"
    bare = SessionDescription(Origin("-", "1", 1, "IN", "IP4", "h"), "-", [Timing(0, 0)])
    assert bare.connection_address(MediaDescription("audio", 1, "RTP/AVP", ["0"])) is None


def test_video_with_port_zero_is_kept() -> None:
    sd = parse_sdp(POLYCOM_OFFER)
    video = sd.media[1]
    assert (video.media, video.port, video.formats) == ("video", 0, ["109", "34"])
    assert video.rtpmaps[34] == RtpMap(34, "H263", 90000)
    sd.set_address("203.0.113.5", [40000, 40002])
    assert [m.port for m in sd.media] == [40000, 0]
    assert b"m=video 0 RTP/AVP 109 34\r\n" in sd.to_bytes()


@pytest.mark.parametrize(
    ("data", "held"),
    [
        (YEALINK_OFFER, False),
        (HOLD_SENDONLY, True),
        (HOLD_INACTIVE_SESSION, True),
        (HOLD_RFC2543, True),
        (LINPHONE_OFFER, False),
    ],
)
def test_is_hold(data: bytes, held: bool) -> None:
    sd = parse_sdp(data)
    assert sd.is_hold(sd.media[0]) is held


def test_hold_rfc2543_keeps_sendrecv_direction() -> None:
    sd = parse_sdp(HOLD_RFC2543)
    assert sd.media_direction(sd.media[0]) is Direction.SENDRECV
    assert sd.connection_address(sd.media[0]) == "0.0.0.0"


# --- mutators ------------------------------------------------------------------------------


def test_set_direction_replaces_in_place() -> None:
    sd = parse_sdp(YEALINK_OFFER)
    audio = sd.media[0]
    index = audio.attributes.index(Attribute("sendrecv"))
    audio.attributes.append(Attribute("inactive"))  # a second, conflicting one
    audio.set_direction(Direction.SENDONLY)
    names = [a.name for a in audio.attributes]
    assert names.count("sendonly") == 1
    assert "sendrecv" not in names
    assert "inactive" not in names
    assert audio.attributes[index] == Attribute("sendonly")
    audio.set_direction(None)
    assert audio.direction is None


def test_set_direction_appends_when_absent() -> None:
    sd = parse_sdp(LINPHONE_OFFER)
    sd.media[0].set_direction(Direction.RECVONLY)
    assert sd.media[0].attributes[-1] == Attribute("recvonly")
    assert sd.to_bytes().endswith(b"a=rtcp-fb:* trr-int 1000\r\na=recvonly\r\n")


def test_session_set_direction_moves_it_to_every_media() -> None:
    sd = parse_sdp(POLYCOM_OFFER)
    sd.set_direction(Direction.SENDONLY)
    assert sd.direction is None
    assert [m.direction for m in sd.media] == [Direction.SENDONLY, Direction.SENDONLY]
    assert parse_sdp(sd.to_bytes()) == sd


def test_set_address_rewrites_connection_origin_and_ports() -> None:
    original = parse_sdp(ALL_LINES)
    sd = original.copy()
    sd.set_address("198.51.100.7", [30000, 30002])
    assert sd.connection == Connection("IN", "IP4", "198.51.100.7")
    assert (sd.origin.addrtype, sd.origin.unicast_address) == ("IP4", "198.51.100.7")
    assert [m.port for m in sd.media] == [30000, 30002]
    assert all(not m.connections for m in sd.media)
    assert [sd.connection_address(m) for m in sd.media] == ["198.51.100.7"] * 2
    assert sd.media[0].port_count == 2  # untouched
    # The copy is independent of the original.
    assert original.media[0].port == 49170
    assert original.connection == Connection("IN", "IP4", "224.2.17.12/127")


def test_set_address_ipv6() -> None:
    sd = parse_sdp(YEALINK_OFFER)
    sd.set_address("2001:db8::1", [5004])
    assert b"\r\nc=IN IP6 2001:db8::1\r\n" in sd.to_bytes()
    assert b"\r\no=- 20012 20012 IN IP6 2001:db8::1\r\n" in sd.to_bytes()


def test_set_address_needs_one_port_per_media() -> None:
    sd = parse_sdp(POLYCOM_OFFER)
    with pytest.raises(LocalProtocolError):
        sd.set_address("192.0.2.1", [4000])


def test_bump_version() -> None:
    sd = parse_sdp(YEALINK_OFFER)
    sd.bump_version()
    sd.bump_version()
    assert sd.origin.sess_version == 20014
    assert sd.origin.sess_id == "20012"
    assert b"\r\no=- 20012 20014 IN IP4 192.168.1.50\r\n" in sd.to_bytes()


def test_to_bytes_refuses_line_injection() -> None:
    sd = parse_sdp(YEALINK_OFFER)
    sd.session_name = "x\r\na=sendonly"
    with pytest.raises(LocalProtocolError):
        sd.to_bytes()


# --- RFC 3264 helpers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "answer"),
    [
        (Direction.SENDRECV, Direction.SENDRECV),
        (Direction.SENDONLY, Direction.RECVONLY),
        (Direction.RECVONLY, Direction.SENDONLY),
        (Direction.INACTIVE, Direction.INACTIVE),
    ],
)
def test_hold_direction(offered: Direction, answer: Direction) -> None:
    assert hold_direction(offered) is answer


def test_common_formats_keeps_offer_order() -> None:
    audio = parse_sdp(POLYCOM_OFFER).media[0]
    supported = ["PCMA/8000", "telephone-event/8000", "PCMU/8000"]
    assert common_formats(audio, supported) == ["0", "8", "101"]


def test_common_formats_is_case_insensitive_and_checks_rate() -> None:
    linphone = parse_sdp(LINPHONE_OFFER).media[0]
    # telephone-event is offered at 48000 only, so an 8000 one does not match.
    assert common_formats(linphone, ["OPUS/48000", "TELEPHONE-EVENT/8000", "pcmu"]) == ["96", "0"]
    assert common_formats(linphone, ["telephone-event"]) == ["101"]
    assert common_formats(linphone, ["opus/48000/2", "speex/16000/2"]) == ["96"]
    assert common_formats(linphone, ["speex/16000/1"]) == ["97"]
    assert common_formats(linphone, []) == []


def test_common_formats_uses_static_payload_types() -> None:
    media = MediaDescription("audio", 1, "RTP/AVP", ["18", "9", "0"])
    assert common_formats(media, ["g722/8000", "g729"]) == ["18", "9"]


def test_common_formats_matches_non_rtp_formats_by_name() -> None:
    media = MediaDescription("image", 1, "udptl", ["t38"])
    assert common_formats(media, ["T38"]) == ["t38"]


@pytest.mark.parametrize("entry", ["", "PCMU/x", "PCMU/8000/1/2", "/8000"])
def test_common_formats_rejects_unreadable_entries(entry: str) -> None:
    with pytest.raises(LocalProtocolError):
        common_formats(MediaDescription("audio", 1, "RTP/AVP", ["0"]), [entry])


# --- invalid input -------------------------------------------------------------------------

HEAD = ["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "SDP is empty"),
        (b"\r\n\r\n", "SDP is empty"),
        (crlf(*HEAD[1:]), "does not begin with a v= line"),
        (crlf("v=1", *HEAD[1:]), "version is not 0"),
        (crlf(*HEAD[:1], *HEAD[2:]), "no o= line"),
        (crlf(*HEAD[:2], *HEAD[3:]), "no s= line"),
        (crlf(*HEAD[:4]), "no t= line"),
        (crlf(*HEAD, "v=0"), "more than one v= line"),
        (crlf(*HEAD, "o=- 1 1 IN IP4 h"), "more than one o= line"),
        (crlf(*HEAD, "c=IN IP4 h"), "more than one c= line"),
        (crlf("v=0", "o=- 1 1 IN IP4", "s=-", "t=0 0"), "o= line has 5 fields instead of 6"),
        (crlf("v=0", "o=- 1 x IN IP4 h", "s=-", "t=0 0"), "non-numeric sess-version"),
        (crlf(*HEAD, "m=audio abc RTP/AVP 0"), "m= line has a non-numeric port"),
        (crlf(*HEAD, "m=audio -1 RTP/AVP 0"), "m= line has a non-numeric port"),
        (crlf(*HEAD, "m=audio 70000 RTP/AVP 0"), "port out of range"),
        (crlf(*HEAD, "m=audio 4000/x RTP/AVP 0"), "non-numeric port count"),
        (crlf(*HEAD, "m=audio 4000"), "m= line has fewer than 3 fields"),
        (crlf(*HEAD, "m=audio 1" + "0" * 30 + " RTP/AVP 0"), "port that is too long"),
        (crlf(*HEAD[:3], HEAD[4], "m=audio 4000 RTP/AVP 0"), "no c= line"),
        (crlf(*HEAD[:3], "c=IN IP4", HEAD[4]), "c= line has 2 fields instead of 3"),
        (crlf(*HEAD, "b=AS"), "b= line is not"),
        (crlf(*HEAD, "b=AS:x"), "non-numeric bandwidth"),
        (crlf(*HEAD[:4], "t=0"), "t= line has 1 fields instead of 2"),
        (crlf(*HEAD[:4], "t=now 0"), "non-numeric time"),
        (crlf(*HEAD[:4], "r=1 2 3", HEAD[4]), "r= line comes before any t= line"),
        (crlf(*HEAD, "m=audio 1 RTP/AVP 0", "t=0 0"), "t= line is not allowed in a media"),
        (crlf(*HEAD, "a=:x"), "empty attribute name"),
        (crlf(*HEAD, "no equals sign"), "has no '='"),
        (crlf(*HEAD, "ab=foo"), "not a single character"),
        (crlf(*HEAD, "=foo"), "not a single character"),
        (crlf("v = 0", *HEAD[1:]), "not a single character"),
        (crlf(*HEAD, "1=foo"), "not a letter"),
        (crlf(*HEAD[:3], "", *HEAD[3:]), "empty line"),
        (crlf(*HEAD, "a=x\ry"), "bare CR"),
        (crlf(*HEAD, "a=x\0y"), "NUL"),
        (crlf(*HEAD) + b"a=\xff\xfe\r\n", "not valid UTF-8"),
        (b"\xef\xbb\xbf" + crlf(*HEAD), "not a single character"),  # a BOM is not SDP
    ],
)
def test_invalid_sdp(data: bytes, reason: str) -> None:
    with pytest.raises(SdpError) as caught:
        parse_sdp(data)
    assert reason in caught.value.reason
    assert isinstance(caught.value, ParseError)
    assert caught.value.status_hint == 400


def test_str_with_lone_surrogate_is_rejected() -> None:
    with pytest.raises(SdpError, match="UTF-8"):
        parse_sdp("v=0\r\ns=\udc80\r\n")


def test_unknown_single_letter_type_is_preserved() -> None:
    data = crlf(*HEAD, "y=whatever it is", "m=audio 1 RTP/AVP 0", "Q=media extension")
    sd = parse_sdp(data)
    assert sd.other == [Line("y", "whatever it is")]
    assert sd.media[0].other == [Line("Q", "media extension")]
    assert sd.to_bytes() == data


# --- properties ----------------------------------------------------------------------------

_NO_SPACE = st.characters(codec="utf-8").filter(lambda c: not c.isspace() and c != "\0")
TOKENS = st.text(_NO_SPACE, min_size=1, max_size=8)
TEXTS = st.text(
    st.characters(codec="utf-8", exclude_characters="\r\n\0"),
    max_size=12,
)
NUMBERS = st.integers(min_value=0, max_value=10**20 - 1)
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def lines_of(kinds: str) -> st.SearchStrategy[list[Line]]:
    return st.lists(st.builds(Line, st.sampled_from(kinds), TEXTS), max_size=3)


CONNECTIONS = st.builds(Connection, TOKENS, TOKENS, TOKENS)
BANDWIDTHS = st.builds(Bandwidth, TOKENS.filter(lambda t: ":" not in t), NUMBERS)
ATTRIBUTES = st.builds(
    Attribute,
    st.one_of(
        st.sampled_from([*(d.value for d in Direction), "rtpmap", "fmtp", "ptime"]),
        TOKENS.filter(lambda t: ":" not in t),
    ),
    st.none() | TEXTS,
)
SESSION_UNKNOWN = "".join(c for c in LETTERS if c not in "vosiuepcbtrzkam")
MEDIA_UNKNOWN = "".join(c for c in LETTERS if c not in "vostrmicbka")


@st.composite
def media_descriptions(draw: st.DrawFn, *, needs_connection: bool) -> MediaDescription:
    return MediaDescription(
        media=draw(st.sampled_from(["audio", "video", "image"]) | TOKENS),
        port=draw(st.integers(0, 65535)),
        proto=draw(st.sampled_from(["RTP/AVP", "RTP/SAVP", "udptl"]) | TOKENS),
        formats=draw(st.lists(st.integers(0, 127).map(str) | TOKENS, max_size=5)),
        port_count=draw(st.none() | st.integers(1, 8)),
        connections=draw(st.lists(CONNECTIONS, min_size=int(needs_connection), max_size=2)),
        bandwidths=draw(st.lists(BANDWIDTHS, max_size=2)),
        attributes=draw(st.lists(ATTRIBUTES, max_size=5)),
        other=draw(lines_of("i")) + draw(lines_of("k")) + draw(lines_of(MEDIA_UNKNOWN)),
    )


@st.composite
def session_descriptions(draw: st.DrawFn) -> SessionDescription:
    connection = draw(st.none() | CONNECTIONS)
    media = st.lists(media_descriptions(needs_connection=connection is None), max_size=3)
    return SessionDescription(
        origin=draw(st.builds(Origin, TOKENS, TOKENS, NUMBERS, TOKENS, TOKENS, TOKENS)),
        session_name=draw(TEXTS),
        timings=draw(
            st.lists(st.builds(Timing, NUMBERS, NUMBERS, st.lists(TEXTS, max_size=2)), min_size=1)
        ),
        connection=connection,
        bandwidths=draw(st.lists(BANDWIDTHS, max_size=2)),
        attributes=draw(st.lists(ATTRIBUTES, max_size=4)),
        media=draw(media),
        other=draw(lines_of("iuep")) + draw(lines_of("zk")) + draw(lines_of(SESSION_UNKNOWN)),
    )


@given(session_descriptions())
def test_format_then_parse_round_trips(sd: SessionDescription) -> None:
    data = sd.to_bytes()
    parsed = parse_sdp(data)
    assert parsed == sd
    assert parsed.to_bytes() == data
    assert parse_sdp(data.replace(b"\r\n", b"\n")) == sd


@given(session_descriptions(), st.sampled_from(list(Direction)))
def test_mutators_keep_the_description_well_formed(sd: SessionDescription, d: Direction) -> None:
    sd.set_direction(d)
    sd.set_address("192.0.2.9", [4000 + 2 * i for i in range(len(sd.media))])
    parsed = parse_sdp(sd.to_bytes())
    assert parsed == sd
    assert all(parsed.media_direction(m) is d for m in parsed.media)
    assert all(parsed.connection_address(m) == "192.0.2.9" for m in parsed.media)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_sdp_error(data: bytes) -> None:
    with contextlib.suppress(SdpError):
        parse_sdp(data)


_FRAGMENTS = [*HEAD, "m=audio 4000 RTP/AVP 0 8", "a=sendonly", "a=rtpmap:0 PCMU/8000", "r=1"]


@given(
    st.lists(
        st.sampled_from(_FRAGMENTS) | st.builds("{}={}".format, st.sampled_from(LETTERS), TEXTS),
        max_size=12,
    ),
    st.sampled_from(["\r\n", "\n"]),
)
def test_line_soup_raises_only_sdp_error(lines: list[str], end: str) -> None:
    try:
        sd = parse_sdp(end.join(["v=0", *lines]))
    except SdpError:
        return
    # Unmodeled lines are written in RFC 4566 order, so a soup in another order comes
    # back reordered: the same lines per section, and a fixpoint from then on.
    again = parse_sdp(sd.to_bytes())
    assert sorted(again.other, key=repr) == sorted(sd.other, key=repr)
    assert [sorted(m.other, key=repr) for m in again.media] == [
        sorted(m.other, key=repr) for m in sd.media
    ]
    assert (again.origin, again.attributes, again.timings) == (sd.origin, sd.attributes, sd.timings)
    assert parse_sdp(again.to_bytes()) == again
    for media in sd.media:
        assert isinstance(media.rtpmaps, dict)
        assert isinstance(media.fmtp, dict)
        sd.media_direction(media)
