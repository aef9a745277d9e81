"""Calls through the switch on a virtual clock: answer, hang-up on either side, CANCEL,
forking, failures and timeouts (RFC 3261 sections 9, 13, 15, 16.7; RFC 6026)."""

from __future__ import annotations

import pytest

from b2bua.call.records import Disposition
from media.commands import CloseSession, OpenSession, Side, UpdateRemote

from .harness import (
    MEDIA_HOST,
    REALM,
    T1,
    WALL,
    InCall,
    Net,
    OutCall,
    Phone,
    answered_call,
    connection_of,
)

TIMEOUT = 64 * T1  # Timer B, and the wait for a final response after CANCEL (9.1)


def test_basic_call_caller_hangs_up() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call = caller.dial("0102")

    incoming = callee.incoming(at=0.0)
    opened = _assert_opened_and_offered(net, call, incoming)

    net.run_until(0.2)  # 100 Trying to the caller at 200 ms (17.2.1): nothing else
    assert net.times("100 INVITE", to=caller) == [0.2]
    net.run_until(1.0)
    incoming.ring()
    ringing = caller.take_response("180 INVITE")
    assert ringing.to.tag is not None
    net.run_until(3.0)
    incoming.answer()

    # The switch ACKs the callee's 200 itself, and answers the caller with port A.
    assert callee.take("ACK").at == 3.0
    ok = caller.take("200 INVITE")
    assert ok.at == 3.0
    answer = ok.response()
    assert answer.to.tag == ringing.to.tag
    assert connection_of(answer.body) == (MEDIA_HOST, opened.rtp_port_a, "sendrecv")
    assert callee.host.encode() not in ok.data  # nor anything of the callee the caller
    assert [m for _, m in net.media_of(UpdateRemote)] == [
        UpdateRemote(session_id=opened.session_id, side=Side.B, expected=callee.media_address)
    ]
    call.ack(answer)
    callee.assert_nothing()  # the caller's ACK is not passed on: the switch sent its own
    assert net.calls()["active"] == 1

    net.run_until(13.0)
    assert net.times("200 INVITE", to=caller) == [3.0]  # the ACK stopped the 2xx
    assert net.times("ACK", to=callee) == [3.0]
    call.bye()
    assert caller.take("200 BYE").at == 13.0
    bye = callee.take_request("BYE")
    assert bye.call_id == incoming.invite.call_id
    assert net.times("BYE", to=callee) == [13.0]
    assert net.media[-1] == (13.0, CloseSession(session_id=opened.session_id))
    assert net.calls()["finishing"] == 1  # until the callee answers the BYE
    incoming.respond(200, request=bye)

    _assert_record_of_basic_call(net, call.invite.call_id)
    net.assert_idle()
    net.run(100.0)
    caller.assert_nothing()
    callee.assert_nothing()
    assert net.switch.transaction_count == 0


def _assert_opened_and_offered(net: Net, call: OutCall, incoming: InCall) -> OpenSession:
    """The media session opens at once, expecting the caller's media; the callee is
    offered the relay, port B, with the caller's codecs, in a dialog of its own."""
    caller, callee = call.phone, incoming.phone
    assert incoming.invite.uri == callee.contact
    assert incoming.invite.to.uri.user == "0102"  # type: ignore[union-attr]
    assert incoming.invite.from_.uri.user == "0101"  # type: ignore[union-attr]
    assert incoming.invite.call_id != call.invite.call_id
    [(at, opened)] = net.media_of(OpenSession)
    assert isinstance(opened, OpenSession)
    assert at == 0.0
    assert opened.local_host == MEDIA_HOST
    assert opened.expected_a == caller.media_address
    assert opened.expected_b is None
    host, port, direction = connection_of(incoming.offer)
    assert (host, port, direction) == (MEDIA_HOST, opened.rtp_port_b, "sendrecv")
    assert b"a=rtpmap:101 telephone-event/8000" in incoming.offer
    # Nothing of the caller reaches the callee: no address, Call-ID or credentials.
    wire = incoming.invite.to_bytes()
    assert caller.host.encode() not in wire
    assert call.invite.call_id.encode() not in wire
    assert b"Proxy-Authorization" not in wire
    return opened


def _assert_record_of_basic_call(net: Net, call_id: str) -> None:
    [(at, record)] = net.records
    assert at == 13.0
    assert record.disposition is Disposition.ANSWERED
    assert record.duration == 10.0
    assert (record.started_at, record.answered_at, record.ended_at) == (WALL, WALL + 3, WALL + 13)
    assert (record.caller, record.callee, record.answered_by) == ("0101", "0102", "0102")
    assert (record.caller_status, record.callee_status) == (200, 200)
    assert record.call_id == call_id
    assert record.end_reason == "caller BYE"


def test_callee_hangs_up() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call, incoming = answered_call(caller, callee)
    net.run_until(20.0)
    incoming.bye()
    assert callee.take("200 BYE").at == 20.0
    bye = caller.take("BYE")
    assert bye.at == 20.0
    assert call.dialog is not None
    assert bye.request().to.tag == call.invite.from_.tag  # the caller's dialog, reversed
    assert bye.request().call_id == call.invite.call_id
    assert net.media[-1][1] == CloseSession(session_id=net.media[0][1].session_id)
    caller.respond(bye.request(), 200)
    [(_, record)] = net.records
    assert (record.disposition, record.duration, record.end_reason) == (
        Disposition.ANSWERED,
        20.0,
        "callee BYE",
    )
    net.assert_idle()


def test_cancel_while_ringing() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call = caller.dial("0102")
    incoming = callee.incoming()
    incoming.ring()
    caller.take_response("180 INVITE")
    net.run_until(4.0)
    call.cancel()
    assert caller.labels() == ["200 CANCEL", "487 INVITE"]
    caller.take("200 CANCEL")
    call.ack(caller.take_response("487 INVITE"))
    cancel = callee.take("CANCEL")
    assert cancel.at == 4.0
    assert cancel.request().top_via.branch == incoming.invite.top_via.branch
    assert cancel.request().cseq.number == incoming.invite.cseq.number
    net.run_until(4.1)
    incoming.respond(200, request=cancel.request())
    incoming.respond(487)
    assert callee.take("ACK").at == 4.1  # the 487 is ACKed by the transaction
    [(at, record)] = net.records
    assert at == 4.0
    assert record.disposition is Disposition.CANCELLED
    assert record.caller_status == 487
    assert record.duration == 0.0
    assert record.answered_at is None
    net.assert_idle()
    net.run(100.0)
    caller.assert_nothing()
    callee.assert_nothing()


def test_cancel_waits_for_a_provisional_response() -> None:
    """RFC 3261 section 9.1: a CANCEL must not be sent before a provisional response."""
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call = caller.dial("0102")
    incoming = callee.incoming()
    net.run_until(1.0)
    call.cancel()
    caller.take("200 CANCEL")
    call.ack(caller.take_response("487 INVITE"))
    net.run_until(2.0)
    assert net.times("CANCEL") == []
    callee.assert_nothing()  # only retransmissions of the INVITE so far
    assert net.times("INVITE", to=callee) == [0.0, 0.5, 1.5]
    incoming.ring()
    cancel = callee.take("CANCEL")
    assert cancel.at == 2.0
    incoming.respond(200, request=cancel.request())
    incoming.respond(487)
    callee.take("ACK")
    assert net.records[0][1].disposition is Disposition.CANCELLED
    net.assert_idle()


def test_forking_first_answer_wins_and_a_late_answer_is_acked_then_byed() -> None:
    net = Net()
    caller = net.phone("0101")
    desk, mobile = net.phone("0102"), net.phone("0102")
    call = caller.dial("0102")
    on_desk, on_mobile = desk.incoming(at=0.0), mobile.incoming(at=0.0)
    assert on_desk.invite.call_id != on_mobile.invite.call_id
    assert on_desk.invite.uri == desk.contact
    assert on_mobile.invite.uri == mobile.contact
    assert connection_of(on_desk.offer)[1] == connection_of(on_mobile.offer)[1]
    on_desk.ring()
    on_mobile.ring()
    assert caller.labels() == ["180 INVITE"]  # one 180 for the caller
    caller.take("180 INVITE")

    net.run_until(5.0)
    on_desk.answer()
    desk.take("ACK")
    cancel = mobile.take("CANCEL")
    assert cancel.at == 5.0
    call.ack(caller.take_response("200 INVITE"))

    # The mobile answered in the same millisecond: its 200 crosses our CANCEL.
    on_mobile.answer()
    on_mobile.respond(200, request=cancel.request())
    assert mobile.labels() == ["ACK", "BYE"]
    ack, bye = mobile.take("ACK"), mobile.take("BYE")
    assert ack.at == bye.at == 5.0
    assert ack.request().call_id == bye.request().call_id == on_mobile.invite.call_id
    assert bye.request().to.tag == on_mobile.tag
    on_mobile.respond(200, request=bye.request())

    assert net.times("200 INVITE", to=caller) == [5.0]
    assert net.calls()["active"] == 1
    caller.assert_nothing()
    desk.assert_nothing()
    net.run_until(10.0)
    call.bye()
    caller.take("200 BYE")
    desk_bye = desk.take_request("BYE")
    on_desk.respond(200, request=desk_bye)
    [(_, record)] = net.records
    assert (record.disposition, record.answered_by, record.duration) == (
        Disposition.ANSWERED,
        "0102",
        5.0,
    )
    net.assert_idle()
    mobile.assert_nothing()


def test_forking_a_late_answer_after_the_487_window_is_still_released() -> None:
    """The loser answers a little later (the CANCEL crossed it on the wire)."""
    net = Net()
    caller = net.phone("0101")
    desk, mobile = net.phone("0102"), net.phone("0102")
    call = caller.dial("0102")
    on_desk, on_mobile = desk.incoming(), mobile.incoming()
    on_desk.ring()
    on_mobile.ring()
    on_desk.answer()
    desk.take("ACK")
    cancel = mobile.take_request("CANCEL")
    caller.take("180 INVITE")
    call.ack(caller.take_response("200 INVITE"))
    net.run_until(0.05)
    on_mobile.answer()
    on_mobile.respond(200, request=cancel)
    assert [(s.label, s.at) for s in mobile.inbox] == [("ACK", 0.05), ("BYE", 0.05)]
    assert net.times("200 INVITE", to=caller) == [0.0]


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [(486, None, 486), (603, 486, 603), (486, 603, 603), (404, 486, 404), (480, 503, 480)],
)
def test_every_callee_fails_the_caller_gets_the_best_response(
    first: int, second: int | None, expected: int
) -> None:
    """RFC 3261 section 16.7: a 6xx wins; else the lowest class; a timeout (408, no
    response at all until Timer B) loses to any answer a callee chose."""
    net = Net()
    caller = net.phone("0101")
    one, two = net.phone("0102"), net.phone("0102")
    call = caller.dial("0102")
    to_one, to_two = one.incoming(), two.incoming()
    net.run_until(1.0)
    to_one.respond(first)
    assert one.take("ACK").at == 1.0
    if second is not None:
        net.run_until(2.0)
        to_two.respond(second)
        two.take("ACK")
        decided = 2.0
    else:
        decided = TIMEOUT  # Timer B of the second INVITE
        net.run_until(TIMEOUT - 0.01)
        caller.assert_nothing()
        net.run_until(TIMEOUT)
    final = caller.take(f"{expected} INVITE")
    assert final.at == decided
    call.ack(final.response())
    [(_, record)] = net.records
    assert record.caller_status == expected
    assert record.callee_status == expected
    net.assert_idle()


def test_nobody_answers_ring_timeout() -> None:
    net = Net(ring_timeout=20.0)
    caller, callee = net.phone("0101"), net.phone("0102")
    call = caller.dial("0102")
    incoming = callee.incoming()
    incoming.ring()
    caller.take("180 INVITE")
    net.run_until(19.999)
    callee.assert_nothing()
    caller.assert_nothing()
    net.run_until(20.0)
    cancel = callee.take("CANCEL")
    assert cancel.at == 20.0
    final = caller.take("480 INVITE")
    assert final.at == 20.0
    call.ack(final.response())
    net.run_until(20.2)
    incoming.respond(200, request=cancel.request())
    incoming.respond(487)
    callee.take("ACK")
    [(_, record)] = net.records
    assert record.disposition is Disposition.NO_ANSWER
    assert record.caller_status == 480
    assert record.end_reason == "ring timeout"
    net.assert_idle()


def _ringing_then_cancelled(net: Net) -> tuple[Phone, Phone, InCall]:
    caller, callee = net.phone("0101"), net.phone("0102")
    call = caller.dial("0102")
    incoming = callee.incoming()
    incoming.ring()
    caller.take("180 INVITE")
    net.run_until(2.0)
    call.cancel()
    caller.take("200 CANCEL")
    call.ack(caller.take_response("487 INVITE"))
    cancel = callee.take_request("CANCEL")
    incoming.respond(200, request=cancel)  # ... and never the 487 (pyVoIP does this)
    return caller, callee, incoming


def test_a_callee_that_ignores_cancel_is_given_up_64_t1_after_the_cancel() -> None:
    net = Net()
    _, callee, _ = _ringing_then_cancelled(net)
    assert net.records[0][0] == 2.0
    net.run_until(2.0 + TIMEOUT - 0.01)
    assert net.calls()["finishing"] == 1
    net.run_until(2.0 + TIMEOUT)
    net.assert_idle()
    net.run(100.0)
    callee.assert_nothing()


def test_a_callee_that_answers_after_ignoring_cancel_gets_ack_then_bye() -> None:
    net = Net()
    _, callee, incoming = _ringing_then_cancelled(net)
    net.run_until(20.0)
    incoming.answer()
    assert [(s.label, s.at) for s in callee.inbox] == [("ACK", 20.0), ("BYE", 20.0)]
    callee.take("ACK")
    bye = callee.take_request("BYE")
    incoming.respond(200, request=bye)
    net.assert_idle()
    assert len(net.records) == 1


def test_domain_in_the_callee_invite() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    caller.dial("0102")
    invite = callee.incoming().invite
    assert invite.headers.get("to") == f"<sip:0102@{REALM}>"


def test_an_answer_after_the_switch_gave_up_is_discarded() -> None:
    """After 64*T1 the INVITE transaction is gone: a 2xx for it is stray and discarded
    (RFC 6026 section 8.9: an element other than a stateless proxy MUST silently discard
    a response that matches no transaction); nothing breaks."""
    net = Net()
    _, _, incoming = _ringing_then_cancelled(net)
    net.run_until(2.0 + TIMEOUT + 1.0)
    sent = len(net.trace)
    incoming.answer()
    assert len(net.trace) == sent
    net.assert_idle()


def test_the_200_to_each_side_says_what_the_switch_allows() -> None:
    """RFC 3261 section 13.3.1.4: a 2xx to an INVITE SHOULD carry Allow (phones read it
    to know whether UPDATE may be used)."""
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call = caller.dial("0102")
    incoming = callee.incoming()
    assert "UPDATE" in (incoming.invite.headers.get("allow") or "")
    incoming.answer()
    callee.take("ACK")
    ok = caller.take_response("200 INVITE")
    allow = [method.strip() for method in (ok.headers.get("allow") or "").split(",")]
    assert {"INVITE", "ACK", "CANCEL", "BYE", "UPDATE", "INFO"} <= set(allow)
    call.ack(ok)
