"""Qualify: OPTIONS pings to registered contacts, on the virtual clock."""

from __future__ import annotations

import structlog

from b2bua.config import ListenAddress
from b2bua.events import DatagramReceived, SendDatagram
from b2bua.ids import SeededIds
from b2bua.registrar.settings import Extension
from b2bua.sip.address import Transport
from b2bua.sip.message import Request, make_response
from b2bua.sip.parser import parse_message
from b2bua.switch import Switch, SwitchSettings
from tests.unit.registrar.test_registration import PHONE, REALM, WALL, Phone


def make_switch(qualify: float) -> Switch:
    settings = SwitchSettings(
        listen=(ListenAddress(Transport.UDP, "127.0.0.1", 5060),),
        realm=REALM,
        extensions={"0101": Extension(password="flowers-0101", qualify=qualify)},
    )
    return Switch(
        settings, SeededIds(3), structlog.get_logger(), secret=b"q" * 64, wall_offset=WALL
    )


def pings(switch: Switch, now: float) -> list[Request]:
    out = []
    for output in switch.fire_timers(now):
        if isinstance(output, SendDatagram) and output.peer == PHONE:
            message = parse_message(output.data)
            if isinstance(message, Request):
                out.append(message)
    return out


def reachable(switch: Switch, now: float) -> bool:
    return bool(switch.snapshot(now)["registrations"]["0101"][0]["reachable"])


def test_contacts_are_pinged_and_marked_unreachable_when_silent() -> None:
    switch = make_switch(qualify=30)
    Phone(switch, "0101", "flowers-0101").full_register(0.0, expires=3600)
    assert pings(switch, 29.9) == []
    [ping] = pings(switch, 30.0)
    assert ping.method == "OPTIONS"
    assert ping.uri == "sip:0101@192.0.2.7:5062"
    assert ping.top_via.host == "127.0.0.1"
    assert ping.top_via.port == 5060
    # The phone answers: still reachable; the next ping comes one interval later.
    answer = make_response(ping, 200, to_tag="ph").to_bytes()
    switch.handle(DatagramReceived(data=answer, peer=PHONE), 30.1)
    assert reachable(switch, 30.1)
    [second] = pings(switch, 60.1)
    # Silence: Timer F (64*T1 = 32 s) ends the ping, the contact is unreachable.
    resent = pings(switch, 60.6)
    assert [p.top_via.branch for p in resent] == [second.top_via.branch]  # Timer E
    assert reachable(switch, 92.0)
    pings(switch, 92.1)
    assert not reachable(switch, 92.1)
    # The next ping at 122.1 is answered: reachable again.
    [third] = pings(switch, 122.1)
    switch.handle(
        DatagramReceived(data=make_response(third, 404, to_tag="x").to_bytes(), peer=PHONE), 122.2
    )
    assert reachable(switch, 122.2)


def test_no_pings_without_qualify_or_after_unregistering() -> None:
    quiet = make_switch(qualify=0)
    Phone(quiet, "0101", "flowers-0101").full_register(0.0, expires=3600)
    assert pings(quiet, 1000.0) == []
    switch = make_switch(qualify=30)
    phone = Phone(switch, "0101", "flowers-0101")
    phone.full_register(0.0, expires=3600)
    phone.full_register(10.0, expires=0)
    assert pings(switch, 1000.0) == []
