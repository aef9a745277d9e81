"""The switch's face in SDP (b2bua.call.media): what one leg sees of the other's SDP, and
what the switch reads from it (RFC 4566, RFC 3264)."""

from __future__ import annotations

import pytest

from b2bua.call.media import MediaView, SdpFace, view_of
from b2bua.sip.sdp import Direction, SdpError, parse_sdp

RELAY = "203.0.113.2"


def body(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


PHONE = body(
    "v=0",
    "o=alice 2890844526 7 IN IP4 192.0.2.10",
    "s=call",
    "c=IN IP4 192.0.2.10",
    "t=0 0",
    "m=audio 49170 RTP/AVP 0 8 101",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-15",
    "a=ptime:20",
    "a=sendrecv",
)


def lines(sdp: bytes) -> list[str]:
    return sdp.decode().split("\r\n")[:-1]


def face(port: int = 30000) -> SdpFace:
    return SdpFace(RELAY, port, "1234abcd")


def test_present_rewrites_origin_connection_and_port_and_keeps_the_codecs() -> None:
    assert lines(face().present(PHONE)) == [
        "v=0",
        f"o=b2bua 1234abcd 1 IN IP4 {RELAY}",
        "s=call",
        f"c=IN IP4 {RELAY}",
        "t=0 0",
        "m=audio 30000 RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
        "a=sendrecv",
    ]


def test_present_replaces_media_level_connections() -> None:
    sdp = body(
        "v=0",
        "o=bob 1 1 IN IP4 192.0.2.20",
        "s=-",
        "c=IN IP4 192.0.2.20",
        "t=0 0",
        "m=audio 5004 RTP/AVP 0",
        "c=IN IP4 192.0.2.21",
    )
    presented = lines(face().present(sdp))
    assert [line for line in presented if line.startswith("c=")] == [f"c=IN IP4 {RELAY}"]
    assert "192.0.2." not in "".join(presented)


def test_present_refuses_other_streams_with_port_zero() -> None:
    sdp = body(
        "v=0",
        "o=bob 1 1 IN IP4 192.0.2.20",
        "s=-",
        "c=IN IP4 192.0.2.20",
        "t=0 0",
        "m=audio 0 RTP/AVP 0",  # disabled: stays disabled
        "m=audio 5004 RTP/AVP 0 8",  # the first audio stream in use: the relayed one
        "m=video 5006 RTP/AVP 96",
        "a=rtpmap:96 H264/90000",
        "m=audio 5008 RTP/AVP 0",  # a second audio stream
    )
    presented = lines(face().present(sdp))
    assert [line for line in presented if line.startswith("m=")] == [
        "m=audio 0 RTP/AVP 0",
        "m=audio 30000 RTP/AVP 0 8",
        "m=video 0 RTP/AVP 96",
        "m=audio 0 RTP/AVP 0",
    ]


def test_present_drops_rtcp_and_ice_attributes_at_both_levels() -> None:
    sdp = body(
        "v=0",
        "o=bob 1 1 IN IP4 192.0.2.20",
        "s=-",
        "c=IN IP4 192.0.2.20",
        "t=0 0",
        "a=ice-ufrag:F7gI",
        "a=ice-pwd:x9cml/YzichV2+XlhiMu8g",
        "a=ice-options:trickle",
        "a=ice-lite",
        "m=audio 5004 RTP/AVP 0",
        "a=rtcp:5005 IN IP4 192.0.2.20",
        "a=rtcp-mux",
        "a=candidate:1 1 UDP 2130706431 192.0.2.20 5004 typ host",
        "a=remote-candidates:1 192.0.2.30 6000",
        "a=end-of-candidates",
        "a=ptime:20",
        "a=recvonly",
    )
    presented = face().present(sdp)
    assert lines(presented)[-3:] == ["m=audio 30000 RTP/AVP 0", "a=ptime:20", "a=recvonly"]
    for name in ("rtcp", "ice-", "candidate"):
        assert f"a={name}".encode() not in presented
    assert b"192.0.2.20" not in presented


def test_origin_version_moves_only_when_what_is_presented_changes() -> None:
    sdp_face = face()
    first = sdp_face.present(PHONE)
    again = sdp_face.present(PHONE)
    assert first == again  # the same description: the same version (RFC 3264 section 8)
    assert parse_sdp(again).origin.sess_version == 1
    # The phone bumped its own version but changed nothing we show: still 1.
    assert parse_sdp(sdp_face.present(PHONE.replace(b" 7 IN", b" 8 IN"))).origin.sess_version == 1
    held = sdp_face.present(PHONE.replace(b"a=sendrecv", b"a=sendonly"))
    assert parse_sdp(held).origin.sess_version == 2
    assert (
        parse_sdp(sdp_face.present(PHONE.replace(b"a=sendrecv", b"a=sendonly"))).origin.sess_version
        == 2
    )
    assert parse_sdp(sdp_face.present(PHONE)).origin.sess_version == 3
    assert sdp_face.version == 3


def test_each_face_has_its_own_version() -> None:
    a, b = face(30000), face(30002)
    a.present(PHONE)
    a.present(PHONE.replace(b"a=sendrecv", b"a=inactive"))
    assert parse_sdp(b.present(PHONE)).origin.sess_version == 1


def test_present_on_an_ipv6_relay() -> None:
    presented = lines(SdpFace("2001:db8::2", 30000, "s1").present(PHONE))
    assert "o=b2bua s1 1 IN IP6 2001:db8::2" in presented
    assert "c=IN IP6 2001:db8::2" in presented


def test_present_raises_on_sdp_that_does_not_parse() -> None:
    with pytest.raises(SdpError):
        face().present(b"not sdp at all\r\n")


def test_present_keeps_an_rfc2543_hold_a_hold() -> None:
    """RFC 3264 section 8.4: c=0.0.0.0 means "send neither RTP nor RTCP to me". The
    other leg must not be asked to send: either 0.0.0.0 stays, or the stream it sees is
    sendonly/inactive."""
    held = PHONE.replace(b"c=IN IP4 192.0.2.10", b"c=IN IP4 0.0.0.0")
    presented = lines(face().present(held))
    kept_address = "c=IN IP4 0.0.0.0" in presented
    direction = [line for line in presented if line in ("a=sendonly", "a=inactive")]
    assert kept_address or direction


# -- view_of


def test_view_of_reads_the_first_audio_stream() -> None:
    assert view_of(PHONE) == MediaView(("192.0.2.10", 49170), Direction.SENDRECV)


def test_view_of_prefers_the_media_connection_and_skips_disabled_streams() -> None:
    sdp = body(
        "v=0",
        "o=bob 1 1 IN IP4 192.0.2.20",
        "s=-",
        "c=IN IP4 192.0.2.20",
        "t=0 0",
        "a=sendonly",
        "m=video 5000 RTP/AVP 96",
        "m=audio 0 RTP/AVP 0",
        "m=audio 5004 RTP/AVP 0",
        "c=IN IP4 192.0.2.21",
    )
    view = view_of(sdp)
    assert view == MediaView(("192.0.2.21", 5004), Direction.SENDONLY)  # session direction
    assert view.is_held


@pytest.mark.parametrize(
    ("direction", "held"),
    [("sendrecv", False), ("recvonly", False), ("sendonly", True), ("inactive", True)],
)
def test_view_of_direction_and_hold(direction: str, held: bool) -> None:
    view = view_of(PHONE.replace(b"a=sendrecv", f"a={direction}".encode()))
    assert view.direction == Direction(direction)
    assert view.address == ("192.0.2.10", 49170)
    assert view.is_held is held


def test_view_of_the_hold_address_has_no_address() -> None:
    view = view_of(PHONE.replace(b"c=IN IP4 192.0.2.10", b"c=IN IP4 0.0.0.0"))
    assert view.address is None


def test_view_of_the_hold_address_is_held() -> None:
    assert view_of(PHONE.replace(b"c=IN IP4 192.0.2.10", b"c=IN IP4 0.0.0.0")).is_held


def test_view_of_no_audio_stream() -> None:
    sdp = body(
        "v=0",
        "o=bob 1 1 IN IP4 192.0.2.20",
        "s=-",
        "c=IN IP4 192.0.2.20",
        "t=0 0",
        "m=audio 0 RTP/AVP 0",
        "m=video 5000 RTP/AVP 96",
    )
    assert view_of(sdp) == MediaView(None, Direction.INACTIVE)


def test_view_of_raises_on_bad_sdp() -> None:
    with pytest.raises(SdpError):
        view_of(b"v=0\r\nm=audio 1 RTP/AVP 0\r\n")


def test_cross_reads_and_presents_with_one_parse() -> None:
    """cross() gives what view_of() and present() give, for the same SDP."""
    held = PHONE.replace(b"a=sendrecv", b"a=sendonly")
    view, presented = face().cross(held)
    assert view == view_of(held)
    assert presented == face().present(held)
