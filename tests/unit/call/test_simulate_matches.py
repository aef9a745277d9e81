"""``b2bua simulate`` shows the timeline the switch then follows: the same scenario of the
two seed configs, once through the CLI (no network) and once through the switch on a
virtual clock with phones that register, ring, answer and talk, gives the same hunt
trace, entry for entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from b2bua.cli import main
from b2bua.config import load_config
from b2bua.registrar.settings import Extension

from .harness import InCall, Net, Phone, answered_call

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
STAFF_PASSWORD = "staff-secret"


def simulated(capsys: pytest.CaptureFixture[str], config: str, group: str, *options: str) -> object:
    assert main(["simulate", "--config", str(CONFIGS / config), "--group", group,
                 "--seed", "1", "--json", *options]) == 0  # fmt: skip
    members = json.loads(capsys.readouterr().out)["members"]
    assert len(members) >= 3  # a real timeline, not an empty one on both sides
    return members


def switch_for(config: str) -> tuple[Net, dict[str, str]]:
    loaded = load_config(CONFIGS / config)
    extensions = dict(loaded.extensions)
    staff = {f"9{n}": Extension(password=STAFF_PASSWORD) for n in extensions}
    net = Net(
        extensions=extensions | staff,
        groups=loaded.hunt_groups(),
        rtp_ports=(30000, 30099),
        mailboxes=loaded.mailboxes(),
    )
    passwords = {n: ext.password or "" for n, ext in extensions.items()}
    return net, passwords


def busy(net: Net, line: Phone) -> None:
    """``line`` talks to a colleague through the switch."""
    answered_call(net.phone(f"9{line.extension}", password=STAFF_PASSWORD), line)


def public_number(config: str, group: str) -> str:
    return load_config(CONFIGS / config).groups[group].public_numbers[0]


def test_flower_shop_scenario_1(capsys: pytest.CaptureFixture[str]) -> None:
    expected = simulated(capsys, "flower-shop.toml", "shop", "--busy", "101", "--answer", "102@4")
    net, passwords = switch_for("flower-shop.toml")
    lines = {n: net.phone(n, password=p) for n, p in passwords.items()}
    busy(net, lines["101"])
    customer = net.outsider()
    start = net.now
    call = customer.invite(public_number("flower-shop.toml", "shop"))
    iris = lines["102"].incoming(at=start)
    iris.ring()
    net.run_until(start + 4.0)
    iris.answer()
    lines["102"].take("ACK")
    customer.take_response("180 INVITE")
    call.ack(customer.take_response("200 INVITE"))
    call.bye()
    lines["102"].respond(lines["102"].take_request("BYE"), 200)
    assert net.records[-1][1].hunts[0]["members"] == expected


def test_flower_shop_scenario_2(capsys: pytest.CaptureFixture[str]) -> None:
    expected = simulated(capsys, "flower-shop.toml", "shop", "--busy", "101,102,103,104")
    net, passwords = switch_for("flower-shop.toml")
    lines = {n: net.phone(n, password=p) for n, p in passwords.items()}
    for number in ("101", "102", "103", "104"):
        busy(net, lines[number])
    customer = net.outsider()
    call = customer.invite(public_number("flower-shop.toml", "shop"))
    line5 = lines["105"].incoming()
    line5.ring()
    net.run(15.0)
    cancel = lines["105"].take_request("CANCEL")
    line5.respond(200, request=cancel)
    line5.respond(487)
    customer.take_response("180 INVITE")
    call.ack(customer.take_response("200 INVITE"))  # the mailbox of line 1 takes it
    call.bye()
    assert net.records[-1][1].hunts[0]["members"] == expected


def test_the_staggered_hunt_group_nobody_answers(capsys: pytest.CaptureFixture[str]) -> None:
    expected = simulated(capsys, "hunt-group.toml", "sales")
    net, passwords = switch_for("hunt-group.toml")
    members = {n: net.phone(n, password=p) for n, p in passwords.items()}
    customer = net.outsider()
    call = customer.invite(public_number("hunt-group.toml", "sales"))
    ringing: dict[str, InCall] = {}
    for number, offset in (("002", 0.0), ("006", 6.0), ("007", 10.0)):
        net.run_until(offset)
        ringing[number] = members[number].incoming(at=offset)
        ringing[number].ring()
    net.run_until(30.0)
    for number, incoming in ringing.items():
        incoming.respond(200, request=members[number].take_request("CANCEL"))
        incoming.respond(487)
    customer.take_response("180 INVITE")
    call.ack(customer.take_response("480 INVITE"))
    assert net.records[-1][1].hunts[0]["members"] == expected
