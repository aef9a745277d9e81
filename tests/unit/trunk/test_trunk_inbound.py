"""Calls a carrier trunk delivers, through the switch on a virtual clock: the trunk is
known by its source address only, its DID is read where the trunk says and routed
through the number table, its call cap holds, and the policy for untrusted sources."""

from __future__ import annotations

import pytest

from b2bua.trunk.settings import Trunk, TrunkSettings
from tests.unit.call.harness import PRIVATE_NUMBER, PUBLIC_NUMBER, REALM, Net, OutCall, Phone

PROVIDER = "198.51.100.200"
PROVIDER_NET = "198.51.100.192/28"  # the provider's published signalling addresses
OTHER_PROXY = "198.51.100.201"  # inside that network: another of its proxies
STRANGER = "192.0.2.250"


def trunk(name: str = "carrier", *, host: str = PROVIDER, **fields: object) -> Trunk:
    settings = TrunkSettings.model_validate({"host": host, **fields})
    return Trunk.resolved(name, settings, [host])


def net_with(*trunks: Trunk, **kwargs: object) -> Net:
    return Net(trunks={t.name: t for t in trunks}, **kwargs)  # type: ignore[arg-type]


def answer(net: Net, callee: Phone, call: OutCall, caller: Phone) -> None:
    incoming = callee.incoming(at=net.now)
    incoming.answer()
    callee.take("ACK")
    call.ack(caller.take_response("200 INVITE"))


def hang_up(call: OutCall, caller: Phone, callee: Phone) -> None:
    call.bye()
    callee.respond(callee.take_request("BYE"), 200)
    caller.take_response("200 BYE")


def test_a_did_from_the_trunks_address_reaches_a_number_that_is_not_public() -> None:
    net = net_with(trunk())
    callee = net.phone("0103")
    provider = net.outsider(PROVIDER)
    call = provider.invite(PRIVATE_NUMBER)  # 7000 -> extension 0103, extensions only
    answer(net, callee, call, provider)  # no 407: the trunk is trusted by its address
    assert net.switch.snapshot(net.now)["trunks"]["carrier"]["calls"] == 1
    hang_up(call, provider, callee)
    record = net.records[-1][1]
    assert (record.caller, record.callee, record.answered_by) == ("5551234", "7000", "0103")
    assert net.switch.snapshot(net.now)["trunks"]["carrier"]["calls"] == 0
    net.assert_idle()


def test_the_same_invite_from_another_source_is_challenged_and_rings_nobody() -> None:
    net = net_with(trunk())
    callee = net.phone("0103")
    stranger = net.outsider(STRANGER)
    stranger.invite(PRIVATE_NUMBER)
    stranger.take_response("407 INVITE")
    callee.assert_nothing()
    assert net.calls()["active"] == 0


def test_an_allow_list_network_admits_every_address_in_it() -> None:
    net = net_with(trunk(allow=[PROVIDER_NET]))
    callee = net.phone("0103")
    provider = net.outsider(OTHER_PROXY)
    call = provider.invite(PRIVATE_NUMBER)
    answer(net, callee, call, provider)


def test_an_extensions_own_number_is_not_a_did() -> None:
    net = net_with(trunk())
    net.phone("0103")
    provider = net.outsider(PROVIDER)
    provider.invite("0103")
    provider.take_response("404 INVITE")


def test_a_leading_plus_is_matched_with_or_without_it() -> None:
    net = net_with(trunk())
    callee = net.phone("0102")
    provider = net.outsider(PROVIDER)
    call = provider.invite(PUBLIC_NUMBER.removeprefix("+"))  # the table has +15550100
    answer(net, callee, call, provider)


def test_did_from_to_reads_the_to_header() -> None:
    net = net_with(trunk(did_from="to"))
    callee = net.phone("0103")
    provider = net.outsider(PROVIDER)
    # The provider sends the call to our registered contact; the DID is only in To.
    call = provider.invite(PRIVATE_NUMBER, uri=f"sip:shop@{REALM}")
    answer(net, callee, call, provider)


def test_did_from_contact_is_the_trunks_contact_user() -> None:
    registered = trunk(
        register=True,
        username="acct-1",
        password="pw-123456",
        contact_user=PRIVATE_NUMBER,
        did_from="contact",
        keepalive=0,
    )
    net = net_with(registered)
    callee = net.phone("0103")
    provider = net.outsider(PROVIDER)
    call = provider.invite("anything", uri=f"sip:{PRIVATE_NUMBER}@{REALM}")
    answer(net, callee, call, provider)


def test_two_trunks_at_one_address_the_contact_named_picks_the_registration_trunk() -> None:
    first = trunk("first", did_from="to")
    second = trunk("second", register=True, username="acct-2", password="pw-123456", keepalive=0)
    net = net_with(first, second)
    callee = net.phone("0103")
    provider = net.outsider(PROVIDER)
    provider.invite("acct-2", uri=f"sip:acct-2@{REALM}")
    # "second" reads the Request-URI: acct-2 is no DID of the table.
    provider.take_response("404 INVITE")
    call = provider.invite(PRIVATE_NUMBER, uri=f"sip:other@{REALM}")
    answer(net, callee, call, provider)  # "first" (did_from = to) took it
    trunks = net.switch.snapshot(net.now)["trunks"]
    assert (trunks["first"]["calls"], trunks["second"]["calls"]) == (1, 0)


def test_the_trunks_call_cap_answers_503_and_frees_up_when_a_call_ends() -> None:
    net = net_with(trunk(max_calls=1))
    first_callee = net.phone("0103")
    second_callee = net.phone("0102")
    provider = net.outsider(PROVIDER)
    first = provider.invite(PRIVATE_NUMBER)
    answer(net, first_callee, first, provider)
    provider.invite(PUBLIC_NUMBER)
    refused = provider.take_response("503 INVITE")
    assert refused.headers.get("retry-after") == "5"
    second_callee.assert_nothing()
    # A caller that is not the trunk is not counted against it.
    outsider = net.outsider()
    other = outsider.invite(PUBLIC_NUMBER)
    answer(net, second_callee, other, outsider)
    hang_up(other, outsider, second_callee)
    hang_up(first, provider, first_callee)
    third = provider.invite(PRIVATE_NUMBER)
    answer(net, first_callee, third, provider)


@pytest.mark.parametrize("policy", ["public", "refuse"])
def test_the_untrusted_policy_decides_public_numbers_trunks_go_through(policy: str) -> None:
    net = net_with(trunk(), untrusted_calls=policy)
    callee = net.phone("0102")
    outsider = net.outsider()
    call = outsider.invite(PUBLIC_NUMBER)
    if policy == "public":
        answer(net, callee, call, outsider)
        hang_up(call, outsider, callee)
    else:
        outsider.take_response("407 INVITE")
        callee.assert_nothing()
    provider = net.outsider(PROVIDER)
    call = provider.invite(PUBLIC_NUMBER)
    answer(net, callee, call, provider)


def test_status_lists_each_trunk() -> None:
    net = net_with(trunk(allow=[PROVIDER_NET], max_calls=4))
    assert net.switch.snapshot(net.now)["trunks"] == {
        "carrier": {
            "provider": f"udp:{PROVIDER}:5060",
            "allow": [PROVIDER_NET],
            "did_from": "request_uri",
            "calls": 0,
            "max_calls": 4,
        }
    }
