"""The UAC side: dialogs the responses to our INVITE create (RFC 3261 section 12.1.2),
their confirmation (13.2.2.4), and the responses to our requests in them (12.2.1.2)."""

from __future__ import annotations

import pytest

from b2bua.dialog import Dialog, DialogCheck, DialogState
from b2bua.sip.errors import LocalProtocolError
from tests.unit.dialog.factories import UAC_INVITE, parse_request, uac_invite, uac_response


def early_dialog() -> Dialog:
    return Dialog.from_uac(uac_invite(), uac_response(180))


def test_tagged_180_creates_an_early_dialog() -> None:
    dialog = early_dialog()
    assert dialog.state is DialogState.EARLY
    assert dialog.is_uac
    assert dialog.call_id == "out-1@192.0.2.1"
    assert dialog.local_tag == "our-tag"
    assert dialog.remote_tag == "fork-a"
    assert dialog.local_uri == "<sip:100@192.0.2.1>"
    assert dialog.remote_uri == "<sip:+15551234@carrier.example.net>"
    # 12.1.2: local CSeq is the INVITE's; the remote one is empty.
    assert dialog.local_cseq == 1
    assert dialog.remote_cseq is None
    assert dialog.remote_target == "sip:gw-a@203.0.113.10:5060"
    assert dialog.local_target == "sip:b2bua@192.0.2.1:5060"
    assert not dialog.secure


def test_uac_route_set_is_the_record_route_reversed() -> None:
    dialog = early_dialog()
    assert dialog.route_set == ["<sip:near.example.net;lr>", "<sip:far.example.net;lr>"]
    assert dialog.next_hop == "sip:near.example.net;lr"


def test_uac_route_set_reversed_across_several_fields() -> None:
    response = uac_response(
        200,
        record_route=(
            "<sip:p4.example.net;lr>",
            "<sip:p3.example.net;lr>, <sip:p2.example.net;lr>",
            "<sip:p1.example.net;lr;ftag=our-tag>",
        ),
    )
    dialog = Dialog.from_uac(uac_invite(), response)
    assert dialog.route_set == [
        "<sip:p1.example.net;lr;ftag=our-tag>",
        "<sip:p2.example.net;lr>",
        "<sip:p3.example.net;lr>",
        "<sip:p4.example.net;lr>",
    ]


def test_uac_without_record_route_has_an_empty_route_set() -> None:
    dialog = Dialog.from_uac(uac_invite(), uac_response(200, record_route=()))
    assert dialog.route_set == []
    assert dialog.next_hop == "sip:gw-a@203.0.113.10:5060"


def test_2xx_creates_a_confirmed_dialog() -> None:
    dialog = Dialog.from_uac(uac_invite(), uac_response(200))
    assert dialog.state is DialogState.CONFIRMED


def test_untagged_2xx_creates_a_dialog_with_a_null_remote_tag() -> None:
    # 12.1.2: an RFC 2543 UAS may answer without a To tag.
    dialog = Dialog.from_uac(uac_invite(), uac_response(200, to_tag=None))
    assert dialog.remote_tag is None
    assert dialog.is_confirmed


def test_untagged_1xx_creates_no_dialog() -> None:
    with pytest.raises(LocalProtocolError):
        Dialog.from_uac(uac_invite(), uac_response(180, to_tag=None))


@pytest.mark.parametrize("status", [100, 300, 486])
def test_other_statuses_create_no_dialog(status: int) -> None:
    with pytest.raises(LocalProtocolError):
        Dialog.from_uac(uac_invite(), uac_response(status))


def test_response_to_another_request_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        Dialog.from_uac(uac_invite(), uac_response(180, cseq="2 INVITE"))


def test_our_request_needs_a_from_tag() -> None:
    untagged = parse_request(UAC_INVITE.replace(";tag=our-tag", ""))
    response = uac_response(180)
    with pytest.raises(LocalProtocolError):
        Dialog.from_uac(untagged, response)


def test_1xx_without_contact_targets_the_request_uri_until_told_otherwise() -> None:
    dialog = Dialog.from_uac(uac_invite(), uac_response(180, contact=None))
    assert dialog.remote_target == "sip:+15551234@carrier.example.net"
    dialog.confirm(uac_response(200))
    assert dialog.remote_target == "sip:gw-a@203.0.113.10:5060"


def test_secure_only_when_sent_over_tls_to_a_sips_uri() -> None:
    sips = parse_request(UAC_INVITE.replace("INVITE sip:", "INVITE sips:", 1))
    assert Dialog.from_uac(sips, uac_response(180), over_tls=True).secure
    assert not Dialog.from_uac(sips, uac_response(180)).secure
    assert not Dialog.from_uac(uac_invite(), uac_response(180), over_tls=True).secure


# -- section 13.2.2.4: the 2xx confirms the early dialog


def test_2xx_confirms_and_recomputes_only_the_route_set() -> None:
    dialog = early_dialog()
    dialog.local_cseq = 3  # say a PRACK and an UPDATE went out while early
    dialog.remote_cseq = 9
    ok = uac_response(
        200,
        record_route=(
            "<sip:far.example.net;lr>, <sip:mid.example.net;lr>, <sip:near.example.net;lr>",
        ),
        contact="<sip:gw-a@203.0.113.11:5062>",
    )
    dialog.confirm(ok)
    assert dialog.is_confirmed
    assert dialog.route_set == [
        "<sip:near.example.net;lr>",
        "<sip:mid.example.net;lr>",
        "<sip:far.example.net;lr>",
    ]
    # The INVITE is a target refresh request: its 2xx's Contact is the target (12.2.1.2).
    assert dialog.remote_target == "sip:gw-a@203.0.113.11:5062"
    # "the only piece of state that is recomputed is the route set"
    assert dialog.local_cseq == 3
    assert dialog.remote_cseq == 9


def test_2xx_without_record_route_empties_the_route_set() -> None:
    # RFC 2543 proxies mirrored Record-Route only in the 2xx; the 2xx decides.
    dialog = early_dialog()
    dialog.confirm(uac_response(200, record_route=()))
    assert dialog.route_set == []


def test_2xx_without_contact_keeps_the_target() -> None:
    dialog = early_dialog()
    dialog.confirm(uac_response(200, contact=None))
    assert dialog.remote_target == "sip:gw-a@203.0.113.10:5060"


def test_retransmitted_2xx_changes_nothing() -> None:
    dialog = early_dialog()
    dialog.confirm(uac_response(200))
    dialog.route_set = ["<sip:kept.example.net;lr>"]
    dialog.confirm(uac_response(200, record_route=()))
    assert dialog.route_set == ["<sip:kept.example.net;lr>"]


def test_confirm_checks_its_input() -> None:
    dialog = early_dialog()
    with pytest.raises(LocalProtocolError):
        dialog.confirm()
    with pytest.raises(LocalProtocolError):
        dialog.confirm(uac_response(183))
    with pytest.raises(LocalProtocolError):
        dialog.confirm(uac_response(200, cseq="2 UPDATE"))
    with pytest.raises(LocalProtocolError):
        dialog.confirm(uac_response(200, to_tag="fork-b"))
    assert dialog.is_early


# -- responses in the dialog


def test_later_1xx_while_early_updates_the_target_not_the_route_set() -> None:
    dialog = early_dialog()
    progress = uac_response(183, contact="<sip:gw-a@203.0.113.12>", record_route=())
    assert dialog.on_response(progress) is DialogCheck.TARGET_REFRESHED
    assert dialog.remote_target == "sip:gw-a@203.0.113.12"
    assert dialog.route_set == ["<sip:near.example.net;lr>", "<sip:far.example.net;lr>"]
    assert dialog.on_response(uac_response(180)) is DialogCheck.TARGET_REFRESHED
    assert dialog.on_response(uac_response(180)) is DialogCheck.ACCEPTED
    assert dialog.on_response(uac_response(180, contact=None)) is DialogCheck.ACCEPTED


def test_the_2xx_to_the_invite_goes_to_confirm() -> None:
    with pytest.raises(LocalProtocolError):
        early_dialog().on_response(uac_response(200))


def test_final_error_to_the_invite_ends_the_early_dialog() -> None:
    # 13.2.2.3: a non-2xx final response terminates the early dialogs.
    dialog = early_dialog()
    assert dialog.on_response(uac_response(486)) is DialogCheck.TERMINATED
    assert dialog.is_terminated


def test_2xx_to_reinvite_refreshes_the_target() -> None:
    dialog = Dialog.from_uac(uac_invite(), uac_response(200))
    ok = uac_response(200, cseq="2 INVITE", contact="<sip:gw-b@203.0.113.20>")
    assert dialog.on_response(ok) is DialogCheck.TARGET_REFRESHED
    assert dialog.remote_target == "sip:gw-b@203.0.113.20"
    # Record-Route in a response inside the dialog does not touch the route set.
    assert dialog.route_set == ["<sip:near.example.net;lr>", "<sip:far.example.net;lr>"]


def test_2xx_to_update_refreshes_the_target() -> None:
    dialog = early_dialog()
    ok = uac_response(200, cseq="2 UPDATE", contact="<sip:gw-b@203.0.113.21>")
    assert dialog.on_response(ok) is DialogCheck.TARGET_REFRESHED
    assert dialog.remote_target == "sip:gw-b@203.0.113.21"
    assert dialog.is_early


def test_error_to_reinvite_and_2xx_to_others_keep_the_target() -> None:
    dialog = Dialog.from_uac(uac_invite(), uac_response(200))
    failed = uac_response(488, cseq="2 INVITE", contact="<sip:gw-b@203.0.113.20>")
    assert dialog.on_response(failed) is DialogCheck.ACCEPTED
    info = uac_response(200, cseq="3 INFO", contact="<sip:gw-b@203.0.113.20>")
    assert dialog.on_response(info) is DialogCheck.ACCEPTED
    assert dialog.remote_target == "sip:gw-a@203.0.113.10:5060"
    assert dialog.is_confirmed


def test_response_for_another_dialog_is_our_bug() -> None:
    with pytest.raises(LocalProtocolError):
        early_dialog().on_response(uac_response(180, to_tag="fork-b"))
