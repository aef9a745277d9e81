"""Calls that end because something stopped: no RTP, no ACK, a transaction that timed out
(RFC 3261 sections 13.3.1.4, 12.2.1.2, 17; RFC 5057)."""

from __future__ import annotations

import pytest

from media.commands import CloseSession, MediaSessionId, RtpTimeout

from .harness import T1, Net, answered_call

TIMEOUT = 64 * T1
SESSION = MediaSessionId("call-1")


def test_rtp_timeout_ends_an_answered_call_with_bye_on_both_legs() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call, incoming = answered_call(caller, callee)
    net.run_until(61.0)
    net.feed(RtpTimeout(session_id=SESSION, idle_for=60.0))
    to_caller, to_callee = caller.take("BYE"), callee.take("BYE")
    assert to_caller.at == to_callee.at == 61.0
    assert to_caller.request().call_id == call.invite.call_id
    assert to_callee.request().call_id == incoming.invite.call_id
    assert net.media[-1] == (61.0, CloseSession(session_id=SESSION))
    caller.respond(to_caller.request(), 200)
    callee.respond(to_callee.request(), 200)
    [(at, record)] = net.records
    assert at == 61.0
    assert record.end_reason == "RTP timeout"
    assert record.duration == 61.0
    net.assert_idle()


@pytest.mark.parametrize(("holder", "direction"), [("caller", "sendonly"), ("callee", "inactive")])
def test_rtp_timeout_is_ignored_on_hold(holder: str, direction: str) -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call, incoming = answered_call(caller, callee)
    assert call.dialog is not None
    holding, held = (call.dialog, incoming.dialog)
    if holder == "callee":
        holding, held = held, holding
    answer = "recvonly" if direction == "sendonly" else "inactive"
    holding.send("INVITE", body=holding.phone.sdp(direction=direction, version=2))
    reinvite = held.phone.take_request("INVITE")
    held.reply(reinvite, 200, body=held.phone.sdp(direction=answer, version=2))
    held.phone.take("ACK")
    holding.ack(holding.phone.take_response("200 INVITE"))
    net.run_until(120.0)
    net.feed(RtpTimeout(session_id=SESSION, idle_for=60.0))
    caller.assert_nothing()
    callee.assert_nothing()
    assert net.calls()["active"] == 1
    assert net.records == []


def test_rtp_timeout_is_ignored_on_an_rfc2543_hold() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call, incoming = answered_call(caller, callee)
    assert call.dialog is not None
    held = caller.sdp(version=2).replace(b"c=IN IP4 192.0.2.10", b"c=IN IP4 0.0.0.0")
    call.dialog.send("INVITE", body=held)
    reinvite = callee.take_request("INVITE")
    incoming.dialog.reply(reinvite, 200, body=callee.sdp(version=2))
    callee.take("ACK")
    call.dialog.ack(caller.take_response("200 INVITE"))
    net.run_until(120.0)
    net.feed(RtpTimeout(session_id=SESSION, idle_for=60.0))
    caller.assert_nothing()
    callee.assert_nothing()
    assert net.calls()["active"] == 1


def test_rtp_timeout_for_an_unknown_session_is_ignored() -> None:
    net = Net()
    assert net.feed(RtpTimeout(session_id=MediaSessionId("call-99"), idle_for=60.0)) == []


def test_rtp_timeout_before_the_answer_is_ignored() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    caller.dial("0102")
    callee.incoming().ring()
    caller.take("180 INVITE")
    net.feed(RtpTimeout(session_id=SESSION, idle_for=60.0))
    caller.assert_nothing()
    callee.assert_nothing()


def test_no_ack_from_the_caller_the_200_is_retransmitted_until_64_t1() -> None:
    """RFC 3261 section 13.3.1.4: the 2xx is sent again at T1, 2*T1, ... capped at T2,
    until 64*T1; then the session SHOULD end with a BYE."""
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    caller.dial("0102")
    incoming = callee.incoming()
    incoming.ring()
    net.run_until(2.0)
    incoming.answer()
    callee.take("ACK")
    caller.take("180 INVITE")
    caller.take("200 INVITE")
    net.run_until(2.0 + TIMEOUT)
    assert net.times("200 INVITE", to=caller) == [
        2.0,
        2.5,
        3.5,
        5.5,
        9.5,
        13.5,
        17.5,
        21.5,
        25.5,
        29.5,
        33.5,
    ]
    assert caller.take("BYE").at == 2.0 + TIMEOUT


def test_no_ack_from_the_caller_both_legs_get_bye_at_64_t1() -> None:
    """The call is dead for the caller at 64*T1 (13.3.1.4): the callee must not keep
    talking to nobody while the BYE to the caller is pending, and the record ends there."""
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    caller.dial("0102")
    incoming = callee.incoming()
    incoming.ring()
    net.run_until(2.0)
    incoming.answer()
    callee.take("ACK")
    caller.take("180 INVITE")
    caller.take("200 INVITE")
    net.run_until(2.0 + TIMEOUT)
    to_caller, to_callee = caller.take("BYE"), callee.take("BYE")
    assert to_caller.at == to_callee.at == 2.0 + TIMEOUT
    net.run(0.5)  # the caller, back from the dead, answers the BYE a little later
    caller.respond(to_caller.request(), 200)
    callee.respond(to_callee.request(), 200)
    [(at, record)] = net.records
    assert at == 2.0 + TIMEOUT
    assert record.end_reason == "caller never ACKed"
    net.assert_idle()


def test_no_ack_and_no_answer_to_any_bye_the_call_still_finishes() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    caller.dial("0102")
    incoming = callee.incoming()
    incoming.answer()
    net.run_until(3 * TIMEOUT)
    assert len(net.records) == 1
    net.assert_idle()
    assert net.times("BYE", to=caller) != []
    assert net.times("BYE", to=callee) != []


def test_callee_never_answers_a_relayed_reinvite() -> None:
    """The re-INVITE to the callee times out (Timer B): the caller's re-INVITE gets a
    final response and, the callee being gone (RFC 5057 section 5.1: a 408 to a
    re-INVITE ends the dialog), both legs get BYE at that moment."""
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call, _ = answered_call(caller, callee)
    assert call.dialog is not None
    net.run_until(10.0)
    reinvite = call.dialog.send("INVITE", body=caller.sdp(direction="sendonly", version=2))
    callee.take("INVITE")
    net.run_until(10.0 + TIMEOUT)
    failed = caller.take("500 INVITE")
    assert failed.at == 10.0 + TIMEOUT
    call.dialog.ack_failure(reinvite, failed.response())
    bye_callee = callee.take("BYE")
    bye_caller = caller.take("BYE")
    assert bye_callee.at == bye_caller.at == 10.0 + TIMEOUT
    caller.respond(bye_caller.request(), 200)
    [(at, record)] = net.records
    assert at == 10.0 + TIMEOUT
    assert record.duration == 10.0 + TIMEOUT
    net.run_until(10.0 + 2 * TIMEOUT)  # the callee never answers its BYE either
    net.assert_idle()


def test_callee_never_answers_the_relayed_bye() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call, _ = answered_call(caller, callee)
    net.run_until(10.0)
    call.bye()
    caller.take("200 BYE")
    callee.take("BYE")
    assert len(net.records) == 1
    net.run_until(10.0 + TIMEOUT - 0.01)
    assert net.calls()["finishing"] == 1
    net.run_until(10.0 + TIMEOUT)  # Timer F of the BYE
    net.assert_idle()
    assert net.times("BYE", to=callee)[-1] < 10.0 + TIMEOUT


def test_callee_never_answers_a_relayed_info() -> None:
    """RFC 5057 section 5.2: a request that times out means the far end is gone: the
    caller gets 408 for its INFO and the call ends on both legs."""
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call, _ = answered_call(caller, callee)
    assert call.dialog is not None
    net.run_until(5.0)
    call.dialog.send("INFO", body=b"Signal=1\r\n", content_type="application/dtmf-relay")
    callee.take("INFO")
    net.run_until(5.0 + TIMEOUT)
    assert caller.labels() == ["408 INFO", "BYE"]
    caller.take("408 INFO")
    bye_caller = caller.take("BYE")
    bye_callee = callee.take("BYE")
    assert bye_caller.at == bye_callee.at == 5.0 + TIMEOUT
    caller.respond(bye_caller.request(), 200)
    callee.respond(bye_callee.request(), 200)
    net.assert_idle()


def test_caller_never_answers_the_relayed_bye() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    _, incoming = answered_call(caller, callee)
    net.run_until(10.0)
    incoming.bye()
    callee.take("200 BYE")
    caller.take("BYE")
    net.run_until(10.0 + TIMEOUT)
    net.assert_idle()
    assert len(net.records) == 1


def test_caller_never_answers_a_relayed_reinvite() -> None:
    """The mirror image: the callee holds, the caller's phone is gone."""
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    _, incoming = answered_call(caller, callee)
    net.run_until(10.0)
    reinvite = incoming.dialog.send("INVITE", body=callee.sdp(direction="sendonly", version=2))
    caller.take("INVITE")
    net.run_until(10.0 + TIMEOUT)
    failed = callee.take("500 INVITE")
    assert failed.at == 10.0 + TIMEOUT
    incoming.dialog.ack_failure(reinvite, failed.response())
    bye_caller = caller.take("BYE")
    bye_callee = callee.take("BYE")
    assert bye_callee.at == bye_caller.at == 10.0 + TIMEOUT


def test_ring_timeout_before_any_provisional_response() -> None:
    """The callee's phone never said anything: the caller gets 480 at the ring timeout;
    no CANCEL may be sent (RFC 3261 section 9.1), and the INVITE ends at Timer B."""
    net = Net(ring_timeout=10.0)
    caller, callee = net.phone("0101"), net.phone("0102")
    call = caller.dial("0102")
    callee.incoming()
    net.run_until(10.0)
    final = caller.take("480 INVITE")
    assert final.at == 10.0
    call.ack(final.response())
    net.run_until(TIMEOUT - 0.01)
    assert net.calls()["finishing"] == 1
    net.run_until(TIMEOUT)
    assert net.times("CANCEL") == []
    net.assert_idle()
