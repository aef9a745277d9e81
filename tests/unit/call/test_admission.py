"""Who may call what: the dial plan (404), authentication (407 except for public
numbers), and extensions that cannot take another call (486: busy, DND)."""

from __future__ import annotations

from b2bua.call.records import Disposition
from b2bua.events import StateLoaded
from b2bua.registrar.binding import Binding
from b2bua.registrar.settings import Extension
from media.commands import OpenSession

from .harness import PASSWORDS, PRIVATE_NUMBER, PUBLIC_NUMBER, WALL, Net, answered_call


def test_unknown_number_from_an_extension_gets_404() -> None:
    net = Net()
    caller = net.phone("0101")
    net.phone("0102")
    call = caller.dial("0999")
    not_found = caller.take("404 INVITE")
    call.ack(not_found.response())
    assert [s.peer for s in net.trace if s.label == "INVITE"] == []
    assert net.media == []
    assert net.records == []  # no call was set up
    net.assert_idle()


def test_unauthenticated_invite_to_an_internal_number_is_challenged() -> None:
    net = Net()
    net.phone("0102")
    net.phone("0103")
    stranger = net.outsider()
    for number in ("0102", PRIVATE_NUMBER, "0999"):  # 0999 exists nowhere: same answer
        call = stranger.invite(number)
        challenged = stranger.take_response("407 INVITE")
        assert (challenged.headers.get("proxy-authenticate") or "").startswith("Digest ")
        call.ack(challenged)
    net.run(60.0)
    assert net.times("INVITE") == []
    assert net.media == []
    net.assert_idle()


def test_unauthenticated_invite_to_the_public_number_goes_through() -> None:
    net = Net()
    callee = net.phone("0102")
    outside = net.outsider()
    call = outside.invite(PUBLIC_NUMBER)
    incoming = callee.incoming(at=0.0)
    assert incoming.invite.to.uri.user == "0102"  # type: ignore[union-attr]
    assert incoming.invite.from_.uri.user == "5551234"  # type: ignore[union-attr]
    incoming.ring()
    incoming.answer()
    callee.take("ACK")
    assert outside.labels() == ["180 INVITE", "200 INVITE"]
    outside.take("180 INVITE")
    call.ack(outside.take_response("200 INVITE"))
    assert net.times("407 INVITE") == []
    net.run_until(4.0)
    incoming.bye()
    callee.take("200 BYE")
    outside.respond(outside.take_request("BYE"), 200)
    [(_, record)] = net.records
    assert (record.caller, record.callee, record.answered_by) == ("5551234", PUBLIC_NUMBER, "0102")
    assert record.duration == 4.0
    net.assert_idle()


def test_an_extension_dials_the_private_number() -> None:
    net = Net()
    caller, callee = net.phone("0101"), net.phone("0103")
    caller.dial(PRIVATE_NUMBER)
    assert callee.incoming().invite.to.uri.user == "0103"  # type: ignore[union-attr]


def test_a_busy_extension_gets_486_and_is_free_again_after_the_call() -> None:
    net = Net()
    first, callee, second = net.phone("0101"), net.phone("0102"), net.phone("0103")
    call, incoming = answered_call(first, callee)
    net.run_until(1.0)
    attempt = second.dial("0102")
    busy = second.take("486 INVITE")
    assert busy.at == 1.0
    attempt.ack(busy.response())
    callee.assert_nothing()
    assert len(net.media_of(OpenSession)) == 1
    # The caller of the first call is busy too (max_calls 1 counts both ends).
    attempt = second.dial("0101")
    attempt.ack(second.take_response("486 INVITE"))
    first.assert_nothing()

    call.bye()
    first.take("200 BYE")
    incoming.respond(200, request=callee.take_request("BYE"))
    net.assert_idle()
    second.dial("0102")
    callee.incoming(at=1.0)


def test_a_ringing_extension_counts_as_busy() -> None:
    net = Net()
    first, callee, second = net.phone("0101"), net.phone("0102"), net.phone("0103")
    first.dial("0102")
    callee.incoming().ring()
    attempt = second.dial("0102")
    attempt.ack(second.take_response("486 INVITE"))
    callee.assert_nothing()


def test_do_not_disturb_gets_486() -> None:
    extensions = {
        number: Extension(name=number, password=password, dnd=number == "0102")
        for number, password in PASSWORDS.items()
    }
    net = Net(extensions=extensions)
    caller, callee = net.phone("0101"), net.phone("0102")
    call = caller.dial("0102")
    call.ack(caller.take_response("486 INVITE"))
    callee.assert_nothing()
    net.assert_idle()


def test_max_calls_two_allows_a_second_call() -> None:
    extensions = {
        number: Extension(name=number, password=password, max_calls=2)
        for number, password in PASSWORDS.items()
    }
    net = Net(extensions=extensions)
    first, callee, second = net.phone("0101"), net.phone("0102"), net.phone("0103")
    answered_call(first, callee)
    second.dial("0102")
    callee.incoming()
    assert net.calls()["active"] == 2


def test_nobody_registered_gets_480() -> None:
    net = Net()
    caller = net.phone("0101")
    call = caller.dial("0102")
    unavailable = caller.take("480 INVITE")
    call.ack(unavailable.response())
    [(_, record)] = net.records
    assert record.disposition is Disposition.FAILED
    assert record.callee_status is None
    net.assert_idle()


def test_a_binding_restored_at_start_is_rung() -> None:
    """The store's bindings come back through StateLoaded (the restart path)."""
    net = Net()
    caller = net.phone("0101")
    callee = net.phone("0102", register=False)
    binding = Binding(
        aor="0102",
        contact=callee.contact,
        expires_at=WALL + 600,
        registered_at=WALL - 100,
        call_id="reg-before-restart",
        cseq=9,
        source=f"udp:{callee.host}:5062",
    )
    net.feed(StateLoaded(bindings=(binding,)))
    caller.dial("0102")
    assert callee.incoming(at=0.0).invite.uri == callee.contact
