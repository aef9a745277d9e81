"""DialogTable: lookup by dialog id for requests and responses, forks of one INVITE, and
the stray 2xx of a fork that lost (RFC 3261 sections 12.1.2, 12.2.2, 13.2.2.4)."""

from __future__ import annotations

import pytest

from b2bua.dialog import (
    Dialog,
    DialogId,
    DialogTable,
    ack_and_bye_for_stray_2xx,
)
from b2bua.sip.errors import LocalProtocolError
from b2bua.sip.message import Response
from tests.unit.dialog.factories import (
    LOCAL,
    OUR_CONTACT,
    in_dialog_request,
    lines,
    uac_invite,
    uac_response,
    uas_invite,
    wire,
)


def test_add_get_remove_and_len() -> None:
    table = DialogTable()
    dialog = Dialog.from_uas(uas_invite(), "b-tag", OUR_CONTACT)
    table.add(dialog)
    dialog_id = DialogId("c1@198.51.100.7", "b-tag", "a-tag")
    assert dialog.id == dialog_id
    assert len(table) == 1
    assert dialog_id in table
    assert table.get(dialog_id) is dialog
    assert list(table) == [dialog]
    with pytest.raises(LocalProtocolError):
        table.add(dialog)
    assert table.remove(dialog_id) is dialog
    assert table.remove(dialog_id) is None
    assert len(table) == 0
    assert table.get(dialog_id) is None
    assert table.forks("c1@198.51.100.7", "b-tag") == []


def test_incoming_request_is_found_by_to_tag_then_from_tag() -> None:
    table = DialogTable()
    dialog = Dialog.from_uas(uas_invite(), "b-tag", OUR_CONTACT)
    table.add(dialog)
    assert table.for_request(in_dialog_request("BYE", 102)) is dialog
    assert table.for_request(in_dialog_request("BYE", 102, to_tag="x")) is None
    assert table.for_request(in_dialog_request("BYE", 102, from_tag="x")) is None
    assert table.for_request(in_dialog_request("BYE", 102, call_id="x")) is None
    # Tags are compared exactly.
    assert table.for_request(in_dialog_request("BYE", 102, to_tag="B-TAG")) is None
    # A request without a To tag is not inside a dialog.
    assert table.for_request(uas_invite()) is None


def test_untagged_rfc2543_peer_is_found_by_a_null_remote_tag() -> None:
    table = DialogTable()
    dialog = Dialog.from_uas(uas_invite(from_tag=None), "b-tag", OUR_CONTACT)
    table.add(dialog)
    assert table.get(DialogId("c1@198.51.100.7", "b-tag", None)) is dialog


def test_request_from_the_peer_of_a_uac_dialog() -> None:
    table = DialogTable()
    dialog = Dialog.from_uac(uac_invite(), uac_response(200))
    table.add(dialog)
    bye = in_dialog_request(
        "BYE", 1, to_tag="our-tag", from_tag="fork-a", call_id="out-1@192.0.2.1"
    )
    assert table.for_request(bye) is dialog


def test_response_is_found_by_from_tag_then_to_tag() -> None:
    table = DialogTable()
    dialog = Dialog.from_uac(uac_invite(), uac_response(180))
    table.add(dialog)
    assert table.for_response(uac_response(183)) is dialog
    assert table.for_response(uac_response(183, to_tag="fork-b")) is None
    assert table.for_response(uac_response(100, to_tag=None)) is None


def test_response_to_our_request_in_a_uas_dialog() -> None:
    table = DialogTable()
    dialog = Dialog.from_uas(uas_invite(), "b-tag", OUR_CONTACT)
    table.add(dialog)
    bye = dialog.new_request("BYE", branch="z9hG4bK-b", local_address=LOCAL)
    ok = Response(200, "OK", bye.headers.copy())
    assert table.for_response(ok) is dialog


def test_forking_two_early_dialogs_one_confirmed_the_other_dropped() -> None:
    table = DialogTable()
    invite = uac_invite()
    ringing_a = uac_response(180, to_tag="fork-a", contact="<sip:gw@a.example.net>")
    ringing_b = uac_response(180, to_tag="fork-b", contact="<sip:gw@b.example.net>")
    for response in (ringing_a, ringing_b):
        assert table.for_response(response) is None
        table.add(Dialog.from_uac(invite, response))
    # A second 180 from fork A belongs to its early dialog.
    assert table.for_response(ringing_a) is not None
    a, b = table.early_dialogs("out-1@192.0.2.1", "our-tag")
    assert (a.remote_tag, b.remote_tag) == ("fork-a", "fork-b")
    assert (a.remote_target, b.remote_target) == ("sip:gw@a.example.net", "sip:gw@b.example.net")
    assert len(table) == 2

    ok_a = uac_response(200, to_tag="fork-a", contact="<sip:gw@a.example.net>")
    winner = table.for_response(ok_a)
    assert winner is a
    winner.confirm(ok_a)
    dropped = table.drop_early("out-1@192.0.2.1", "our-tag", keep=winner.id)
    assert dropped == [b]
    assert b.is_terminated
    assert len(table) == 1
    assert table.forks("out-1@192.0.2.1", "our-tag") == [a]
    assert table.early_dialogs("out-1@192.0.2.1", "our-tag") == []

    # A late 2xx from fork B finds no dialog; a confirmed fork already won.
    ok_b = uac_response(200, to_tag="fork-b", contact="<sip:gw@b.example.net>")
    assert table.for_response(ok_b) is None
    assert [d.is_confirmed for d in table.forks("out-1@192.0.2.1", "our-tag")] == [True]
    # ... while a retransmission of the winner's 2xx finds it (to be ACKed again).
    assert table.for_response(ok_a) is winner


def test_drop_early_keeps_confirmed_forks_and_can_drop_all() -> None:
    table = DialogTable()
    invite = uac_invite()
    confirmed = Dialog.from_uac(invite, uac_response(200, to_tag="fork-a"))
    table.add(confirmed)
    for tag in ("fork-b", "fork-c"):
        table.add(Dialog.from_uac(invite, uac_response(180, to_tag=tag)))
    dropped = table.drop_early("out-1@192.0.2.1", "our-tag")
    assert [d.remote_tag for d in dropped] == ["fork-b", "fork-c"]
    assert table.forks("out-1@192.0.2.1", "our-tag") == [confirmed]
    assert table.drop_early("other", "our-tag") == []


def test_forks_of_different_invites_are_kept_apart() -> None:
    table = DialogTable()
    uac = Dialog.from_uac(uac_invite(), uac_response(180))
    uas = Dialog.from_uas(uas_invite(), "b-tag", OUR_CONTACT)
    table.add(uac)
    table.add(uas)
    assert table.forks("out-1@192.0.2.1", "our-tag") == [uac]
    assert table.forks("c1@198.51.100.7", "b-tag") == [uas]
    # UAS dialogs are early too, and are forks of nothing else.
    assert table.drop_early("out-1@192.0.2.1", "our-tag") == [uac]
    assert list(table) == [uas]


def test_ack_and_bye_for_a_stray_2xx() -> None:
    stray = uac_response(
        200,
        to_tag="fork-b",
        contact="<sip:gw@b.example.net:5070>",
        record_route=("<sip:far.example.net;lr>", "<sip:near.example.net;lr>"),
    )
    ack, bye = ack_and_bye_for_stray_2xx(
        uac_invite(),
        stray,
        local_address=LOCAL,
        ack_branch="z9hG4bK-ack",
        bye_branch="z9hG4bK-bye",
    )
    route_and_dialog = (
        "Route: <sip:near.example.net;lr>",
        "Route: <sip:far.example.net;lr>",
        "Max-Forwards: 70",
        "From: <sip:100@192.0.2.1>;tag=our-tag",
        "To: <sip:+15551234@carrier.example.net>;tag=fork-b",
        "Call-ID: out-1@192.0.2.1",
    )
    assert wire(ack) == lines(
        "ACK sip:gw@b.example.net:5070 SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-ack;rport",
        *route_and_dialog,
        "CSeq: 1 ACK",
        # 13.2.2.4: the ACK carries the INVITE's credentials.
        'Proxy-Authorization: Digest username="100", realm="carrier", nonce="n", '
        'uri="sip:+15551234@carrier.example.net", response="0123456789abcdef0123456789abcdef"',
        "Content-Length: 0",
    )
    assert wire(bye) == lines(
        "BYE sip:gw@b.example.net:5070 SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-bye;rport",
        *route_and_dialog,
        "CSeq: 2 BYE",
        "Content-Length: 0",
    )


def test_stray_2xx_offer_gets_an_answer_in_the_ack() -> None:
    ack, _ = ack_and_bye_for_stray_2xx(
        uac_invite(),
        uac_response(200, to_tag="fork-b"),
        local_address=LOCAL,
        ack_branch="z9hG4bK-ack",
        bye_branch="z9hG4bK-bye",
        ack_body=b"v=0\r\n",
        ack_content_type="application/sdp",
    )
    assert ack.body == b"v=0\r\n"
    assert ack.content_type == "application/sdp"


@pytest.mark.parametrize("status", [180, 486])
def test_only_a_2xx_is_acked_and_byed(status: int) -> None:
    with pytest.raises(LocalProtocolError):
        ack_and_bye_for_stray_2xx(
            uac_invite(),
            uac_response(status),
            local_address=LOCAL,
            ack_branch="z9hG4bK-ack",
            bye_branch="z9hG4bK-bye",
        )
