"""Inside a bridged call: hold and unhold by re-INVITE both ways, INFO and UPDATE relayed,
and in-dialog requests that match no dialog (RFC 3261 sections 12.2.2, 14; RFC 3264
section 8.4; RFC 6086; RFC 3311)."""

from __future__ import annotations

import pytest

from b2bua.sip.digest import answer_challenge, parse_challenge
from media.commands import OpenSession, Side, UpdateRemote

from .harness import MEDIA_HOST, REALM, Net, answered_call, connection_of

DTMF_RELAY = b"Signal=5\r\nDuration=160\r\n"


def _ports(net: Net) -> tuple[int, int]:
    [(_, opened)] = net.media_of(OpenSession)
    assert isinstance(opened, OpenSession)
    return opened.rtp_port_a, opened.rtp_port_b


def _origin_version(body: bytes) -> int:
    [origin] = [line for line in body.decode().split("\r\n") if line.startswith("o=")]
    return int(origin.split()[2])


def _updates(net: Net, since: int = 0) -> list[tuple[Side, tuple[str, int]]]:
    return [(m.side, m.expected) for _, m in net.media[since:] if isinstance(m, UpdateRemote)]


def test_caller_holds_and_unholds() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call, incoming = answered_call(caller, callee)
    port_a, port_b = _ports(net)
    assert call.dialog is not None
    net.run_until(10.0)
    media_before = len(net.media)

    for step, (held, answered) in enumerate([("sendonly", "recvonly"), ("sendrecv", "sendrecv")]):
        offer = caller.sdp(direction=held, version=2 + step)
        reinvite = call.dialog.send("INVITE", body=offer)
        relayed = callee.take("INVITE")
        assert relayed.at == net.now
        request = relayed.request()
        assert request.call_id == incoming.invite.call_id
        assert request.to.tag == incoming.tag
        assert request.cseq.number == 2 + step  # the switch's CSeq in the callee's dialog
        assert connection_of(request.body) == (MEDIA_HOST, port_b, held)
        assert _origin_version(request.body) == 2 + step  # a changed offer: version + 1
        caller.assert_nothing()  # the caller waits for the callee's answer

        net.run(0.1)
        incoming.dialog.reply(request, 200, body=callee.sdp(direction=answered, version=2 + step))
        assert callee.take("ACK").request().cseq.number == request.cseq.number
        ok = caller.take("200 INVITE").response()
        assert ok.cseq.number == reinvite.cseq.number
        assert connection_of(ok.body) == (MEDIA_HOST, port_a, answered)
        assert _origin_version(ok.body) == 2 + step
        call.dialog.ack(ok)
        net.run(1.0)
        caller.assert_nothing()
        callee.assert_nothing()

    # Media still goes between the same two addresses.
    assert set(_updates(net, media_before)) <= {
        (Side.A, caller.media_address),
        (Side.B, callee.media_address),
    }
    assert net.calls()["active"] == 1


def test_callee_holds_the_caller() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call, incoming = answered_call(caller, callee)
    port_a, _ = _ports(net)
    net.run_until(5.0)
    incoming.dialog.send("INVITE", body=callee.sdp(direction="sendonly", version=2))
    relayed = caller.take_request("INVITE")
    assert relayed.call_id == call.invite.call_id
    assert relayed.to.tag == call.invite.from_.tag
    assert relayed.uri == call.invite.headers.get("contact").strip("<>")  # type: ignore[union-attr]
    assert connection_of(relayed.body) == (MEDIA_HOST, port_a, "sendonly")
    call.dialog.reply(relayed, 200, body=caller.sdp(direction="recvonly", version=2))  # type: ignore[union-attr]
    caller.take("ACK")
    ok = callee.take_response("200 INVITE")
    assert connection_of(ok.body)[2] == "recvonly"
    incoming.dialog.ack(ok)
    callee.assert_nothing()
    caller.assert_nothing()


def test_info_is_relayed_with_its_body_and_the_status_comes_back() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call, incoming = answered_call(caller, callee)
    assert call.dialog is not None
    net.run_until(3.0)
    call.dialog.send("INFO", body=DTMF_RELAY, content_type="application/dtmf-relay")
    info = callee.take("INFO")
    assert info.at == 3.0
    request = info.request()
    assert request.body == DTMF_RELAY
    assert request.content_type == "application/dtmf-relay"
    assert request.call_id == incoming.invite.call_id
    assert request.to.tag == incoming.tag
    caller.assert_nothing()
    net.run(0.05)
    incoming.dialog.reply(request, 200)
    assert caller.take("200 INFO").at == 3.05

    # A refusal comes back as it is.
    call.dialog.send("INFO", body=b"x", content_type="application/x-unknown")
    incoming.dialog.reply(callee.take_request("INFO"), 415)
    assert caller.take_response("415 INFO").status == 415

    # And the other way.
    incoming.dialog.send("INFO", body=DTMF_RELAY, content_type="application/dtmf-relay")
    back = caller.take_request("INFO")
    assert back.body == DTMF_RELAY
    call.dialog.reply(back, 200)
    callee.take("200 INFO")
    assert net.calls()["active"] == 1


def test_update_is_relayed_with_the_sdp_rewritten() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0102")
    call, incoming = answered_call(caller, callee)
    assert call.dialog is not None
    port_a, port_b = _ports(net)
    before = len(net.media)
    caller.rtp_port = 5000  # the caller moves its media
    call.dialog.send("UPDATE", body=caller.sdp(version=2))
    update = callee.take_request("UPDATE")
    assert update.content_type == "application/sdp"
    assert connection_of(update.body) == (MEDIA_HOST, port_b, "sendrecv")
    assert b"192.0.2." not in update.body  # nothing of the caller's address leaks
    callee.rtp_port = 6000
    incoming.dialog.reply(update, 200, body=callee.sdp(version=2))
    ok = caller.take_response("200 UPDATE")
    assert connection_of(ok.body) == (MEDIA_HOST, port_a, "sendrecv")
    assert b"192.0.2." not in ok.body
    assert _updates(net, before) == [
        (Side.A, ("192.0.2.10", 5000)),
        (Side.B, ("192.0.2.11", 6000)),
    ]


def test_in_dialog_request_for_an_unknown_dialog_gets_481_without_a_challenge() -> None:
    net = Net()
    stranger = net.outsider()
    for method in ("BYE", "INFO", "INVITE", "UPDATE"):
        request = stranger.build(
            method,
            f"sip:0102@{REALM}",
            from_=f"<sip:5551234@{REALM}>;tag=abc",
            to=f"<sip:0102@{REALM}>;tag=no-such-dialog",
            call_id=f"ghost-{method}",
            cseq=5,
        )
        stranger.send(request)
        response = stranger.take_response(f"481 {method}")
        assert "proxy-authenticate" not in response.headers
    assert net.trace[-1].peer == stranger.peer
    assert all(s.peer == stranger.peer for s in net.trace)


def test_bye_without_to_tag_is_challenged() -> None:
    """Which of 407 and 481 a BYE without To tag gets, and why 407 is right here.

    Without a To tag a request is outside any dialog (RFC 3261 section 12.2 handles
    requests WITH a To tag; section 8.2.2.2 the others), so the dialog is no proof of
    identity. The switch admits out-of-dialog requests from authenticated extensions
    only and says nothing about them before the caller authenticates (407, section
    22.3): a stranger learns nothing. Once authenticated, the BYE matches no dialog and
    gets 481 (section 15.1.2), as the next test shows. Both answers are allowed by RFC
    3261; this switch gives 407 first, then 481."""
    net = Net()
    for phone in (net.phone("0101"), net.outsider()):
        bye = phone.build(
            "BYE",
            f"sip:0102@{REALM}",
            from_=f"<sip:{phone.extension}@{REALM}>;tag=abc",
            to=f"<sip:0102@{REALM}>",
            call_id=f"no-tag-bye-{phone.host}",
            cseq=7,
        )
        phone.send(bye)
        challenged = phone.take_response("407 BYE")
        assert (challenged.headers.get("proxy-authenticate") or "").startswith("Digest ")


@pytest.mark.parametrize("method", ["BYE", "INFO"])
def test_dialog_only_request_without_to_tag_from_an_extension_gets_481(method: str) -> None:
    net = Net()
    phone = net.phone("0101")

    def send(extra: tuple[str, ...]) -> None:
        phone.send(
            phone.build(
                method,
                f"sip:0102@{REALM}",
                from_=f"<sip:0101@{REALM}>;tag=abc",
                to=f"<sip:0102@{REALM}>",
                call_id="no-tag",
                cseq=len(extra) + 1,
                extra=extra,
            )
        )

    send(())
    challenge = parse_challenge(
        phone.take_response(f"407 {method}").headers.get_all("proxy-authenticate")[0]
    )
    authorization = answer_challenge(
        challenge,
        username="0101",
        password=phone.password,
        method=method,
        uri=f"sip:0102@{REALM}",
        cnonce="abc",
        nc=1,
    )
    send((f"Proxy-Authorization: {authorization}",))
    phone.take(f"481 {method}")
