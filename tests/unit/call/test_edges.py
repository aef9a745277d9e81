"""Races and less common shapes of a call: retransmissions, a BYE in the early dialog, a
CANCEL that comes too late, an INVITE without SDP, early media, a 2xx without SDP, a
re-INVITE while another is pending (RFC 3261 sections 9, 13.2.2.4, 14.2, 15; RFC 3264;
RFC 6026)."""

from __future__ import annotations

import pytest

from b2bua.call.call import Call
from b2bua.call.records import Disposition
from b2bua.registrar.settings import Extension
from media.commands import CloseSession, OpenSession, Side, SwitchLegB, UpdateRemote

from .harness import (
    MEDIA_HOST,
    PASSWORDS,
    RTP_PORT_MAX,
    RTP_PORT_MIN,
    T1,
    Net,
    Phone,
    answered_call,
    connection_of,
)

TIMEOUT = 64 * T1


def _opened(net: Net) -> OpenSession:
    [(_, opened)] = net.media_of(OpenSession)
    assert isinstance(opened, OpenSession)
    return opened


def test_a_retransmitted_invite_is_absorbed() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call = caller.dial("0102")
    incoming = callee.incoming()
    incoming.ring()
    caller.take("180 INVITE")
    net.run_until(0.5)
    caller.send(call.invite)  # the caller did not hear the 180
    assert net.times("180 INVITE", to=caller) == [0.0, 0.5]  # sent again, the same
    assert net.times("INVITE", to=callee) == [0.0]
    assert len(net.media_of(OpenSession)) == 1
    assert net.calls()["active"] == 1


def test_retransmitted_200s_get_the_same_ack_again() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call = caller.dial("0102")
    incoming = callee.incoming()
    incoming.ring()
    first = incoming.answer()
    ack = callee.take_request("ACK")
    caller.take("180 INVITE")
    call.ack(caller.take_response("200 INVITE"))
    net.run_until(0.5)
    callee.send(first)  # our ACK was lost: the callee sends its 200 again
    assert net.times("ACK", to=callee) == [0.0, 0.5]
    assert callee.duplicates == 1
    assert ack.uri == callee.contact
    assert net.times("200 INVITE", to=caller) == [0.0]
    caller.assert_nothing()
    assert net.calls()["active"] == 1


def test_a_late_fork_answer_retransmitted_is_acked_again_and_byed_once() -> None:
    net = Net()
    caller = net.phone("0101")
    desk, mobile = net.phone("0102"), net.phone("0102")
    caller.dial("0102")
    on_desk, on_mobile = desk.incoming(), mobile.incoming()
    on_desk.ring()
    on_mobile.ring()
    on_desk.answer()
    cancel = mobile.take_request("CANCEL")
    late = on_mobile.answer()
    on_mobile.respond(200, request=cancel)
    mobile.take("ACK")
    mobile.take("BYE")
    net.run_until(0.5)
    mobile.send(late)
    assert net.times("ACK", to=mobile) == [0.0, 0.5]
    assert net.times("BYE", to=mobile) == [0.0, 0.5]  # 0.5: Timer E, not a second BYE
    assert len({s.data for s in net.trace if s.label == "BYE" and s.peer == mobile.peer}) == 1


def test_one_fork_busy_the_other_answers() -> None:
    net = Net()
    caller = net.phone("0101")
    desk, mobile = net.phone("0102"), net.phone("0102")
    call = caller.dial("0102")
    on_desk, on_mobile = desk.incoming(), mobile.incoming()
    on_mobile.ring()
    net.run_until(1.0)
    on_desk.respond(486)
    desk.take("ACK")
    assert caller.labels() == ["180 INVITE"]  # the hunt goes on
    net.run_until(3.0)
    on_mobile.answer()
    caller.take("180 INVITE")
    call.ack(caller.take_response("200 INVITE"))
    mobile.take("ACK")
    assert net.calls()["active"] == 1


def test_a_silent_fork_is_not_cancelled_before_it_speaks_and_times_out() -> None:
    """RFC 3261 section 9.1: no CANCEL before a provisional response; the unanswered
    INVITE then ends at Timer B without disturbing the bridged call."""
    net = Net()
    caller = net.phone("0101")
    desk, mobile = net.phone("0102"), net.phone("0102")
    call = caller.dial("0102")
    on_desk = desk.incoming()
    mobile.incoming()
    net.run_until(1.0)
    on_desk.answer()
    desk.take("ACK")
    call.ack(caller.take_response("200 INVITE"))
    net.run_until(TIMEOUT)
    assert net.times("CANCEL") == []
    mobile.assert_nothing()
    assert net.calls()["active"] == 1
    call.bye()
    caller.take("200 BYE")
    on_desk.respond(200, request=desk.take_request("BYE"))
    net.assert_idle()


def _early_bye(net: Net) -> tuple[Phone, Phone]:
    caller, callee = net.phone("0101"), net.phone("0102")
    call = caller.dial("0102")
    incoming = callee.incoming()
    incoming.ring()
    ringing = caller.take_response("180 INVITE")
    net.run_until(2.0)
    call.follow(ringing).send("BYE")
    assert caller.labels() == ["200 BYE", "487 INVITE"]
    caller.take("200 BYE")
    call.ack(caller.take_response("487 INVITE"))
    cancel = callee.take("CANCEL")
    assert cancel.at == 2.0
    incoming.respond(200, request=cancel.request())
    incoming.respond(487)
    callee.take("ACK")
    return caller, callee


def test_caller_bye_in_the_early_dialog_ends_the_call() -> None:
    """RFC 3261 section 15: the caller MAY send BYE in an early dialog; the INVITE then
    gets 487 (15.1.2) and the callee's INVITE is cancelled."""
    net = Net()
    _early_bye(net)
    assert len(net.records) == 1
    net.assert_idle()


def test_caller_bye_in_the_early_dialog_is_recorded_as_cancelled() -> None:
    net = Net()
    _early_bye(net)
    [(at, record)] = net.records
    assert at == 2.0
    assert record.caller_status == 487
    assert record.disposition is Disposition.CANCELLED


def test_cancel_after_the_answer_has_no_effect() -> None:
    """RFC 3261 section 9.2: once the final response is sent, CANCEL changes nothing (it
    still gets 200 while the INVITE transaction is there)."""
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call = caller.dial("0102")
    incoming = callee.incoming()
    incoming.ring()
    incoming.answer()
    callee.take("ACK")
    caller.take("180 INVITE")
    ok = caller.take_response("200 INVITE")
    call.cancel()  # crossed the 200 on the wire
    assert caller.take_response("200 CANCEL").status == 200
    call.ack(ok)
    net.run(5.0)
    caller.assert_nothing()
    callee.assert_nothing()
    assert net.calls()["active"] == 1


def test_invite_without_sdp_offer_in_the_200_answer_in_the_ack() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call = caller.dial("0102", body=b"")
    opened = _opened(net)
    assert opened.expected_a is None
    incoming = callee.incoming()
    assert incoming.offer == b""
    incoming.ring()
    incoming.answer()  # the callee's offer
    callee.assert_nothing()  # the ACK waits for the caller's answer
    caller.take("180 INVITE")
    ok = caller.take_response("200 INVITE")
    assert connection_of(ok.body) == (MEDIA_HOST, opened.rtp_port_a, "sendrecv")
    assert call.dialog is None
    net.run(0.1)
    # The caller's answer goes in its ACK.
    contact = ok.contacts[0].uri
    ack = caller.build(
        "ACK",
        str(contact),
        from_=call.invite.headers.get("from") or "",
        to=ok.headers.get("to") or "",
        call_id=call.invite.call_id,
        cseq=call.invite.cseq.number,
        body=caller.sdp(),
        content_type="application/sdp",
    )
    caller.send(ack)
    to_callee = callee.take("ACK")
    assert to_callee.at == 0.1
    assert connection_of(to_callee.request().body) == (MEDIA_HOST, opened.rtp_port_b, "sendrecv")
    updates = [m for _, m in net.media_of(UpdateRemote)]
    assert (
        UpdateRemote(session_id=opened.session_id, side=Side.A, expected=caller.media_address)
        in updates
    )
    assert (
        UpdateRemote(session_id=opened.session_id, side=Side.B, expected=callee.media_address)
        in updates
    )


def test_early_media_183_with_sdp_is_relayed() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call = caller.dial("0102")
    opened = _opened(net)
    incoming = callee.incoming()
    incoming.respond(183, body=callee.sdp())
    progress = caller.take_response("183 INVITE")
    assert connection_of(progress.body) == (MEDIA_HOST, opened.rtp_port_a, "sendrecv")
    assert [m for _, m in net.media_of(UpdateRemote)] == [
        UpdateRemote(session_id=opened.session_id, side=Side.B, expected=callee.media_address)
    ]
    net.run(4.0)
    incoming.answer()
    ok = caller.take_response("200 INVITE")
    assert connection_of(ok.body) == (MEDIA_HOST, opened.rtp_port_a, "sendrecv")
    call.ack(ok)
    callee.take("ACK")


def test_a_200_without_sdp_to_an_offer_fails_the_call_with_502() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call = caller.dial("0102")
    incoming = callee.incoming()
    incoming.ring()
    caller.take("180 INVITE")
    incoming.respond(200)  # no answer to our offer (RFC 3264 violated)
    assert callee.labels() == ["ACK", "BYE"]
    callee.take("ACK")
    incoming.respond(200, request=callee.take_request("BYE"))
    failed = caller.take_response("502 INVITE")
    call.ack(failed)
    [(_, record)] = net.records
    assert record.disposition is Disposition.FAILED
    net.assert_idle()


def test_a_second_reinvite_while_one_is_pending_gets_491() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call, incoming = answered_call(caller, callee)
    assert call.dialog is not None
    call.dialog.send("INVITE", body=caller.sdp(direction="sendonly", version=2))
    relayed = callee.take_request("INVITE")
    # Glare: the callee re-INVITEs too before answering ours (RFC 3261 section 14.2).
    incoming.dialog.send("INVITE", body=callee.sdp(direction="sendonly", version=2))
    assert callee.take_response("491 INVITE").status == 491
    caller.assert_nothing()
    incoming.dialog.reply(relayed, 200, body=callee.sdp(direction="recvonly", version=3))
    callee.take("ACK")
    call.dialog.ack(caller.take_response("200 INVITE"))
    assert net.calls()["active"] == 1


def test_refer_is_not_relayed() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call, _ = answered_call(caller, callee)
    assert call.dialog is not None
    call.dialog.send("REFER", extra=("Refer-To: <sip:0103@pbx.test>",))
    refused = caller.take_response("405 REFER")
    assert refused.status == 405
    callee.assert_nothing()


def test_snapshot_shows_the_call_while_it_rings_and_talks() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call = caller.dial("0102")
    incoming = callee.incoming()
    [calling] = net.call_list()
    assert calling["state"] == "ringing"
    assert calling["caller"] == "0101"
    peer = f"udp:{callee.host}:{callee.port}"
    assert calling["callees"] == [
        {"leg": 1, "to": "0102", "peer": peer, "state": "calling", "status": None}
    ]
    incoming.ring()
    caller.take_response("180 INVITE")
    [ringing] = net.call_list()
    assert ringing["callees"] == [
        {"leg": 1, "to": "0102", "peer": peer, "state": "ringing", "status": None}
    ]
    net.run_until(2.0)
    incoming.answer()
    call.ack(caller.take_response("200 INVITE"))
    [talking] = net.call_list()
    assert (talking["state"], talking["answered_by"], talking["age"]) == ("answered", "0102", 2.0)
    assert talking["callees"] == [
        {"leg": 1, "to": "0102", "peer": peer, "state": "answered", "status": 200}
    ]
    assert net.ports_allocated() == 2


def test_both_sides_hang_up_at_once() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call, incoming = answered_call(caller, callee)
    net.run_until(7.0)
    call.bye()
    incoming.bye()  # crossed the switch's BYE on the wire
    assert caller.take_response("200 BYE").status == 200
    to_callee = callee.take_request("BYE")
    callee.take("200 BYE")  # 481 would do too (RFC 3261 15.1.2): either ends it
    incoming.respond(481, request=to_callee)  # the callee's dialog is gone already
    caller.assert_nothing()
    [(_, record)] = net.records
    assert record.duration == 7.0
    net.assert_idle()


def test_the_callee_answers_after_the_ring_timeout_crossed_it() -> None:
    net = Net(ring_timeout=10.0)
    caller, callee = net.phone("0101"), net.phone("0102")
    call = caller.dial("0102")
    incoming = callee.incoming()
    incoming.ring()
    caller.take("180 INVITE")
    net.run_until(10.0)
    cancel = callee.take_request("CANCEL")
    call.ack(caller.take_response("480 INVITE"))
    net.run_until(10.01)
    incoming.answer()
    incoming.respond(200, request=cancel)
    assert callee.labels() == ["ACK", "BYE"]
    callee.take("ACK")
    incoming.respond(200, request=callee.take_request("BYE"))
    caller.assert_nothing()
    [(_, record)] = net.records
    assert record.disposition is Disposition.NO_ANSWER
    net.assert_idle()


def test_caller_cancel_reaches_every_ringing_fork() -> None:
    net = Net()
    caller = net.phone("0101")
    desk, mobile = net.phone("0102"), net.phone("0102")
    call = caller.dial("0102")
    on_desk, on_mobile = desk.incoming(), mobile.incoming()
    on_desk.ring()
    on_mobile.ring()
    net.run_until(3.0)
    call.cancel()
    for phone, incoming in ((desk, on_desk), (mobile, on_mobile)):
        cancel = phone.take("CANCEL")
        assert cancel.at == 3.0
        incoming.respond(200, request=cancel.request())
        incoming.respond(487)
        phone.take("ACK")
    caller.take("180 INVITE")
    caller.take("200 CANCEL")
    call.ack(caller.take_response("487 INVITE"))
    net.assert_idle()


def test_reinvite_without_sdp_is_relayed_offer_in_200_answer_in_ack() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call, incoming = answered_call(caller, callee)
    assert call.dialog is not None
    [(_, opened)] = net.media_of(OpenSession)
    assert isinstance(opened, OpenSession)
    call.dialog.send("INVITE")  # no SDP: asks for an offer
    relayed = callee.take_request("INVITE")
    assert relayed.body == b""
    incoming.dialog.reply(relayed, 200, body=callee.sdp(version=2))
    callee.assert_nothing()  # the ACK must wait for the caller's answer
    ok = caller.take_response("200 INVITE")
    assert connection_of(ok.body) == (MEDIA_HOST, opened.rtp_port_a, "sendrecv")
    ack = call.dialog.request("ACK", cseq=ok.cseq.number, body=caller.sdp(version=2))
    caller.send(ack)
    to_callee = callee.take_request("ACK")
    assert to_callee.cseq.number == relayed.cseq.number
    assert connection_of(to_callee.body) == (MEDIA_HOST, opened.rtp_port_b, "sendrecv")


def test_no_free_media_ports_gets_503() -> None:
    extensions = {
        number: Extension(name=number, password=password, max_calls=100)
        for number, password in PASSWORDS.items()
    }
    net = Net(extensions=extensions)
    caller, callee = net.phone("0101"), net.phone("0102")
    calls = (RTP_PORT_MAX - RTP_PORT_MIN + 1) // 4  # two RTP/RTCP pairs per call
    for _ in range(calls):
        caller.dial("0102")
        callee.incoming()
    attempt = caller.dial("0102")
    refused = caller.take_response("503 INVITE")
    attempt.ack(refused)
    callee.assert_nothing()
    assert net.ports_allocated() == 2 * calls


def test_a_target_refresh_moves_where_the_bye_goes() -> None:
    """RFC 3261 section 12.2.1.2: the Contact of a 2xx to a re-INVITE is the new remote
    target."""
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call, incoming = answered_call(caller, callee)
    assert call.dialog is not None
    call.dialog.send("INVITE", body=caller.sdp(direction="sendonly", version=2))
    relayed = callee.take_request("INVITE")
    callee.contact = f"sip:0102@{callee.host}:5062;moved=1"
    incoming.dialog.reply(relayed, 200, body=callee.sdp(direction="recvonly", version=2))
    assert callee.take_request("ACK").uri == callee.contact
    call.dialog.ack(caller.take_response("200 INVITE"))
    call.bye()
    caller.take("200 BYE")
    assert callee.take_request("BYE").uri == callee.contact


def test_caller_bye_while_its_reinvite_is_pending_at_the_callee() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call, incoming = answered_call(caller, callee)
    assert call.dialog is not None
    reinvite = call.dialog.send("INVITE", body=caller.sdp(direction="sendonly", version=2))
    relayed = callee.take_request("INVITE")
    net.run_until(1.0)
    call.bye()
    # RFC 3261 section 15.1.2: the pending re-INVITE gets 487, the BYE 200.
    assert caller.labels() == ["200 BYE", "487 INVITE"]
    caller.take("200 BYE")
    call.dialog.ack_failure(reinvite, caller.take_response("487 INVITE"))
    bye = callee.take_request("BYE")
    # The callee's 200 to the re-INVITE crosses our BYE: it is ACKed all the same.
    incoming.dialog.reply(relayed, 200, body=callee.sdp(direction="recvonly", version=2))
    assert callee.take_request("ACK").cseq.number == relayed.cseq.number
    incoming.respond(200, request=bye)
    net.assert_idle()


def test_caller_bye_before_its_ack() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call = caller.dial("0102")
    incoming = callee.incoming()
    incoming.answer()
    callee.take("ACK")
    ok = caller.take_response("200 INVITE")
    call.follow(ok).send("BYE")  # the ACK was lost; the caller hangs up
    caller.take("200 BYE")
    incoming.respond(200, request=callee.take_request("BYE"))
    assert len(net.records) == 1
    net.assert_idle()


def test_callee_bye_before_the_callers_ack_waits_for_the_ack() -> None:
    """RFC 3261 section 15: the callee's side of the switch must not send BYE before
    the caller's ACK (or its timeout)."""
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call = caller.dial("0102")
    incoming = callee.incoming()
    incoming.answer()
    callee.take("ACK")
    ok = caller.take_response("200 INVITE")
    incoming.bye()
    callee.take("200 BYE")
    caller.assert_nothing()
    net.run_until(0.3)
    call.ack(ok)
    bye = caller.take("BYE")
    assert bye.at == 0.3
    caller.respond(bye.request(), 200)
    net.assert_idle()


def test_forked_invite_without_sdp() -> None:
    net = Net()
    caller = net.phone("0101")
    desk, mobile = net.phone("0102"), net.phone("0102")
    call = caller.dial("0102", body=b"")
    on_desk, on_mobile = desk.incoming(), mobile.incoming()
    assert on_desk.offer == on_mobile.offer == b""
    on_desk.ring()
    on_mobile.ring()
    on_mobile.answer()  # the mobile's offer
    on_desk.respond(200, request=desk.take_request("CANCEL"))
    on_desk.respond(487)
    desk.take("ACK")
    caller.take("180 INVITE")
    ok = caller.take_response("200 INVITE")
    ack = call.follow(ok).request("ACK", cseq=ok.cseq.number, body=caller.sdp())
    caller.send(ack)
    to_mobile = mobile.take_request("ACK")
    assert connection_of(to_mobile.body)[0] == MEDIA_HOST
    assert net.calls()["active"] == 1


def test_early_media_from_one_fork_then_the_other_answers() -> None:
    net = Net()
    caller = net.phone("0101")
    desk, mobile = net.phone("0102"), net.phone("0102")
    call = caller.dial("0102")
    opened = _opened(net)
    on_desk, on_mobile = desk.incoming(), mobile.incoming()
    on_desk.respond(183, body=desk.sdp())
    caller.take("183 INVITE")
    on_mobile.ring()
    net.run_until(2.0)
    on_mobile.answer()
    ok = caller.take_response("200 INVITE")
    assert connection_of(ok.body) == (MEDIA_HOST, opened.rtp_port_a, "sendrecv")
    call.ack(ok)
    # The caller heard the desk's early media: the mobile's stream is made to continue it.
    assert net.media[-1] == (
        2.0,
        SwitchLegB(session_id=opened.session_id, expected_b=mobile.media_address),
    )
    desk.take("CANCEL")


def test_an_answer_given_in_the_183_stands_when_the_200_has_none() -> None:
    """RFC 3261 section 13.2.1: an answer in an unreliable 1xx is repeated in the 2xx,
    but a 2xx without SDP after it still completes the call with that answer."""
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call = caller.dial("0102")
    opened = _opened(net)
    incoming = callee.incoming()
    incoming.respond(183, body=callee.sdp())
    early = caller.take_response("183 INVITE")
    incoming.respond(200)
    callee.take("ACK")
    ok = caller.take_response("200 INVITE")
    assert ok.body == early.body
    assert connection_of(ok.body) == (MEDIA_HOST, opened.rtp_port_a, "sendrecv")
    call.ack(ok)
    assert net.calls()["active"] == 1


def test_a_losing_forks_offer_in_its_2xx_is_answered_in_the_ack_before_the_bye() -> None:
    """RFC 3261 section 13.2.2.4: "If the offer in the 2xx response is not acceptable,
    the UAC core MUST generate a valid answer in the ACK and then send a BYE
    immediately" (RFC 3264 section 6: a rejected stream has port 0)."""
    net = Net()
    caller = net.phone("0101")
    desk, mobile = net.phone("0102"), net.phone("0102")
    caller.dial("0102", body=b"")
    on_desk, on_mobile = desk.incoming(), mobile.incoming()
    on_desk.ring()
    on_mobile.ring()
    on_desk.answer()
    cancel = mobile.take_request("CANCEL")
    on_mobile.answer()  # crossed the CANCEL; carries the mobile's offer
    on_mobile.respond(200, request=cancel)
    ack, bye = mobile.take_request("ACK"), mobile.take_request("BYE")
    assert bye.call_id == ack.call_id
    assert ack.content_type == "application/sdp"
    offered = [line for line in on_mobile.phone.sdp().decode().split("\r\n") if line[:2] == "m="]
    answered = [line for line in ack.body.decode().split("\r\n") if line[:2] == "m="]
    assert len(answered) == len(offered)


def test_a_bug_in_a_call_drops_that_call_and_frees_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A crash mid-call leaks no port: the call is dropped (media closed, ports freed,
    record written), the switch serves on, and the dropped dialog gets 481."""
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call, incoming = answered_call(caller, callee)
    opened = _opened(net)

    def broken(*args: object) -> list[object]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Call, "on_request", broken)
    incoming.bye()
    monkeypatch.undo()
    assert net.media[-1][1] == CloseSession(session_id=opened.session_id)
    [(_, record)] = net.records
    assert record.end_reason == "internal error"
    assert net.calls()["active"] == 0
    net.assert_idle()
    # The dialog is gone: the caller's BYE gets 481; a new call still goes through.
    assert call.dialog is not None
    call.dialog.send("BYE")
    assert caller.take_response("481 BYE").status == 481
    caller.dial("0102")
    assert callee.incoming().invite.method == "INVITE"


def test_a_bug_before_the_answer_gives_the_caller_500_not_silence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The caller of a call dropped by a bug while ringing gets a final response (500
    with Retry-After) instead of retransmitting its INVITE until it times out."""
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call = caller.dial("0102")
    incoming = callee.incoming()

    def broken(*args: object) -> list[object]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Call, "on_response", broken)
    incoming.ring()
    monkeypatch.undo()
    failed = caller.take_response("500 INVITE")
    assert failed.headers.get("retry-after") == "5"
    call.ack(failed)
    [(_, record)] = net.records
    assert record.end_reason == "internal error"
    net.assert_idle()
