"""The UAS side: dialogs we create by answering an INVITE (RFC 3261 section 12.1.1), and
the requests the peer then sends in them (section 12.2.2)."""

from __future__ import annotations

import pytest

from b2bua.dialog import (
    Dialog,
    DialogCheck,
    DialogError,
    DialogState,
    make_dialog_response,
)
from b2bua.sip.errors import LocalProtocolError, RemoteProtocolError
from tests.unit.dialog.factories import (
    OUR_CONTACT,
    in_dialog_request,
    lines,
    parse_request,
    uas_invite,
)


def uas_dialog(**kwargs: object) -> Dialog:
    return Dialog.from_uas(uas_invite(**kwargs), "b-tag", OUR_CONTACT)  # type: ignore[arg-type]


def test_uas_dialog_state_from_the_invite() -> None:
    dialog = uas_dialog()
    assert dialog.call_id == "c1@198.51.100.7"
    assert dialog.local_tag == "b-tag"
    assert dialog.remote_tag == "a-tag"
    assert dialog.local_uri == "<sip:bob@example.com>"
    assert dialog.remote_uri == "Alice Liddell <sip:alice@example.org>"
    # 12.1.1: the local sequence number is empty; the remote one is the INVITE's.
    assert dialog.local_cseq is None
    assert dialog.remote_cseq == 101
    assert dialog.remote_target == "sip:alice@198.51.100.7:5060;transport=udp"
    assert dialog.local_target == OUR_CONTACT
    assert dialog.state is DialogState.EARLY
    assert dialog.is_early
    assert not dialog.is_uac
    assert not dialog.secure


def test_uas_route_set_is_the_record_route_in_order() -> None:
    dialog = uas_dialog()
    assert dialog.route_set == ["<sip:p2.example.net;lr>", "<sip:p1.example.org;lr;ftag=a-tag>"]
    assert dialog.next_hop == "sip:p2.example.net;lr"


def test_uas_route_set_from_comma_lists_and_several_fields_keeps_order() -> None:
    dialog = uas_dialog(
        record_route=(
            "<sip:p4.example.net;lr>, <sip:p3.example.net;lr>",
            "<sip:p2.example.net;lr>",
            '"Edge" <sip:p1.example.org;lr>;x=1',
        )
    )
    assert dialog.route_set == [
        "<sip:p4.example.net;lr>",
        "<sip:p3.example.net;lr>",
        "<sip:p2.example.net;lr>",
        '"Edge" <sip:p1.example.org;lr>;x=1',
    ]


def test_uas_without_record_route_has_an_empty_route_set() -> None:
    dialog = uas_dialog(record_route=())
    assert dialog.route_set == []
    assert dialog.next_hop == "sip:alice@198.51.100.7:5060;transport=udp"


def test_uas_record_route_without_brackets_is_written_with_them() -> None:
    dialog = uas_dialog(record_route=("sip:p1.example.org",))
    assert dialog.route_set == ["<sip:p1.example.org>"]


def test_uas_confirmed_when_created_by_a_2xx() -> None:
    dialog = Dialog.from_uas(uas_invite(), "b-tag", OUR_CONTACT, confirmed=True)
    assert dialog.state is DialogState.CONFIRMED


def test_uas_confirm_needs_no_response() -> None:
    dialog = uas_dialog()
    dialog.confirm()
    assert dialog.is_confirmed
    dialog.confirm()  # a second 2xx changes nothing
    assert dialog.is_confirmed


def test_uas_without_from_tag_has_a_null_remote_tag() -> None:
    # 12.1.1: an RFC 2543 request without a From tag; the tag is null.
    dialog = uas_dialog(from_tag=None)
    assert dialog.remote_tag is None
    assert dialog.id.remote_tag is None


def test_uas_secure_only_over_tls_to_a_sips_uri() -> None:
    invite = uas_invite(uri="sips:bob@example.com")
    assert Dialog.from_uas(invite, "b", OUR_CONTACT, over_tls=True).secure
    assert not Dialog.from_uas(invite, "b", OUR_CONTACT).secure
    assert not Dialog.from_uas(uas_invite(), "b", OUR_CONTACT, over_tls=True).secure


def test_uas_invite_without_contact_is_answered_400() -> None:
    with pytest.raises(DialogError) as caught:
        uas_dialog(contact=None)
    assert caught.value.status_hint == 400


def test_uas_wildcard_contact_is_answered_400() -> None:
    # A malformed header is the parser's ParseError; both are RemoteProtocolErrors.
    with pytest.raises(RemoteProtocolError) as caught:
        uas_dialog(contact="*")
    assert caught.value.status_hint == 400


def test_uas_refuses_a_request_already_in_a_dialog() -> None:
    with pytest.raises(LocalProtocolError):
        Dialog.from_uas(in_dialog_request("INVITE", 5, contact="<sip:a@h>"), "b", OUR_CONTACT)


def test_uas_refuses_a_method_that_creates_no_dialog() -> None:
    options = parse_request(
        lines(
            "OPTIONS sip:bob@192.0.2.1 SIP/2.0",
            "Via: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bK-o",
            "From: <sip:alice@example.org>;tag=x",
            "To: <sip:bob@example.com>",
            "Call-ID: o1",
            "CSeq: 1 OPTIONS",
            "Contact: <sip:alice@198.51.100.7>",
        )
    )
    with pytest.raises(LocalProtocolError):
        Dialog.from_uas(options, "b", OUR_CONTACT)


# -- section 12.2.2: requests from the peer


def test_first_remote_cseq_after_the_invite_and_gaps_are_in_order() -> None:
    dialog = uas_dialog()
    assert dialog.on_request(in_dialog_request("INFO", 102)) is DialogCheck.ACCEPTED
    assert dialog.remote_cseq == 102
    # "higher ... by more than one. This is not an error condition."
    assert dialog.on_request(in_dialog_request("INFO", 110)) is DialogCheck.ACCEPTED
    assert dialog.remote_cseq == 110


def test_lower_remote_cseq_is_out_of_order_500() -> None:
    dialog = uas_dialog()
    dialog.on_request(in_dialog_request("INFO", 105))
    with pytest.raises(DialogError) as caught:
        dialog.on_request(in_dialog_request("BYE", 104))
    assert caught.value.status_hint == 500
    assert caught.value.reason == "CSeq Out Of Order"
    assert dialog.remote_cseq == 105


def test_equal_remote_cseq_is_not_lower_so_accepted() -> None:
    dialog = uas_dialog()
    assert dialog.on_request(in_dialog_request("BYE", 101)) is DialogCheck.ACCEPTED
    assert dialog.remote_cseq == 101


def test_ack_is_not_sequenced() -> None:
    dialog = uas_dialog()
    dialog.confirm()
    dialog.on_request(in_dialog_request("INFO", 102))
    # The ACK of the INVITE carries CSeq 101: lower, yet not out of order.
    assert dialog.on_request(in_dialog_request("ACK", 101)) is DialogCheck.ACK
    assert dialog.remote_cseq == 102


def test_remote_cseq_set_by_the_first_request_when_empty() -> None:
    dialog = uas_dialog()
    dialog.remote_cseq = None
    assert dialog.on_request(in_dialog_request("BYE", 7)) is DialogCheck.ACCEPTED
    assert dialog.remote_cseq == 7


def test_cancel_does_not_reach_a_dialog() -> None:
    with pytest.raises(LocalProtocolError):
        uas_dialog().on_request(in_dialog_request("CANCEL", 101))


def test_reinvite_refreshes_the_remote_target() -> None:
    dialog = uas_dialog()
    dialog.confirm()
    reinvite = in_dialog_request("INVITE", 102, contact="<sip:alice@198.51.100.8:5070>")
    assert dialog.on_request(reinvite) is DialogCheck.TARGET_REFRESHED
    assert dialog.remote_target == "sip:alice@198.51.100.8:5070"
    # The route set never changes inside the dialog (section 12.2).
    assert dialog.route_set == ["<sip:p2.example.net;lr>", "<sip:p1.example.org;lr;ftag=a-tag>"]


def test_update_refreshes_the_remote_target_even_while_early() -> None:
    dialog = uas_dialog()
    update = in_dialog_request("UPDATE", 102, contact="<sip:alice@198.51.100.9>")
    assert dialog.on_request(update) is DialogCheck.TARGET_REFRESHED
    assert dialog.remote_target == "sip:alice@198.51.100.9"


def test_target_refresh_with_the_same_contact_is_just_accepted() -> None:
    dialog = uas_dialog()
    same = in_dialog_request("INVITE", 102, contact="<sip:alice@198.51.100.7:5060;transport=udp>")
    assert dialog.on_request(same) is DialogCheck.ACCEPTED


def test_target_refresh_without_contact_keeps_the_target() -> None:
    dialog = uas_dialog()
    assert dialog.on_request(in_dialog_request("UPDATE", 102)) is DialogCheck.ACCEPTED
    assert dialog.remote_target == "sip:alice@198.51.100.7:5060;transport=udp"


def test_contact_in_other_requests_is_not_a_refresh() -> None:
    dialog = uas_dialog()
    info = in_dialog_request("INFO", 102, contact="<sip:alice@198.51.100.9>")
    assert dialog.on_request(info) is DialogCheck.ACCEPTED
    assert dialog.remote_target == "sip:alice@198.51.100.7:5060;transport=udp"


def test_out_of_order_reinvite_does_not_refresh() -> None:
    dialog = uas_dialog()
    dialog.on_request(in_dialog_request("INFO", 105))
    with pytest.raises(DialogError):
        dialog.on_request(in_dialog_request("INVITE", 103, contact="<sip:x@198.51.100.9>"))
    assert dialog.remote_target == "sip:alice@198.51.100.7:5060;transport=udp"


def test_terminated_dialog_answers_481() -> None:
    dialog = uas_dialog()
    dialog.terminate()
    assert dialog.is_terminated
    with pytest.raises(DialogError) as caught:
        dialog.on_request(in_dialog_request("BYE", 102))
    assert caught.value.status_hint == 481


def test_request_for_another_dialog_is_our_bug() -> None:
    with pytest.raises(LocalProtocolError):
        uas_dialog().on_request(in_dialog_request("BYE", 102, to_tag="other"))
    with pytest.raises(LocalProtocolError):
        uas_dialog().on_request(in_dialog_request("BYE", 102, call_id="other"))


def test_confirm_a_terminated_dialog_is_our_bug() -> None:
    dialog = uas_dialog()
    dialog.terminate()
    with pytest.raises(LocalProtocolError):
        dialog.confirm()


# -- the response that creates the dialog


def test_dialog_response_copies_record_route_and_adds_contact() -> None:
    response = make_dialog_response(uas_invite(), 180, local_tag="b-tag", local_contact=OUR_CONTACT)
    assert response.to_bytes().decode().replace("\r\n", "\n") == lines(
        "SIP/2.0 180 Ringing",
        "Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-a1;rport",
        'From: "Alice Liddell" <sip:alice@example.org>;tag=a-tag',
        "To: <sip:bob@example.com>;tag=b-tag",
        "Call-ID: c1@198.51.100.7",
        "CSeq: 101 INVITE",
        "Record-Route: <sip:p2.example.net;lr>",
        "Record-Route: <sip:p1.example.org;lr;ftag=a-tag>",
        "Contact: <sip:b2bua@192.0.2.1:5060>",
        "Content-Length: 0",
    )


def test_dialog_response_final_error_has_no_contact() -> None:
    response = make_dialog_response(uas_invite(), 486, local_tag="b-tag", local_contact=None)
    assert "contact" not in response.headers
    assert response.to.tag == "b-tag"


def test_dialog_establishing_response_needs_a_contact() -> None:
    with pytest.raises(LocalProtocolError):
        make_dialog_response(uas_invite(), 200, local_tag="b-tag", local_contact=None)
