"""Calls the switch forwards out through a trunk, on a virtual clock: an external hunt
member (a mobile) and an ``external:`` overflow destination (a contact centre). The
forwarded leg keeps the original caller's number where the trunk allows it, carries
Diversion with the company number, and answers the provider's challenge."""

from __future__ import annotations

import dataclasses
from typing import Any

from b2bua.hunt.model import Hangup, HuntGroup, Member, Strategy, ToExternal
from b2bua.registrar.settings import Extension
from b2bua.sip.message import Request, make_response
from b2bua.trunk.settings import Trunk, TrunkSettings
from media.commands import ConfirmAnswer, DigitPressed, StopConfirm
from tests.unit.call.harness import InCall, Net, OutCall, Phone

PROVIDER = "198.51.100.200"
SHOP_NUMBER = "+15550200"
MOBILE = "+447700900123"
CONTACT_CENTRE = "+442080000000"
CUSTOMER = "5551234"  # the harness's outsider calls from this number


def trunk(**fields: Any) -> Trunk:
    settings: dict[str, Any] = {
        "host": PROVIDER,
        "username": "acct",
        "password": "trunk-pw-1",
        "routes": [{"prefix": "+"}],
        "caller_id_number": "+15550299",
    }
    settings.update(fields)
    return Trunk.resolved("main", TrunkSettings.model_validate(settings), [PROVIDER])


def shop(**changes: Any) -> HuntGroup:
    fields: dict[str, Any] = {
        "name": "shop",
        "members": (Member("101"), Member(f"external:{MOBILE}")),
        "strategy": Strategy.LINEAR,
        "public_numbers": (SHOP_NUMBER,),
        "ring_time": 10.0,
        "group_timeout": 60.0,
        "no_answer": Hangup(480),
        "all_busy": Hangup(486),
        "timeout": Hangup(480),
    }
    fields.update(changes)
    return HuntGroup(**fields)


def network(group: HuntGroup, **trunk_fields: Any) -> tuple[Net, Phone, Phone]:
    net = Net(
        extensions={
            "101": Extension(name="Line 1", password="secret-101"),
            "102": Extension(name="Line 2", password="secret-102"),
        },
        groups={"shop": group},
        trunks={"main": trunk(**trunk_fields)},
    )
    provider = net.outsider(PROVIDER, port=5060)
    customer = net.outsider("192.0.2.250")
    return net, provider, customer


def answer_at_provider(
    net: Net, provider: Phone, invite: Request, customer: Phone, call: OutCall
) -> None:
    response = make_response(invite, 200, to_tag="mobile-1")
    response.headers.add("Contact", f"<sip:{MOBILE}@{PROVIDER}:5060>")
    response.headers.add("Content-Type", "application/sdp")
    response.body = provider.sdp()
    provider.send(response)
    provider.take("ACK")
    call.ack(customer.take_response("200 INVITE"))


def test_an_external_member_rings_through_the_trunk_with_the_callers_number() -> None:
    net, provider, customer = network(shop())
    line = net.phone("101", password="secret-101")
    call = customer.invite(SHOP_NUMBER)
    ringing = line.incoming()  # line 1 rings first, for its 10 s
    ringing.ring()
    customer.take_response("180 INVITE")
    provider.assert_nothing()
    net.run(10)
    line.respond(line.take_request("CANCEL"), 200)
    ringing.respond(487)
    line.take("ACK")
    invite = provider.take_request("INVITE")
    assert invite.uri == f"sip:{MOBILE}@{PROVIDER}"
    assert str(invite.from_.uri) == f"sip:{CUSTOMER}@{PROVIDER}"  # the customer's own number
    assert invite.headers.get("p-asserted-identity") == f"<sip:{CUSTOMER}@{PROVIDER}>"
    assert invite.headers.get("diversion") == (
        f"<sip:{SHOP_NUMBER}@{PROVIDER}>;reason=follow-me;counter=1"
    )
    answer_at_provider(net, provider, invite, customer, call)
    snapshot = net.switch.snapshot(net.now)
    members = {m["extension"]: m["state"] for m in snapshot["groups"]["shop"]["members"]}
    assert members == {"101": "idle", f"external:{MOBILE}": "talking"}
    call.bye()
    provider.respond(provider.take_request("BYE"), 200)
    customer.take_response("200 BYE")
    record = net.records[-1][1]
    assert record.answered_by == f"external:{MOBILE}"


def test_without_forward_caller_id_the_company_number_is_shown() -> None:
    _net, provider, customer = network(
        shop(members=(Member(f"external:{MOBILE}"),)), forward_caller_id=False
    )
    customer.invite(SHOP_NUMBER)
    invite = provider.take_request("INVITE")
    assert str(invite.from_.uri) == f"sip:{SHOP_NUMBER}@{PROVIDER}"


def test_an_external_overflow_forwards_with_the_busy_reason_and_answers_the_challenge() -> None:
    group = shop(members=(Member("101"),), all_busy=ToExternal(CONTACT_CENTRE))
    net, provider, customer = network(group)
    # Line 1 is not registered: every member is unavailable, the hunt overflows at once.
    call = customer.invite(SHOP_NUMBER)
    first = provider.take_request("INVITE")
    assert first.uri == f"sip:{CONTACT_CENTRE}@{PROVIDER}"
    assert first.headers.get("diversion") == (
        f"<sip:{SHOP_NUMBER}@{PROVIDER}>;reason=user-busy;counter=1"
    )
    challenge = make_response(first, 407, to_tag="cc-0")
    challenge.headers.add("Proxy-Authenticate", 'Digest realm="p.test", nonce="abc", qop="auth"')
    provider.send(challenge)
    provider.take("ACK")
    second = provider.take_request("INVITE")
    assert second.headers.get("proxy-authorization") is not None
    assert second.headers.get("diversion") == first.headers.get("diversion")
    answer_at_provider(net, provider, second, customer, call)
    call.bye()
    provider.respond(provider.take_request("BYE"), 200)
    customer.take_response("200 BYE")
    assert net.records[-1][1].answered_by == f"external:{CONTACT_CENTRE}"
    net.assert_idle()


def test_a_withheld_caller_stays_withheld_when_forwarded() -> None:
    _net, provider, customer = network(shop(members=(Member(f"external:{MOBILE}"),)))
    customer.invite(SHOP_NUMBER, extra=("Privacy: id",))
    invite = provider.take_request("INVITE")
    assert str(invite.from_.uri) == "sip:anonymous@anonymous.invalid"
    assert invite.headers.get("privacy") == "id"


# -- confirm-call: the person who answers a mobile member presses 1 first


def confirming_net(**changes: Any) -> tuple[Net, Phone, Phone, OutCall, Request]:
    mobile = Member(f"external:{MOBILE}", confirm=True)
    group = shop(members=(mobile,), **changes)
    net, provider, customer = network(group)
    call = customer.invite(SHOP_NUMBER)
    invite = provider.take_request("INVITE")
    provider.respond(invite, 180, tag="mobile-1")
    customer.take_response("180 INVITE")
    response = make_response(invite, 200, to_tag="mobile-1")
    response.headers.add("Contact", f"<sip:{MOBILE}@{PROVIDER}:5060>")
    response.headers.add("Content-Type", "application/sdp")
    response.body = provider.sdp()
    provider.send(response)
    provider.take("ACK")  # the mobile's answer is taken at once...
    customer.assert_nothing()  # ...but the caller is not bridged: still ringing
    return net, provider, customer, call, invite


def test_the_answering_mobile_hears_the_prompt_and_1_bridges_the_caller() -> None:
    net, provider, customer, call, _ = confirming_net()
    [live] = net.call_list()
    assert live["callees"] == [
        {
            "leg": 1,
            "to": f"external:{MOBILE}",
            "peer": f"udp:{PROVIDER}:5060",
            "state": "confirming",
            "status": 200,
        }
    ]
    asked = net.media_of(ConfirmAnswer)
    assert len(asked) == 1
    command = asked[0][1]
    assert isinstance(command, ConfirmAnswer)
    assert command.remote == provider.media_address
    assert (command.payload_type, command.event_payload_type) == (0, 101)
    net.run(3)
    net.feed(DigitPressed(session_id=command.session_id, digit="2"))  # not the key
    customer.assert_nothing()
    net.feed(DigitPressed(session_id=command.session_id, digit="1"))
    call.ack(customer.take_response("200 INVITE"))
    assert len(net.media_of(StopConfirm)) == 1
    call.bye()
    provider.respond(provider.take_request("BYE"), 200)
    customer.take_response("200 BYE")
    record = net.records[-1][1]
    assert record.answered_by == f"external:{MOBILE}"
    net.assert_idle()


def test_a_machine_that_never_presses_1_is_not_bridged() -> None:
    net, provider, customer, call, _ = confirming_net()
    net.run(14.9)
    customer.assert_nothing()
    provider.assert_nothing()
    net.run(0.1)  # the confirm timeout (15 s): hang up on the mobile's voicemail
    bye = provider.take_request("BYE")
    assert len(net.media_of(StopConfirm)) == 1
    provider.respond(bye, 200)
    # The member failed: the group's no-answer destination refuses the caller (480).
    refused = customer.take_response("480 INVITE")
    call.ack(refused)
    record = net.records[-1][1]
    assert record.answered_by is None
    assert record.duration == 0.0
    net.run(60)
    net.assert_idle()


def test_1_by_sip_info_confirms_as_well() -> None:
    _, provider, customer, call, invite = confirming_net()
    mobile_side = InCall(provider, invite, "mobile-1")
    info = mobile_side.dialog.send(
        "INFO", body=b"Signal=1\r\nDuration=160\r\n", content_type="application/dtmf-relay"
    )
    assert provider.take_response("200 INFO").cseq.number == info.cseq.number
    call.ack(customer.take_response("200 INVITE"))


def test_the_caller_hanging_up_during_the_confirmation_ends_it() -> None:
    net, provider, customer, call, _ = confirming_net()
    call.cancel()
    customer.take_response("200 CANCEL")
    call.ack(customer.take_response("487 INVITE"))
    provider.respond(provider.take_request("BYE"), 200)
    assert len(net.media_of(StopConfirm)) == 1
    net.run(60)
    net.assert_idle()


def test_a_reload_that_adds_an_external_member_rings_it_on_the_next_call() -> None:
    net, provider, customer = network(shop(members=(Member("101"),)))
    settings = net.switch.settings
    with_mobile = shop(members=(Member(f"external:{MOBILE}"),))
    net.switch.reload(dataclasses.replace(settings, groups={"shop": with_mobile}))
    members = net.switch.snapshot(net.now)["groups"]["shop"]["members"]
    assert members == [{"extension": f"external:{MOBILE}", "state": "idle"}]
    customer.invite(SHOP_NUMBER)
    assert provider.take_request("INVITE").uri == f"sip:{MOBILE}@{PROVIDER}"
