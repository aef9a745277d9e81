"""Session timers on the caller's leg (RFC 4028): honoured when the caller asks, a dead
session ended, a refresh answered, too small an interval refused with 422."""

from __future__ import annotations

from b2bua.call.session_timer import MIN_SE

from .harness import PUBLIC_NUMBER, InCall, Net, OutCall, Phone

TIMER = ("Supported: timer",)


def answered(net: Net, extra: tuple[str, ...]) -> tuple[Phone, OutCall, Phone, InCall]:
    """An outside caller on the public number, answered by 0102 at once."""
    callee = net.phone("0102")
    caller = net.outsider()
    call = caller.invite(PUBLIC_NUMBER, extra=extra)
    incoming = callee.incoming()
    incoming.answer()
    callee.take("ACK")
    call.ack(caller.take_response("200 INVITE"))
    return caller, call, callee, incoming


def test_the_200_carries_the_timer_the_caller_asked_for() -> None:
    net = Net()
    callee = net.phone("0102")
    caller = net.outsider()
    call = caller.invite(PUBLIC_NUMBER, extra=(*TIMER, "Session-Expires: 600"))
    callee.incoming().answer()
    callee.take("ACK")
    ok = caller.take_response("200 INVITE")
    assert ok.headers.get("session-expires") == "600;refresher=uac"
    assert ok.headers.get("require") == "timer"
    call.ack(ok)


def test_without_supported_timer_there_is_no_timer() -> None:
    net = Net()
    _caller, _call, _callee, _incoming = answered(net, ("Session-Expires: 600",))
    net.run(3600.0)
    assert net.times("BYE") == []  # no timer: only rtp_timeout (a media report) ends it
    assert net.calls()["active"] == 1


def test_a_session_the_caller_stops_refreshing_ends_before_it_expires() -> None:
    """RFC 4028 section 10: the side that is not the refresher sends BYE at
    Session-Expires - min(32, Session-Expires / 3) after the last refresh."""
    net = Net()
    caller, _call, callee, _incoming = answered(net, (*TIMER, "Session-Expires: 120"))
    net.run_until(200.0)
    assert net.times("BYE", to=caller)[:1] == [88.0]
    assert net.times("BYE", to=callee)[:1] == [88.0]
    [(_, record)] = net.records
    assert record.end_reason == "session expired"


def test_a_refresh_update_is_answered_here_and_restarts_the_timer() -> None:
    net = Net()
    caller, call, callee, _incoming = answered(net, (*TIMER, "Session-Expires: 120"))
    net.run_until(60.0)
    assert call.dialog is not None
    call.dialog.send("UPDATE", extra=(*TIMER, "Session-Expires: 120;refresher=uac"))
    ok = caller.take_response("200 UPDATE")
    assert ok.headers.get("session-expires") == "120;refresher=uac"
    callee.assert_nothing()  # a refresh is not relayed
    net.run_until(140.0)
    assert net.times("BYE") == []
    net.run_until(200.0)
    assert net.times("BYE", to=caller)[:1] == [148.0]


def test_a_refresh_reinvite_restarts_the_timer_too() -> None:
    net = Net()
    caller, call, callee, incoming = answered(net, (*TIMER, "Session-Expires: 120"))
    net.run_until(80.0)
    assert call.dialog is not None
    call.dialog.send("INVITE", body=caller.sdp(version=2), extra=TIMER)
    relayed = callee.take_request("INVITE")
    incoming.dialog.reply(relayed, 200, body=callee.sdp(version=2))
    callee.take("ACK")
    ok = caller.take_response("200 INVITE")
    assert ok.headers.get("session-expires") == "120;refresher=uac"
    call.dialog.ack(ok)
    net.run_until(200.0)
    assert net.times("BYE", to=caller)[:1] == [168.0]


def test_when_the_caller_asks_us_to_refresh_we_send_update_every_half_interval() -> None:
    net = Net()
    caller, call, _callee, _incoming = answered(net, (*TIMER, "Session-Expires: 100;refresher=uas"))
    net.run_until(49.0)
    assert net.times("UPDATE", to=caller) == []
    net.run_until(50.0)
    update = caller.take_request("UPDATE")
    assert update.headers.get("session-expires") == "100;refresher=uas"
    assert not update.body
    assert call.dialog is not None
    call.dialog.reply(update, 200)
    net.run_until(100.0)
    assert net.times("UPDATE", to=caller)[:2] == [50.0, 100.0]
    assert net.times("BYE") == []


def test_a_refresh_answered_481_ends_the_call() -> None:
    net = Net()
    caller, call, callee, _incoming = answered(net, (*TIMER, "Session-Expires: 100;refresher=uas"))
    net.run_until(50.0)
    update = caller.take_request("UPDATE")
    assert call.dialog is not None
    call.dialog.reply(update, 481)
    assert net.times("BYE", to=callee)[:1] == [50.0]


def test_too_small_an_interval_gets_422_with_our_min_se() -> None:
    net = Net()
    net.phone("0102")
    caller = net.outsider()
    call = caller.invite(PUBLIC_NUMBER, extra=(*TIMER, "Session-Expires: 30"))
    refused = caller.take_response("422 INVITE")
    assert refused.headers.get("min-se") == str(MIN_SE)
    call.ack(refused)
    assert net.times("INVITE") == []
    net.assert_idle()


def test_require_timer_is_accepted() -> None:
    """We support "timer": a caller that requires it is not refused with 420."""
    net = Net()
    callee = net.phone("0102")
    caller = net.outsider()
    call = caller.invite(PUBLIC_NUMBER, extra=("Require: timer", "Session-Expires: 300"))
    callee.incoming().answer()
    callee.take("ACK")
    ok = caller.take_response("200 INVITE")
    assert ok.headers.get("session-expires") == "300;refresher=uac"
    call.ack(ok)
