"""Calls to hunt groups through the switch, on a virtual clock: the scenarios of the
hunting issue with exact times, the busy truth the switch keeps across calls, channel
limits, overflow, and the hunt trace in the call record."""

from __future__ import annotations

from b2bua.call.records import Disposition
from b2bua.hunt.model import (
    Hangup,
    HuntGroup,
    Member,
    Strategy,
    ToExtension,
    ToGroup,
    ToVoicemail,
)
from b2bua.registrar.settings import Extension
from b2bua.voicemail.settings import Mailbox
from media.commands import TakeMessage

from .harness import InCall, Net, OutCall, Phone, answered_call

LINES = ("101", "102", "103", "104", "105")
STAFF = ("0101", "0102", "0103", "0104")  # people the lines talk to when busy
SHOP_NUMBER = "5550200"


def password(number: str) -> str:
    return f"secret-{number}"


def extensions(
    *numbers: str, max_calls: int = 1, dnd: tuple[str, ...] = ()
) -> dict[str, Extension]:
    return {
        n: Extension(name=f"Ext {n}", password=password(n), max_calls=max_calls, dnd=n in dnd)
        for n in numbers
    }


def shop(**changes: object) -> HuntGroup:
    """Mary's flower shop (configs/flower-shop.toml): five lines, linear, 15 s each."""
    fields: dict[str, object] = {
        "name": "shop",
        "members": tuple(Member(n) for n in LINES),
        "strategy": Strategy.LINEAR,
        "public_numbers": (SHOP_NUMBER,),
        "numbers": ("200",),
        "ring_time": 15.0,
        "group_timeout": 90.0,
        "no_answer": ToVoicemail("101"),
        "all_busy": ToVoicemail("101"),
        "timeout": ToVoicemail("101"),
    }
    fields.update(changes)
    return HuntGroup(**fields)  # type: ignore[arg-type]


MAILBOX_101 = Mailbox(
    number="101",
    greeting=None,
    email=None,
    pin=None,
    max_message_length=180.0,
    min_message_length=1.0,
    max_messages=100,
    silence_timeout=10.0,
)


def shop_net(group: HuntGroup | None = None, **kwargs: object) -> Net:
    return Net(
        extensions=extensions(*LINES, *STAFF),
        groups={"shop": group or shop()},
        rtp_ports=(30000, 30099),
        mailboxes={"101": MAILBOX_101},
        **kwargs,  # type: ignore[arg-type]
    )


def phones(net: Net, *numbers: str) -> dict[str, Phone]:
    return {n: net.phone(n, password=password(n)) for n in numbers}


def talking(net: Net, line: Phone, staff: str) -> tuple[OutCall, InCall]:
    """``line`` is on a call through the switch with extension ``staff``."""
    return answered_call(net.phone(staff, password=password(staff)), line)


def trace(net: Net, index: int = -1) -> list[tuple[float, str, str, str]]:
    """(t, member, outcome, reason or status) of the first hunt of record ``index``."""
    record = net.records[index][1]
    members = record.hunts[0]["members"]
    assert isinstance(members, list)
    return [
        (m["t"], m["member"], m["outcome"], str(m.get("reason", m.get("status", ""))))
        for m in members
    ]


def test_flower_shop_scenario_1_mary_on_a_call_iris_answers() -> None:
    net = shop_net()
    lines = phones(net, *LINES)
    talking(net, lines["101"], "0101")  # Mary is with another customer, through the switch
    net.run_until(5.0)
    customer = net.outsider()
    call = customer.invite(SHOP_NUMBER)
    # Line 1 is skipped without an INVITE; line 2 (Iris) rings at once.
    lines["101"].assert_nothing()
    iris = lines["102"].incoming(at=5.0)
    iris.ring()
    customer.take_response("180 INVITE")
    net.run_until(9.0)
    iris.answer()
    lines["102"].take("ACK")
    call.ack(customer.take_response("200 INVITE"))
    for number in ("103", "104", "105"):
        lines[number].assert_nothing()
    assert net.call_list()[-1]["answered_by"] == "102"
    net.run_until(20.0)
    call.bye()
    lines["102"].respond(lines["102"].take_request("BYE"), 200)
    customer.take("200 BYE")
    record = net.records[-1][1]
    assert (record.answered_by, record.disposition, record.duration) == (
        "102",
        Disposition.ANSWERED,
        11.0,
    )
    assert trace(net) == [
        (0.0, "101", "skipped", "talking"),
        (0.0, "102", "rung", ""),
        (0.0, "102", "alerting", ""),
        (4.0, "102", "answered", ""),
    ]
    assert record.hunts[0]["connected"] == "102"


def test_flower_shop_scenario_2_nobody_at_line_5_goes_to_the_mailbox_of_line_1() -> None:
    net = shop_net()
    lines = phones(net, *LINES)
    for line, staff in zip(LINES[:4], STAFF, strict=True):
        talking(net, lines[line], staff)
    customer = net.outsider()
    call = customer.invite(SHOP_NUMBER)
    line5 = lines["105"].incoming(at=0.0)
    line5.ring()
    customer.take_response("180 INVITE")
    net.run_until(15.0)
    cancel = lines["105"].take("CANCEL")
    assert cancel.at == 15.0  # its ring time, to the millisecond of the virtual clock
    line5.respond(200, request=cancel.request())
    line5.respond(487)
    lines["105"].take("ACK")
    # The switch answers the caller itself and takes a message for line 1 (Mary).
    answered = customer.take("200 INVITE")
    assert answered.at == 15.0
    [take] = [m for _, m in net.media if isinstance(m, TakeMessage)]
    assert (take.mailbox, take.group, take.record) == ("101", "shop", True)
    call.ack(answered.response())
    call.bye()
    customer.take_response("200 BYE")
    record = net.records[-1][1]
    assert (record.disposition, record.answered_by) == (Disposition.VOICEMAIL, "voicemail:101")
    hunt = record.hunts[0]
    assert (hunt["overflow"], hunt["result"]) == ("no_answer", "overflowed")
    assert trace(net) == [
        (0.0, "101", "skipped", "talking"),
        (0.0, "102", "skipped", "talking"),
        (0.0, "103", "skipped", "talking"),
        (0.0, "104", "skipped", "talking"),
        (0.0, "105", "rung", ""),
        (0.0, "105", "alerting", ""),
        (15.0, "105", "cancelled", "ring time over"),
    ]


def test_staggered_group_starts_each_member_at_its_offset_and_disconnects_at_the_timeout() -> None:
    group = HuntGroup(
        name="sales",
        members=(Member("101"), Member("102", start_delay=6.0), Member("103", start_delay=10.0)),
        strategy=Strategy.STAGGERED,
        numbers=("300",),
        group_timeout=30.0,
        no_answer=Hangup(480),
        all_busy=Hangup(480),
        timeout=Hangup(480),
    )
    net = Net(extensions=extensions(*LINES, *STAFF), groups={"sales": group})
    members = phones(net, "101", "102", "103")
    caller = net.phone("0101", password=password("0101"))
    call = caller.dial("300")
    rings: dict[str, InCall] = {}
    for number, offset in (("101", 0.0), ("102", 6.0), ("103", 10.0)):
        net.run_until(offset)
        rings[number] = members[number].incoming(at=offset)
        rings[number].ring()
    caller.take_response("180 INVITE")
    net.run_until(30.0)
    for number, phone in members.items():  # earlier members kept ringing until now
        cancel = phone.take("CANCEL")
        assert cancel.at == 30.0
        rings[number].respond(200, request=cancel.request())
        rings[number].respond(487)
        phone.take("ACK")
    refused = caller.take("480 INVITE")
    assert refused.at == 30.0
    call.ack(refused.response())
    net.assert_idle()


def test_ring_all_two_answers_at_once_one_is_bridged_the_other_acked_and_byed() -> None:
    group = HuntGroup(name="all", members=(Member("101"), Member("102")), numbers=("300",))
    net = Net(extensions=extensions(*LINES, *STAFF), groups={"all": group})
    members = phones(net, "101", "102")
    caller = net.phone("0101", password=password("0101"))
    call = caller.dial("300")
    first, second = members["101"].incoming(), members["102"].incoming()
    first.ring()
    second.ring()
    net.run_until(2.0)
    first.answer()
    second.answer()  # the same instant
    members["101"].take("ACK")
    assert members["102"].labels() == ["CANCEL", "ACK", "BYE"]
    members["102"].take("CANCEL")
    members["102"].take("ACK")
    members["102"].respond(members["102"].take_request("BYE"), 200)
    caller.take_response("180 INVITE")
    call.ack(caller.take_response("200 INVITE"))
    caller.assert_nothing()
    assert net.call_list()[0]["answered_by"] == "101"
    call.bye()
    members["101"].respond(members["101"].take_request("BYE"), 200)
    outcomes = [(member, outcome) for _, member, outcome, _ in trace(net)]
    assert ("101", "answered") in outcomes
    assert ("102", "cancelled") in outcomes
    assert ("102", "answered late") in outcomes


def test_a_busy_member_is_skipped_and_486_from_a_phone_moves_the_hunt_on() -> None:
    net = shop_net()
    lines = phones(net, *LINES)
    customer = net.outsider()
    call = customer.invite(SHOP_NUMBER)
    mary = lines["101"].incoming(at=0.0)
    net.run_until(1.0)
    mary.respond(486)  # her phone says busy (a call the switch does not see)
    lines["101"].take("ACK")
    iris = lines["102"].incoming(at=1.0)
    iris.ring()
    iris.answer()
    lines["102"].take("ACK")
    customer.take_response("180 INVITE")
    call.ack(customer.take_response("200 INVITE"))
    call.bye()
    lines["102"].respond(lines["102"].take_request("BYE"), 200)
    assert trace(net)[:3] == [
        (0.0, "101", "rung", ""),
        (1.0, "101", "failed", "486"),
        (1.0, "102", "rung", ""),
    ]


def test_first_available_sends_nothing_to_a_member_on_a_call() -> None:
    group = shop(strategy=Strategy.FIRST_AVAILABLE)
    net = shop_net(group)
    lines = phones(net, *LINES)
    talking(net, lines["101"], "0101")
    talking(net, lines["102"], "0102")
    customer = net.outsider()
    customer.invite(SHOP_NUMBER)
    lines["103"].incoming(at=0.0)
    lines["101"].assert_nothing()
    lines["102"].assert_nothing()
    assert net.call_list()[-1]["hunt"] == {"group": "shop", "state": "hunting", "ringing": ["103"]}


def test_a_member_ringing_in_a_hunt_is_busy_for_a_plain_call() -> None:
    net = shop_net()
    lines = phones(net, *LINES)
    customer = net.outsider()
    customer.invite(SHOP_NUMBER)
    lines["101"].incoming().ring()
    caller = net.phone("0101", password=password("0101"))
    direct = caller.dial("101")
    refused = caller.take_response("486 INVITE")
    direct.ack(refused)
    lines["101"].assert_nothing()


def test_the_caller_hangs_up_while_hunting_every_member_is_cancelled_and_freed() -> None:
    group = HuntGroup(name="all", members=(Member("101"), Member("102")), numbers=("300",))
    net = Net(extensions=extensions(*LINES, *STAFF), groups={"all": group})
    members = phones(net, "101", "102")
    caller = net.phone("0101", password=password("0101"))
    call = caller.dial("300")
    ringing = {n: members[n].incoming() for n in members}
    for incoming in ringing.values():
        incoming.ring()
    caller.take_response("180 INVITE")
    net.run_until(3.0)
    call.cancel()
    caller.take("200 CANCEL")
    call.ack(caller.take_response("487 INVITE"))
    for number, phone in members.items():
        cancel = phone.take("CANCEL")
        assert cancel.at == 3.0
        ringing[number].respond(200, request=cancel.request())
        ringing[number].respond(487)
        phone.take("ACK")
    net.assert_idle()
    assert net.records[-1][1].disposition is Disposition.CANCELLED
    assert [e for e in trace(net) if e[2] == "cancelled"] == [
        (3.0, "101", "cancelled", "caller gone"),
        (3.0, "102", "cancelled", "caller gone"),
    ]
    # Both members are free again: a new call rings them both.
    caller.dial("300")
    members["101"].incoming(at=3.0)
    members["102"].incoming(at=3.0)


def test_a_second_caller_waits_for_a_member_still_ringing_for_the_first() -> None:
    group = HuntGroup(
        name="all",
        members=(Member("101"), Member("102")),
        public_numbers=(SHOP_NUMBER,),
        group_timeout=60.0,
    )
    net = Net(extensions=extensions(*LINES, *STAFF), groups={"all": group})
    members = phones(net, "101", "102")
    first = net.outsider()
    first.invite(SHOP_NUMBER)
    a1, b1 = members["101"].incoming(at=0.0), members["102"].incoming(at=0.0)
    a1.ring()
    b1.ring()
    net.run_until(1.0)
    second = net.outsider()
    second.invite(SHOP_NUMBER)  # both members ring for the first caller: it waits
    members["101"].assert_nothing()
    members["102"].assert_nothing()
    net.run_until(2.0)
    a1.answer()  # 101 takes the first caller; 102 stops ringing for it and is free
    members["101"].take("ACK")
    cancel = members["102"].take("CANCEL")
    # Stopped for the first caller, 102 is free: it rings for the second one at once,
    # while its first INVITE still winds down.
    b2 = members["102"].incoming(at=2.0)
    b1.respond(200, request=cancel.request())
    b1.respond(487)
    members["102"].take("ACK")
    b2.ring()
    second.take_response("180 INVITE")


def test_channel_limit_the_next_caller_gets_the_over_limit_destination() -> None:
    net = shop_net(shop(channel_limit=1))
    phones(net, *LINES)
    net.outsider().invite(SHOP_NUMBER)
    late = net.outsider()
    call = late.invite(SHOP_NUMBER)
    refused = late.take_response("486 INVITE")
    call.ack(refused)
    record = net.records[-1][1]
    assert record.disposition is Disposition.BUSY
    assert record.hunts[0]["overflow"] == "over_limit"


def test_all_busy_overflows_to_another_group() -> None:
    backup = HuntGroup(name="backup", members=(Member("105"),), numbers=("301",))
    net = Net(
        extensions=extensions(*LINES, *STAFF),
        groups={
            "shop": shop(all_busy=ToGroup("backup"), members=(Member("101"),)),
            "backup": backup,
        },
    )
    lines = phones(net, "101", "105")
    talking(net, lines["101"], "0101")
    customer = net.outsider()
    call = customer.invite(SHOP_NUMBER)
    incoming = lines["105"].incoming(at=0.0)
    incoming.answer()
    lines["105"].take("ACK")
    call.ack(customer.take_response("200 INVITE"))
    call.bye()
    lines["105"].respond(lines["105"].take_request("BYE"), 200)
    record = net.records[-1][1]
    assert [h["group"] for h in record.hunts] == ["shop", "backup"]
    assert record.answered_by == "105"


def test_no_answer_overflows_to_an_extension_which_rings_for_the_ring_timeout() -> None:
    net = shop_net(shop(members=(Member("101"),), no_answer=ToExtension("105")), ring_timeout=20.0)
    lines = phones(net, "101", "105")
    customer = net.outsider()
    call = customer.invite(SHOP_NUMBER)
    mary = lines["101"].incoming(at=0.0)
    mary.ring()
    net.run_until(15.0)
    cancel = lines["101"].take("CANCEL")
    mary.respond(200, request=cancel.request())
    mary.respond(487)
    lines["101"].take("ACK")
    line5 = lines["105"].incoming(at=15.0)
    line5.ring()
    net.run_until(35.0)
    assert lines["105"].take("CANCEL").at == 35.0
    assert customer.take("180 INVITE").at == 0.0
    refused = customer.take("480 INVITE")
    assert refused.at == 35.0
    call.ack(refused.response())


def test_an_answer_that_crosses_the_cancel_at_the_ring_time_is_released() -> None:
    net = shop_net()
    lines = phones(net, *LINES)
    customer = net.outsider()
    call = customer.invite(SHOP_NUMBER)
    mary = lines["101"].incoming()
    mary.ring()
    net.run_until(15.0)
    cancel = lines["101"].take_request("CANCEL")
    iris = lines["102"].incoming(at=15.0)
    mary.answer()  # crossed our CANCEL on the wire
    mary.respond(200, request=cancel)
    assert lines["101"].labels() == ["ACK", "BYE"]
    lines["101"].take("ACK")
    lines["101"].respond(lines["101"].take_request("BYE"), 200)
    iris.ring()
    iris.answer()
    lines["102"].take("ACK")
    customer.take_response("180 INVITE")
    call.ack(customer.take_response("200 INVITE"))
    assert net.call_list()[0]["answered_by"] == "102"


def test_dnd_and_unregistered_members_are_skipped_at_once() -> None:
    net = Net(
        extensions=extensions(*LINES, *STAFF, dnd=("101",)),
        groups={"shop": shop()},
        rtp_ports=(30000, 30099),
    )
    lines = phones(net, "101", "103")  # 102 never registered
    customer = net.outsider()
    call = customer.invite(SHOP_NUMBER)
    kate = lines["103"].incoming(at=0.0)
    lines["101"].assert_nothing()
    kate.respond(603)
    lines["103"].take("ACK")
    net.run_until(45.0)  # 104 and 105 are not registered either: all busy at once
    refused = customer.take("480 INVITE")
    assert refused.at == 0.0
    call.ack(refused.response())
    assert trace(net) == [
        (0.0, "101", "skipped", "dnd"),
        (0.0, "102", "skipped", "unregistered"),
        (0.0, "103", "rung", ""),
        (0.0, "103", "failed", "603"),
        (0.0, "104", "skipped", "unregistered"),
        (0.0, "105", "skipped", "unregistered"),
    ]
    assert net.records[-1][1].hunts[0]["overflow"] == "all_busy"


def test_status_shows_each_groups_members_state_and_the_calls_in_it() -> None:
    net = shop_net(shop(channel_limit=5))
    lines = phones(net, "101", "102", "103")
    talking(net, lines["101"], "0101")
    net.outsider().invite(SHOP_NUMBER)
    lines["102"].incoming()
    groups = net.switch.snapshot(net.now)["groups"]
    assert groups["shop"]["members"] == [
        {"extension": "101", "state": "talking"},
        {"extension": "102", "state": "ringing"},
        {"extension": "103", "state": "idle"},
        {"extension": "104", "state": "unregistered"},
        {"extension": "105", "state": "unregistered"},
    ]
    assert (groups["shop"]["channels"], groups["shop"]["hunting"]) == (1, 1)
    assert groups["shop"]["channel_limit"] == 5


def test_a_member_who_registers_while_the_group_rings_is_rung_at_once() -> None:
    group = HuntGroup(
        name="all", members=(Member("101"), Member("102")), public_numbers=(SHOP_NUMBER,)
    )
    net = Net(extensions=extensions(*LINES, *STAFF), groups={"all": group})
    mary = net.phone("101", password=password("101"))
    customer = net.outsider()
    customer.invite(SHOP_NUMBER)
    mary.incoming(at=0.0).ring()
    net.run_until(4.0)
    iris = net.phone("102", password=password("102"))  # her phone comes up now
    iris.incoming(at=4.0)
    assert net.call_list()[0]["hunt"] == {
        "group": "all",
        "state": "hunting",
        "ringing": ["101", "102"],
    }


def test_an_unreachable_member_is_skipped_once_qualify_says_so() -> None:
    exts = extensions(*LINES, *STAFF)
    exts["101"] = Extension(name="Mary", password=password("101"), qualify=30.0)
    net = Net(extensions=exts, groups={"shop": shop()}, rtp_ports=(30000, 30099))
    lines = phones(net, "101", "102")
    net.run_until(30.0)
    lines["101"].take("OPTIONS")  # never answered: unreachable after the transaction times out
    net.run_until(70.0)
    customer = net.outsider()
    customer.invite(SHOP_NUMBER)
    lines["102"].incoming(at=70.0)
    assert "INVITE" not in lines["101"].labels()


def test_an_overflow_loop_ends_after_a_few_hunts_and_an_unknown_group_is_refused() -> None:
    # The config check refuses both; the switch still must not loop or crash.
    looping = shop(members=(Member("101"),), all_busy=ToGroup("shop"))
    net = shop_net(looping)
    customer = net.outsider()
    call = customer.invite(SHOP_NUMBER)  # 101 is not registered: all busy, again and again
    refused = customer.take_response("480 INVITE")
    call.ack(refused)
    record = net.records[-1][1]
    assert [h["group"] for h in record.hunts] == ["shop"] * 8
    assert record.end_reason == "hunt: overflow chain too long"

    net = shop_net(shop(members=(Member("101"),), all_busy=ToGroup("gone")))
    customer = net.outsider()
    call = customer.invite(SHOP_NUMBER)
    call.ack(customer.take_response("480 INVITE"))
    assert net.records[-1][1].end_reason == "hunt: no such group"


def test_multichannel_number_each_caller_hunted_on_its_own_then_all_busy() -> None:
    net = shop_net(shop(members=(Member("101"), Member("102"))))
    lines = phones(net, "101", "102")
    bridged: list[OutCall] = []
    for line in ("101", "102"):  # callers 1 and 2: each gets the first free line
        customer = net.outsider()
        call = customer.invite(SHOP_NUMBER)
        incoming = lines[line].incoming()
        for other in set(lines) - {line}:
            lines[other].assert_nothing()  # the line already talking is not rung
        incoming.answer()
        lines[line].take("ACK")
        call.ack(customer.take_response("200 INVITE"))
        bridged.append(call)
    third = net.outsider()
    call = third.invite(SHOP_NUMBER)  # both lines talking: all busy, the fallback at once
    call.ack(third.take_response("200 INVITE"))  # voicemail of line 1, the group's default
    assert [c["answered_by"] for c in net.call_list()] == ["101", "102", "voicemail:101"]
    call.bye()
    third.take_response("200 BYE")
    record = net.records[-1][1]
    assert (record.answered_by, record.hunts[0]["overflow"]) == ("voicemail:101", "all_busy")
    assert net.calls()["active"] == 2
