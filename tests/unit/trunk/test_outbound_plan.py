"""The outbound plan on its own: longest prefix wins across trunks, strip and add, blocked
prefixes, permissions by category and prefix, emergency numbers, the caller ID policy,
and how a call out is written (From, P-Asserted-Identity, Privacy)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from b2bua.call.settings import CallSettings
from b2bua.config import Config
from b2bua.hunt.settings import MemberSettings
from b2bua.registrar.settings import Extension
from b2bua.trunk.outbound import (
    ANONYMOUS_FROM,
    BLOCKED,
    NOT_PERMITTED,
    OutboundPlan,
    Refused,
    ToTrunk,
    trunk_target,
)
from b2bua.trunk.settings import OutboundRoute, Trunk, TrunkSettings


def trunk(name: str, host: str, **fields: Any) -> Trunk:
    return Trunk.resolved(name, TrunkSettings.model_validate({"host": host, **fields}), [host])


NATIONAL = {"prefix": "0", "strip": 1, "add": "+44"}
INTERNATIONAL = {"prefix": "00", "strip": 2, "add": "+", "category": "international"}


def plan(
    *trunks: Trunk,
    permissions: list[str] | None = None,
    hide: bool = False,
    calls: CallSettings | None = None,
    extension_dids: dict[str, str] | None = None,
    group_dids: dict[str, str] | None = None,
) -> OutboundPlan:
    extension = Extension(
        name="Mary",
        password="secret-0101",
        permissions=permissions if permissions is not None else ["national"],
        hide_number=hide,
    )
    return OutboundPlan(
        {t.name: t for t in trunks},
        calls or CallSettings(),
        {"101": extension},
        extension_dids=extension_dids or {},
        group_dids=group_dids or {},
    )


MAIN = trunk("main", "198.51.100.1", routes=[NATIONAL, INTERNATIONAL], caller_id_number="+4420")
CHEAP = trunk("cheap", "198.51.100.2", routes=[{"prefix": "0044", "strip": 4, "add": "0"}])


def routed(result: ToTrunk | Refused | None) -> ToTrunk:
    assert isinstance(result, ToTrunk), result
    return result


def test_the_longest_prefix_of_all_trunks_wins_and_rewrites_the_number() -> None:
    p = plan(MAIN, CHEAP, permissions=["national", "international"])
    national = routed(p.route("02071234567", "101"))
    assert (national.trunk.name, national.number, national.category) == (
        "main",
        "+442071234567",
        "national",
    )
    abroad = routed(p.route("0033123456789", "101"))
    assert (abroad.trunk.name, abroad.number, abroad.category) == (
        "main",
        "+33123456789",
        "international",
    )
    # 0044 is longer than 00: the cheap trunk takes calls to the UK written abroad-style.
    cheap = routed(p.route("00442071234567", "101"))
    assert (cheap.trunk.name, cheap.number) == ("cheap", "02071234567")


def test_a_number_no_route_takes_is_not_for_a_trunk() -> None:
    p = plan(trunk("only-uk", "198.51.100.1", routes=[{"prefix": "0"}]))
    assert p.route("12345", "101") is None
    assert p.route("not-a-number", "101") is None
    assert p.route(None, "101") is None


def test_without_the_category_in_its_permissions_the_extension_gets_403() -> None:
    p = plan(MAIN, permissions=["national"])
    assert p.route("0033123456789", "101") == Refused(403, NOT_PERMITTED)
    assert plan(MAIN, permissions=[]).route("02071234567", "101") == Refused(403, NOT_PERMITTED)


def test_a_prefix_permission_allows_that_prefix_only_as_dialled_or_as_sent() -> None:
    p = plan(MAIN, permissions=["+353"])  # Ireland, whatever its category
    assert routed(p.route("00353123456", "101")).number == "+353123456"
    assert p.route("0033123456789", "101") == Refused(403, NOT_PERMITTED)
    assert routed(plan(MAIN, permissions=["0035"]).route("00353123456", "101"))


def test_blocked_prefixes_are_refused_even_with_permission() -> None:
    calls = CallSettings(blocked_prefixes=["0900", "+44909"])
    p = plan(MAIN, permissions=["national", "international"], calls=calls)
    assert p.route("0900123456", "101") == Refused(403, BLOCKED)  # as dialled
    assert p.route("0909123456", "101") == Refused(403, BLOCKED)  # as sent: +44909...
    assert routed(p.route("0207123456", "101"))


def test_emergency_numbers_need_no_permission_and_are_never_withheld() -> None:
    calls = CallSettings(emergency_numbers=["112", "999"], blocked_prefixes=["1", "9"])
    p = plan(MAIN, permissions=[], hide=True, calls=calls)
    call = routed(p.route("999", "101"))
    assert (call.trunk.name, call.number, call.emergency, call.hide) == ("main", "999", True, False)
    assert call.caller_id == "+4420"


def test_an_emergency_number_follows_a_route_that_matches_it() -> None:
    routes = [NATIONAL, {"prefix": "112", "add": "+44"}]
    p = plan(trunk("main", "198.51.100.1", routes=routes), permissions=[])
    call = routed(p.route("112", "101"))
    assert (call.number, call.emergency) == ("+44112", True)


def test_emergency_without_any_trunk_has_nowhere_to_go() -> None:
    assert plan(permissions=[]).route("112", "101") is None


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("extension", "+442071110101"),
        ("group", "+442071110000"),
        ("fixed", "+4420"),
    ],
)
def test_the_caller_id_policy_picks_the_number_shown(policy: str, expected: str) -> None:
    t = trunk("main", "198.51.100.1", routes=[NATIONAL], caller_id=policy, caller_id_number="+4420")
    p = plan(t, extension_dids={"101": "+442071110101"}, group_dids={"101": "+442071110000"})
    assert routed(p.route("0207", "101")).caller_id == expected


def test_the_caller_id_falls_back_to_the_group_then_the_fixed_number_then_the_account() -> None:
    t = trunk("main", "198.51.100.1", routes=[NATIONAL], caller_id_number="+4420")
    assert plan(t, group_dids={"101": "+4421"}).caller_id(t, "101") == "+4421"
    assert plan(t).caller_id(t, "101") == "+4420"
    account = trunk("acct", "198.51.100.1", username="5550200", password="pw-123456")
    assert plan(account).caller_id(account, "101") == "5550200"
    bare = trunk("bare", "198.51.100.1")
    assert plan(bare).caller_id(bare, "101") == "101"


def test_a_call_out_asserts_the_caller_id_and_says_whether_it_may_be_shown() -> None:
    t = trunk("main", "198.51.100.1", port=5080, username="acct", password="pw-123456")
    shown = trunk_target(ToTrunk(t, "+4420", "0207", "national", "+4411"), 'Mary "M"')
    assert shown.contact == "sip:+4420@198.51.100.1:5080"
    assert shown.peer.host == "198.51.100.1"
    assert shown.peer.port == 5080
    leg = shown.trunk
    assert leg is not None
    assert leg.account is not None
    assert leg.from_ == '"Mary M" <sip:+4411@198.51.100.1:5080>'
    assert dict(leg.headers) == {
        "P-Asserted-Identity": "<sip:+4411@198.51.100.1:5080>",
        "Privacy": "none",
    }
    assert leg.account.username == "acct"
    hidden = trunk_target(ToTrunk(t, "+4420", "0207", "national", "+4411", hide=True), "Mary")
    assert hidden.trunk is not None
    assert hidden.trunk.from_ == ANONYMOUS_FROM
    assert dict(hidden.trunk.headers)["Privacy"] == "id"


def test_the_provider_domain_names_the_uris_when_set() -> None:
    t = trunk("main", "198.51.100.1", port=5080, domain="sip.example.net")
    target = trunk_target(ToTrunk(t, "+4420", "0207", "national", "+4411"), None)
    assert target.contact == "sip:+4420@sip.example.net"
    assert target.trunk is not None
    assert target.trunk.account is None


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"prefix": "0", "strip": 2}, "removes more than the prefix"),
        ({"prefix": "0x"}, "expected digits"),
        ({"prefix": "0", "add": "++4"}, "expected digits"),
        ({"prefix": "0", "category": "premium"}, "national"),
    ],
)
def test_bad_routes_are_refused(route: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OutboundRoute.model_validate(route)


def test_a_prefix_given_twice_and_fixed_without_a_number_are_refused() -> None:
    with pytest.raises(ValidationError) as error:
        TrunkSettings.model_validate(
            {
                "host": "198.51.100.1",
                "routes": [{"prefix": "0"}, {"prefix": "0"}],
                "caller_id": "fixed",
            }
        )
    text = str(error.value)
    assert "prefix '0' given twice" in text
    assert "caller_id_number" in text


def test_bad_permissions_are_refused() -> None:
    with pytest.raises(ValidationError, match="expected internal, national, international"):
        Extension(password="secret-0101", permissions=["premium"])


def test_external_members_and_destinations_need_a_trunk_route() -> None:
    base: dict[str, Any] = {
        "extensions": {"101": {"password": "secret-0101"}},
        "groups": {
            "shop": {
                "members": ["101", "external:+447700900123", {"external": "+447700900124"}],
                "destinations": {"all_busy": "external:+33123"},
            }
        },
    }
    with pytest.raises(ValidationError) as error:
        Config.model_validate(base)
    text = str(error.value)
    assert "groups.shop.members[1].external" in text
    assert "groups.shop.members[2].external" in text
    assert "groups.shop.destinations.all_busy" in text
    assert "no trunk route takes +33123" in text
    routed = {**base, "trunks": {"main": {"host": "198.51.100.1", "routes": [{"prefix": "+"}]}}}
    group = Config.model_validate(routed).hunt_groups()["shop"]
    assert [m.number for m in group.members] == [
        "101",
        "external:+447700900123",
        "external:+447700900124",
    ]


def test_a_member_is_an_extension_or_an_external_number_not_both() -> None:
    with pytest.raises(ValidationError, match="either extension or external"):
        MemberSettings.model_validate({"extension": "101", "external": "+4477"})
    with pytest.raises(ValidationError):
        MemberSettings.model_validate("external:mobile")


def test_emergency_numbers_may_not_be_internal_numbers() -> None:
    with pytest.raises(ValidationError, match="112 is also an internal number"):
        Config.model_validate({"extensions": {"112": {"password": "secret-0101"}}})


def test_confirm_is_for_external_members_only() -> None:
    with pytest.raises(ValidationError, match="confirm applies to external members"):
        MemberSettings.model_validate({"extension": "101", "confirm": True})
    member = MemberSettings.model_validate({"external": "+447700900123", "confirm": True})
    assert (member.number, member.confirm) == ("external:+447700900123", True)
