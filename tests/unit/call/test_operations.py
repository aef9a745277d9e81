"""Drain and reload in the pure switch, on the virtual clock: a draining switch refuses
new INVITEs with 503 and Retry-After while calls in progress go on, ``end_calls`` BYEs
both legs of an answered call; a reload gives new calls the new groups while a call
hunting in the old one keeps its members. Plus the core's counters for the metrics."""

from __future__ import annotations

from dataclasses import replace

from b2bua.events import DatagramReceived, DeleteBinding
from b2bua.hunt.model import Hangup, HuntGroup, Member, Strategy
from b2bua.registrar.settings import Extension
from b2bua.sip.address import Peer, Transport

from .harness import Net, answered_call
from .test_hunting import extensions, password


def sales(*members: str) -> HuntGroup:
    return HuntGroup(
        name="sales",
        members=tuple(Member(m) for m in members),
        strategy=Strategy.LINEAR,
        numbers=("300",),
        ring_time=20.0,
        group_timeout=60.0,
        no_answer=Hangup(480),
        all_busy=Hangup(486),
        timeout=Hangup(480),
    )


def test_a_draining_switch_refuses_new_calls_and_keeps_the_calls_in_progress() -> None:
    net = Net()
    caller = net.phone("0101", password="secret-0101")
    callee = net.phone("0102", password="secret-0102")
    call, _ = answered_call(caller, callee)
    net.switch.drain()
    assert net.switch.snapshot(net.now)["draining"] is True
    # A new call gets 503 with Retry-After, before any challenge.
    other = net.phone("0103", password="secret-0103")
    refused = other.invite("0102")
    response = other.take_response("503 INVITE")
    assert response.headers.get("retry-after") == "30"
    refused.ack(response)
    assert net.switch.counters.refused_draining == 1
    # The call in progress goes on: in-dialog requests still work.
    net.run(10.0)
    assert net.calls()["active"] == 1
    call.bye()
    callee.respond(callee.take_request("BYE"), 200)
    caller.take_response("200 BYE")
    assert net.switch.call_count == 0
    net.assert_idle()


def test_end_calls_sends_bye_to_both_legs_and_records_why() -> None:
    net = Net()
    caller = net.phone("0101", password="secret-0101")
    callee = net.phone("0102", password="secret-0102")
    answered_call(caller, callee)
    net.switch.drain()
    net.run(5.0)
    net._collect(net.switch.end_calls("shutting down", net.now))
    for phone in (caller, callee):
        phone.respond(phone.take_request("BYE"), 200)
    assert net.switch.call_count == 0
    record = net.records[-1][1]
    assert record.end_reason == "shutting down"
    assert record.duration == 5.0
    net.assert_idle()


def test_end_calls_refuses_a_ringing_caller_and_cancels_its_callee() -> None:
    net = Net()
    caller = net.phone("0101", password="secret-0101")
    callee = net.phone("0102", password="secret-0102")
    call = caller.dial("0102")
    incoming = callee.incoming()
    incoming.ring()
    caller.take_response("180 INVITE")
    net._collect(net.switch.end_calls("shutting down", net.now))
    cancel = callee.take_request("CANCEL")
    incoming.respond(200, request=cancel)
    incoming.respond(487)
    callee.take("ACK")
    call.ack(caller.take_response("503 INVITE"))
    assert net.switch.call_count == 0
    net.assert_idle()


def test_reload_gives_new_calls_the_new_members_and_the_hunting_call_keeps_the_old() -> None:
    net = Net(extensions=extensions("101", "102", "0101", "0103"), groups={"sales": sales("101")})
    members = {n: net.phone(n, password=password(n)) for n in ("101", "102")}
    first_caller = net.phone("0101", password=password("0101"))
    first = first_caller.dial("300")
    ringing = members["101"].incoming()
    ringing.ring()
    first_caller.take_response("180 INVITE")

    settings = net.switch.settings
    net.switch.reload(replace(settings, groups={"sales": sales("102")}))
    assert [m["extension"] for m in net.switch.snapshot(net.now)["groups"]["sales"]["members"]] == [
        "102"
    ]
    # The next call rings the new member only.
    second_caller = net.phone("0103", password=password("0103"))
    second = second_caller.dial("300")
    answered = members["102"].incoming()
    answered.ring()
    answered.answer()
    members["102"].take("ACK")
    second_caller.take_response("180 INVITE")
    second.ack(second_caller.take_response("200 INVITE"))
    # The first call still rings 101 (its hunt kept the old group) and can be answered.
    net.run(5.0)
    members["101"].assert_nothing()
    ringing.answer()
    members["101"].take("ACK")
    first.ack(first_caller.take_response("200 INVITE"))
    answered_by = sorted(str(c["answered_by"]) for c in net.call_list())
    assert answered_by == ["101", "102"]


def test_reload_gives_new_calls_the_new_ring_timeout_and_the_ringing_call_keeps_its_own() -> None:
    numbers = ("0101", "0102", "0103", "0104")
    net = Net(extensions=extensions(*numbers), ring_timeout=60.0)
    phones = {n: net.phone(n, password=password(n)) for n in numbers}
    first = phones["0101"].dial("0102")
    first_ringing = phones["0102"].incoming()
    first_ringing.ring()
    phones["0101"].take_response("180 INVITE")
    settings = net.switch.settings
    calls = settings.calls.model_copy(update={"ring_timeout": 5.0})
    net.switch.reload(replace(settings, calls=calls))
    second = phones["0103"].dial("0104")
    phones["0104"].incoming().ring()
    phones["0103"].take_response("180 INVITE")
    net.run_until(5.0)
    second.ack(phones["0103"].take_response("480 INVITE"))  # the new call: 5 s
    phones["0104"].respond(phones["0104"].take_request("CANCEL"), 200)
    net.run_until(30.0)
    phones["0102"].assert_nothing()  # the first call still rings (60 s)
    first_ringing.answer()
    phones["0102"].take("ACK")
    first.ack(phones["0101"].take_response("200 INVITE"))
    assert [c["answered_by"] for c in net.call_list()] == ["0102"]


def test_reload_takes_only_groups_numbers_and_calls() -> None:
    net = Net()
    before = net.switch.settings
    changed = replace(before, realm="other", user_agent="other", groups={"sales": sales("0102")})
    net.switch.reload(changed)
    after = net.switch.settings
    assert (after.realm, after.user_agent) == (before.realm, before.user_agent)
    assert set(after.groups) == {"sales"}


def test_parse_errors_are_counted() -> None:
    net = Net()
    phone = Peer(Transport.UDP, "192.0.2.99", 5062)
    for data in (b"HELLO\r\n\r\n", b"INVITE sip:x SIP/2.0\r\nCSeq: one INVITE\r\n\r\n"):
        net.feed(DatagramReceived(data=data, peer=phone))
    assert net.switch.counters.parse_errors == 2


def test_a_reload_adds_removes_and_changes_extensions_for_new_registrations() -> None:
    net = Net()
    mary = net.phone("0101", password="secret-0101")
    kate = net.phone("0102", password="secret-0102")
    settings = net.switch.settings
    accounts = dict(settings.extensions)
    del accounts["0102"]  # Kate leaves
    accounts["0104"] = Extension(name="New line", password="secret-0104")  # a new line
    accounts["0101"] = accounts["0101"].model_copy(update={"password": "new-secret-0101"})
    outputs = net.switch.reload(replace(settings, extensions=accounts), net.now)
    # Kate's binding goes, from the location and from the store.
    assert outputs == [DeleteBinding(aor="0102", contact=kate.contact)]
    assert net.switch.registrar.location.registrations("0102") == []
    # The new line registers and is reachable at once.
    newcomer = net.phone("0104", password="secret-0104")
    call = mary.invite("0104")
    challenged = mary.take_response("407 INVITE")
    call.ack(challenged)
    # Mary's old password no longer works (403); with the new one she calls the new line.
    mary.password = "secret-0101"
    mary.dial("0104")
    mary.take_response("403 INVITE")
    mary.password = "new-secret-0101"
    placed = mary.dial("0104")
    ringing = newcomer.incoming()
    ringing.answer()
    newcomer.take("ACK")
    placed.ack(mary.take_response("200 INVITE"))
    # Kate's number is gone: 404 to an authenticated caller.
    gone = mary.dial("0102")
    gone.ack(mary.take_response("404 INVITE"))
