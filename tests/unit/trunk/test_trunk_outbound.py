"""Calls out through a carrier trunk, through the switch on a virtual clock: only an
authenticated extension with permission reaches the provider; the switch answers the
provider's challenge with the trunk's credentials; the caller ID, P-Asserted-Identity and
Privacy are as configured; caps, blocked prefixes and emergency numbers hold."""

from __future__ import annotations

from typing import Any

from b2bua.call.settings import NumberEntry
from b2bua.registrar.settings import Extension
from b2bua.sip.digest import (
    Algorithm,
    answer_challenge,
    compute_ha1,
    parse_challenge,
    parse_credentials,
    verify,
)
from b2bua.sip.message import Request, Response, make_response
from b2bua.trunk.settings import Trunk, TrunkSettings
from tests.unit.call.harness import PASSWORDS, Net, OutCall, Phone

PROVIDER = "198.51.100.200"
PROVIDER_REALM = "provider.test"
ACCOUNT = "5550200"
ACCOUNT_PASSWORD = "trunk-pw-1"
NATIONAL = {"prefix": "0", "strip": 1, "add": "+44"}
INTERNATIONAL = {"prefix": "00", "strip": 2, "add": "+", "category": "international"}


def trunk(**fields: Any) -> Trunk:
    settings: dict[str, Any] = {
        "host": PROVIDER,
        "username": ACCOUNT,
        "password": ACCOUNT_PASSWORD,
        "routes": [NATIONAL, INTERNATIONAL],
        "caller_id_number": "+442070000000",
    }
    settings.update(fields)
    return Trunk.resolved("main", TrunkSettings.model_validate(settings), [PROVIDER])


def extensions(**permissions: list[str]) -> dict[str, Extension]:
    return {
        number: Extension(
            name=f"Ext {number}", password=password, permissions=permissions.get(f"e{number}", [])
        )
        for number, password in PASSWORDS.items()
    }


def network(*, the_trunk: Trunk | None = None, **permissions: list[str]) -> tuple[Net, Phone]:
    net = Net(
        trunks={"main": the_trunk or trunk()},
        extensions=extensions(**(permissions or {"e0101": ["national"]})),
    )
    provider = net.outsider(PROVIDER, port=5060)
    return net, provider


def challenge(provider: Phone, invite: Request, status: int = 407) -> Response:
    header = "Proxy-Authenticate" if status == 407 else "WWW-Authenticate"
    response = make_response(invite, status, to_tag="prov-1")
    response.headers.add(
        header, f'Digest realm="{PROVIDER_REALM}", nonce="n0nce-1", qop="auth", algorithm=MD5'
    )
    provider.send(response)
    provider.take("ACK")  # the switch's INVITE client transaction ACKs the challenge
    return response


def check_credentials(invite: Request, header: str = "proxy-authorization") -> None:
    value = invite.headers.get(header)
    assert value is not None, invite
    credentials = parse_credentials(value)
    assert (credentials.username, credentials.realm) == (ACCOUNT, PROVIDER_REALM)
    ha1 = compute_ha1(ACCOUNT, PROVIDER_REALM, ACCOUNT_PASSWORD, Algorithm.MD5)
    assert verify(credentials, method="INVITE", ha1=ha1)


def test_an_extension_with_permission_calls_out_and_the_switch_answers_the_challenge() -> None:
    net, provider = network()
    mary = net.phone("0101")
    call = mary.dial("02071234567")
    first = provider.take_request("INVITE")
    assert first.uri == f"sip:+442071234567@{PROVIDER}"
    assert first.headers.get("to") == f"<sip:+442071234567@{PROVIDER}>"
    assert str(first.from_.uri) == f"sip:+442070000000@{PROVIDER}"
    assert first.from_.display_name == "Ext 0101"
    assert first.headers.get("p-asserted-identity") == f"<sip:+442070000000@{PROVIDER}>"
    assert first.headers.get("privacy") == "none"
    assert first.headers.get("proxy-authorization") is None
    challenge(provider, first)
    second = provider.take_request("INVITE")
    assert (second.call_id, second.from_.tag) == (first.call_id, first.from_.tag)
    assert second.cseq.number == first.cseq.number + 1
    assert second.top_via.branch != first.top_via.branch
    assert second.body == first.body
    check_credentials(second)
    response = make_response(second, 200, to_tag="prov-2")
    response.headers.add("Contact", f"<sip:+442071234567@{PROVIDER}:5060>")
    response.headers.add("Content-Type", "application/sdp")
    response.body = provider.sdp()
    provider.send(response)
    provider.take("ACK")
    call.ack(mary.take_response("200 INVITE"))
    assert net.switch.snapshot(net.now)["trunks"]["main"]["calls"] == 1
    call.bye()
    provider.respond(provider.take_request("BYE"), 200)
    mary.take_response("200 BYE")
    record = net.records[-1][1]
    assert (record.caller, record.callee, record.answered_by) == (
        "0101",
        "02071234567",
        "trunk:main",
    )
    assert net.switch.snapshot(net.now)["trunks"]["main"]["calls"] == 0
    net.assert_idle()


def test_a_401_is_answered_with_authorization() -> None:
    net, provider = network()
    net.phone("0101").dial("02071234567")
    first = provider.take_request("INVITE")
    challenge(provider, first, 401)
    check_credentials(provider.take_request("INVITE"), "authorization")


def test_a_second_challenge_means_wrong_credentials_and_the_caller_gets_403() -> None:
    net, provider = network()
    mary = net.phone("0101")
    call = mary.dial("02071234567")
    challenge(provider, provider.take_request("INVITE"))
    again = provider.take_request("INVITE")
    challenge(provider, again)
    refused = mary.take_response("403 INVITE")  # never the provider's 407
    call.ack(refused)
    provider.assert_nothing()
    net.run(60)
    net.assert_idle()


def test_a_challenge_for_another_realm_than_the_fixed_one_is_not_answered() -> None:
    net, provider = network(the_trunk=trunk(realm="elsewhere.test"))
    mary = net.phone("0101")
    mary.dial("02071234567")
    challenge(provider, provider.take_request("INVITE"))
    mary.take_response("403 INVITE")
    provider.assert_nothing()


def test_cancel_after_the_challenge_cancels_the_authenticated_invite() -> None:
    net, provider = network()
    mary = net.phone("0101")
    call = mary.dial("02071234567")
    challenge(provider, provider.take_request("INVITE"))
    second = provider.take_request("INVITE")
    provider.respond(second, 180, tag="prov-3")
    mary.take_response("180 INVITE")
    call.cancel()
    mary.take_response("200 CANCEL")
    cancel = provider.take_request("CANCEL")
    assert (cancel.cseq.number, cancel.top_via.branch) == (
        second.cseq.number,
        second.top_via.branch,
    )
    provider.respond(cancel, 200)
    provider.respond(second, 487, tag="prov-3")
    provider.take("ACK")
    call.ack(mary.take_response("487 INVITE"))
    net.run(60)
    net.assert_idle()


def test_hide_number_withholds_the_caller_id_but_asserts_it_to_the_provider() -> None:
    net = Net(
        trunks={"main": trunk()},
        extensions={
            "0101": Extension(
                password=PASSWORDS["0101"], permissions=["national"], hide_number=True
            )
        },
    )
    provider = net.outsider(PROVIDER, port=5060)
    net.phone("0101").dial("02071234567")
    invite = provider.take_request("INVITE")
    assert (invite.from_.display_name, str(invite.from_.uri)) == (
        "Anonymous",
        "sip:anonymous@anonymous.invalid",
    )
    assert invite.headers.get("p-asserted-identity") == f"<sip:+442070000000@{PROVIDER}>"
    assert invite.headers.get("privacy") == "id"


def test_the_extensions_own_did_is_its_caller_id() -> None:
    net = Net(trunks={"main": trunk()}, extensions=extensions(e0102=["national"]))
    provider = net.outsider(PROVIDER, port=5060)
    # The harness's table maps the public +15550100 to extension 0102: its DID.
    net.phone("0102").dial("02071234567")
    assert str(provider.take_request("INVITE").from_.uri) == f"sip:+15550100@{PROVIDER}"


def test_an_extension_without_permission_gets_403_and_nothing_reaches_the_provider() -> None:
    net, provider = network(e0101=["national"])
    mary = net.phone("0101")
    call = mary.dial("0033123456789")  # international
    call.ack(mary.take_response("403 INVITE"))
    kate = net.phone("0102")  # no permissions at all
    other = kate.dial("02071234567")
    other.ack(kate.take_response("403 INVITE"))
    provider.assert_nothing()
    net.assert_idle()


def test_unauthenticated_callers_never_reach_the_provider() -> None:
    net, provider = network()
    stranger = net.outsider("192.0.2.250")
    stranger.invite("02071234567")
    stranger.take_response("407 INVITE")
    # A wrong password: 403.
    liar = net.phone("0101", register=False, password="not-the-password")
    first = liar.invite("02071234567")
    challenged = liar.take_response("407 INVITE")
    OutCall(liar, first.invite).ack(challenged)
    authorization = answer_challenge(
        parse_challenge(challenged.headers.get_all("proxy-authenticate")[0]),
        username="0101",
        password="not-the-password",
        method="INVITE",
        uri=first.invite.uri,
        cnonce="c0ffee",
        nc=1,
    )
    liar.invite(
        "02071234567",
        cseq=2,
        call_id=first.invite.call_id,
        from_tag=first.invite.from_.tag,
        extra=(f"Proxy-Authorization: {authorization}",),
    )
    liar.take_response("403 INVITE")
    provider.assert_nothing()


def test_a_trunk_call_for_an_unknown_did_never_leaves_through_a_trunk() -> None:
    _net, provider = network()
    # The provider itself (trusted by address) asks for an external number: no bounce.
    provider.invite("02071234567")
    provider.take_response("404 INVITE")
    provider.assert_nothing()


def test_blocked_prefixes_get_403_whatever_the_permissions() -> None:
    net = Net(
        trunks={"main": trunk()},
        extensions=extensions(e0101=["national", "international"]),
        blocked_prefixes=["0900"],
    )
    provider = net.outsider(PROVIDER, port=5060)
    mary = net.phone("0101")
    call = mary.dial("0900123456")
    refused = mary.take_response("403 INVITE")
    assert refused.reason == "Blocked Prefix"
    call.ack(refused)
    provider.assert_nothing()


def test_emergency_numbers_need_no_permission_and_pass_the_trunk_cap() -> None:
    net = Net(trunks={"main": trunk(max_calls=1)}, extensions=extensions())
    provider = net.outsider(PROVIDER, port=5060)
    net.phone("0101").dial("112")  # no permissions at all
    first = provider.take_request("INVITE")
    assert first.uri == f"sip:112@{PROVIDER}"
    provider.respond(first, 180, tag="prov-e1")
    net.phone("0102").dial("911")  # the trunk is full: an emergency call still goes out
    assert provider.take_request("INVITE").uri == f"sip:911@{PROVIDER}"


def test_the_trunk_cap_and_the_global_cap_refuse_with_503() -> None:
    net = Net(
        trunks={"main": trunk(max_calls=1)},
        extensions=extensions(e0101=["national"], e0102=["national"]),
    )
    provider = net.outsider(PROVIDER, port=5060)
    net.phone("0101").dial("02071234567")
    provider.respond(provider.take_request("INVITE"), 180, tag="prov-c1")
    kate = net.phone("0102")
    call = kate.dial("02071234568")
    busy = kate.take_response("503 INVITE")
    assert busy.headers.get("retry-after") == "5"
    call.ack(busy)
    provider.assert_nothing()

    net = Net(
        trunks={"main": trunk()},
        extensions=extensions(e0101=["national"], e0102=["national"]),
        max_trunk_calls=1,
    )
    provider = net.outsider(PROVIDER, port=5060)
    net.phone("0101").dial("02071234567")
    provider.take_request("INVITE")
    kate = net.phone("0102")
    kate.dial("02071234568")
    kate.take_response("503 INVITE")
    provider.assert_nothing()


def test_without_trunk_routes_an_external_number_is_404() -> None:
    net = Net(
        trunks={"main": trunk(routes=[])},
        extensions=extensions(e0101=["national"]),
        numbers={"+15550100": NumberEntry(destination="extension:0102", public=True)},
    )
    mary = net.phone("0101")
    call = mary.dial("02071234567")
    call.ack(mary.take_response("404 INVITE"))
