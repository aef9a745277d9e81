"""Requests built from dialog state (RFC 3261 sections 12.2.1.1 and 13.2.2.4), checked
against their exact text."""

from __future__ import annotations

import pytest

from b2bua.dialog import Dialog, LocalAddress, request_target
from b2bua.sip.address import Transport
from b2bua.sip.errors import LocalProtocolError
from tests.unit.dialog.factories import (
    LOCAL,
    OUR_CONTACT,
    lines,
    uac_invite,
    uac_response,
    uas_invite,
    wire,
)

SDP = b"v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"


def uas_dialog() -> Dialog:
    dialog = Dialog.from_uas(uas_invite(), "b-tag", OUR_CONTACT)
    dialog.confirm()
    return dialog


def uac_dialog() -> Dialog:
    return Dialog.from_uac(uac_invite(), uac_response(200))


def test_bye_on_the_uas_side() -> None:
    bye = uas_dialog().new_request("BYE", branch="z9hG4bK-bye1", local_address=LOCAL)
    assert wire(bye) == lines(
        "BYE sip:alice@198.51.100.7:5060;transport=udp SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-bye1;rport",
        "Route: <sip:p2.example.net;lr>",
        "Route: <sip:p1.example.org;lr;ftag=a-tag>",
        "Max-Forwards: 70",
        "From: <sip:bob@example.com>;tag=b-tag",
        "To: Alice Liddell <sip:alice@example.org>;tag=a-tag",
        "Call-ID: c1@198.51.100.7",
        "CSeq: 1 BYE",
        "Content-Length: 0",
    )


def test_reinvite_on_the_uac_side_with_an_offer() -> None:
    dialog = uac_dialog()
    reinvite = dialog.new_request(
        "INVITE",
        branch="z9hG4bK-reinv",
        local_address=LOCAL,
        body=SDP,
        content_type="application/sdp",
        extra_headers=[("Supported", "timer"), ("Session-Expires", "1800;refresher=uac")],
    )
    assert wire(reinvite) == lines(
        "INVITE sip:gw-a@203.0.113.10:5060 SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-reinv;rport",
        "Route: <sip:near.example.net;lr>",
        "Route: <sip:far.example.net;lr>",
        "Max-Forwards: 70",
        "From: <sip:100@192.0.2.1>;tag=our-tag",
        "To: <sip:+15551234@carrier.example.net>;tag=fork-a",
        "Call-ID: out-1@192.0.2.1",
        "CSeq: 2 INVITE",
        "Contact: <sip:b2bua@192.0.2.1:5060>",
        "Supported: timer",
        "Session-Expires: 1800;refresher=uac",
        "Content-Type: application/sdp",
        f"Content-Length: {len(SDP)}",
    ) + SDP.decode().replace("\r\n", "\n")
    assert dialog.local_cseq == 2


def test_ack_for_2xx_has_the_invite_cseq_and_its_own_branch() -> None:
    dialog = uac_dialog()
    ack = dialog.ack_for_2xx(1, branch="z9hG4bK-ack1", local_address=LOCAL)
    assert wire(ack) == lines(
        "ACK sip:gw-a@203.0.113.10:5060 SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-ack1;rport",
        "Route: <sip:near.example.net;lr>",
        "Route: <sip:far.example.net;lr>",
        "Max-Forwards: 70",
        "From: <sip:100@192.0.2.1>;tag=our-tag",
        "To: <sip:+15551234@carrier.example.net>;tag=fork-a",
        "Call-ID: out-1@192.0.2.1",
        "CSeq: 1 ACK",
        "Content-Length: 0",
    )
    assert dialog.local_cseq == 1


def test_ack_for_a_reinvite_2xx_with_an_answer_and_credentials() -> None:
    dialog = uac_dialog()
    dialog.new_request("INVITE", branch="z9hG4bK-r", local_address=LOCAL)
    ack = dialog.ack_for_2xx(
        2,
        branch="z9hG4bK-ack2",
        local_address=LOCAL,
        body=SDP,
        content_type="application/sdp",
        extra_headers=[("Proxy-Authorization", 'Digest username="100"')],
    )
    assert ack.cseq.number == 2
    assert ack.cseq.method == "ACK"
    assert ack.headers.get("proxy-authorization") == 'Digest username="100"'
    assert ack.body == SDP
    assert "contact" not in ack.headers
    assert dialog.local_cseq == 2


def test_ack_for_2xx_still_possible_after_the_dialog_ended() -> None:
    dialog = uac_dialog()
    dialog.terminate()
    assert dialog.ack_for_2xx(1, branch="z9hG4bK-a", local_address=LOCAL).method == "ACK"


def test_local_cseq_increments_per_request_but_not_for_ack_or_cancel() -> None:
    dialog = uac_dialog()
    numbers = [
        dialog.new_request(method, branch=f"z9hG4bK-{i}", local_address=LOCAL).cseq
        for i, method in enumerate(["INFO", "INVITE", "CANCEL", "ACK", "UPDATE", "BYE"])
    ]
    assert [(n.number, n.method) for n in numbers] == [
        (2, "INFO"),
        (3, "INVITE"),
        (3, "CANCEL"),
        (3, "ACK"),
        (4, "UPDATE"),
        (5, "BYE"),
    ]
    assert dialog.local_cseq == 5


def test_uas_first_local_cseq_is_1_and_ack_cancel_need_one() -> None:
    dialog = uas_dialog()
    with pytest.raises(LocalProtocolError):
        dialog.new_request("CANCEL", branch="z9hG4bK-c", local_address=LOCAL)
    assert dialog.new_request("INFO", branch="z9hG4bK-i", local_address=LOCAL).cseq.number == 1
    assert dialog.local_cseq == 1


def test_local_cseq_stays_below_2_to_the_31() -> None:
    dialog = uac_dialog()
    dialog.local_cseq = 2**31 - 2
    assert dialog.new_request("INFO", branch="z9hG4bK-1", local_address=LOCAL).cseq.number == (
        2**31 - 1
    )
    with pytest.raises(LocalProtocolError):
        dialog.new_request("INFO", branch="z9hG4bK-2", local_address=LOCAL)


def test_contact_only_in_target_refresh_requests() -> None:
    dialog = uac_dialog()
    for method in ("INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY"):
        request = dialog.new_request(method, branch="z9hG4bK-x", local_address=LOCAL)
        assert request.headers.get("contact") == "<sip:b2bua@192.0.2.1:5060>"
    for method in ("BYE", "INFO", "OPTIONS", "MESSAGE", "PRACK"):
        request = dialog.new_request(method, branch="z9hG4bK-x", local_address=LOCAL)
        assert "contact" not in request.headers


def test_new_local_contact_becomes_the_local_target() -> None:
    dialog = uac_dialog()
    request = dialog.new_request(
        "INVITE", branch="z9hG4bK-x", local_address=LOCAL, local_contact="sip:b2bua@192.0.2.2"
    )
    assert request.headers.get("contact") == "<sip:b2bua@192.0.2.2>"
    assert dialog.local_target == "sip:b2bua@192.0.2.2"
    update = dialog.new_request("UPDATE", branch="z9hG4bK-y", local_address=LOCAL)
    assert update.headers.get("contact") == "<sip:b2bua@192.0.2.2>"


def test_target_refresh_without_any_local_contact_is_our_bug() -> None:
    dialog = uac_dialog()
    dialog.local_target = None
    with pytest.raises(LocalProtocolError):
        dialog.new_request("INVITE", branch="z9hG4bK-x", local_address=LOCAL)


def test_requests_follow_a_refreshed_target() -> None:
    dialog = uac_dialog()
    dialog.on_response(uac_response(200, cseq="1 INVITE", contact="<sip:gw-a@203.0.113.99>"))
    bye = dialog.new_request("BYE", branch="z9hG4bK-b", local_address=LOCAL)
    assert bye.uri == "sip:gw-a@203.0.113.99"


def test_no_requests_in_a_terminated_dialog() -> None:
    dialog = uac_dialog()
    dialog.terminate()
    with pytest.raises(LocalProtocolError):
        dialog.new_request("BYE", branch="z9hG4bK-b", local_address=LOCAL)


def test_body_needs_a_content_type() -> None:
    with pytest.raises(LocalProtocolError):
        uac_dialog().new_request("INFO", branch="z9hG4bK-b", local_address=LOCAL, body=b"x")


def test_branch_needs_the_magic_cookie() -> None:
    with pytest.raises(LocalProtocolError):
        uac_dialog().new_request("BYE", branch="abc", local_address=LOCAL)


def test_via_over_tcp_and_ipv6() -> None:
    dialog = uac_dialog()
    tcp = dialog.new_request(
        "BYE", branch="z9hG4bK-t", local_address=LocalAddress("192.0.2.1", 5080, Transport.TCP)
    )
    assert tcp.headers.get("via") == "SIP/2.0/TCP 192.0.2.1:5080;branch=z9hG4bK-t;rport"
    v6 = dialog.new_request(
        "BYE", branch="z9hG4bK-6", local_address=LocalAddress("2001:db8::1", 5060)
    )
    assert v6.headers.get("via") == "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK-6;rport"
    assert v6.top_via.sent_by == ("2001:db8::1", 5060)


def test_empty_route_set_sends_straight_to_the_target() -> None:
    dialog = Dialog.from_uac(uac_invite(), uac_response(200, record_route=()))
    bye = dialog.new_request("BYE", branch="z9hG4bK-b", local_address=LOCAL)
    assert bye.uri == "sip:gw-a@203.0.113.10:5060"
    assert "route" not in bye.headers


def test_untagged_peer_gets_an_untagged_to() -> None:
    dialog = Dialog.from_uac(uac_invite(), uac_response(200, to_tag=None))
    bye = dialog.new_request("BYE", branch="z9hG4bK-b", local_address=LOCAL)
    assert bye.headers.get("to") == "<sip:+15551234@carrier.example.net>"


# -- strict routing (RFC 2543 next hop), section 12.2.1.1


def test_strict_first_route_goes_in_the_request_uri() -> None:
    dialog = uac_dialog()
    dialog.route_set = [
        "<sip:old.example.net;method=INVITE;transport=udp>",
        "<sip:p2.example.net;lr>",
    ]
    bye = dialog.new_request("BYE", branch="z9hG4bK-s", local_address=LOCAL)
    # The first route, without the parameters a Request-URI may not carry ...
    assert bye.uri == "sip:old.example.net;transport=udp"
    # ... the rest of the route set, then the remote target as the last Route.
    assert bye.headers.get_all("route") == [
        "<sip:p2.example.net;lr>",
        "<sip:gw-a@203.0.113.10:5060>",
    ]
    assert dialog.next_hop == "sip:old.example.net;method=INVITE;transport=udp"


def test_strict_route_drops_uri_headers_from_the_request_uri() -> None:
    assert request_target("sip:t@h", ["<sip:old.example.net?Subject=x>"]) == (
        "sip:old.example.net",
        ["<sip:t@h>"],
    )


def test_loose_first_route_keeps_the_target() -> None:
    assert request_target("sip:t@h", ["<sip:a;lr>", "<sip:b>"]) == (
        "sip:t@h",
        ["<sip:a;lr>", "<sip:b>"],
    )
    assert request_target("sip:t@h", []) == ("sip:t@h", [])


def test_lr_is_found_even_in_a_uri_our_grammar_refuses() -> None:
    # A backtick is not a URI character; the route still says lr, so it stays loose.
    assert request_target("sip:t@h", ["<sip:p.example;ftag=a`b;lr>"]) == (
        "sip:t@h",
        ["<sip:p.example;ftag=a`b;lr>"],
    )
    assert request_target("sip:t@h", ["<sip:p.example;ftag=a`b>"]) == (
        "sip:p.example;ftag=a`b",
        ["<sip:t@h>"],
    )


def test_a_refused_request_consumes_no_cseq() -> None:
    dialog = uac_dialog()
    with pytest.raises(LocalProtocolError):
        dialog.new_request("INVITE", branch="bad", local_address=LOCAL, local_contact="sip:x@y")
    with pytest.raises(LocalProtocolError):
        dialog.new_request("INFO", branch="z9hG4bK-1", local_address=LOCAL, body=b"x")
    assert dialog.local_cseq == 1
    assert dialog.local_target == OUR_CONTACT
