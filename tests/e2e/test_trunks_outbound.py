"""Calls OUT through a carrier trunk, and calls the switch forwards out (issue 10), with
Kamailio standing in for the SIP provider.

The provider (tests/support/kamailio.py) is a real Kamailio 5.6: an INVITE for a number
that is none of its users must carry proxy digest for one of its accounts (407 first;
a wrong password gets 403), and is then relayed, with Record-Route and every caller
header untouched, to its PSTN gateway. The gateway is a SIPp UAS standing for the
called number (sipp-scenarios/trunk_out_gateway_*.xml: each checks, with regular
expressions, that the INVITE came through the provider and carries a numeric From,
P-Asserted-Identity, Privacy and, when forwarded, Diversion; this file compares the
exact values from SIPp's message trace). Where nothing may reach the provider the
gateway is a bare UDP socket, which must receive no datagram at all.

The switch has one trunk ``provider`` to that Kamailio (digest account ``shop``) with
national (0 -> +44), international (00 -> +) and +44 routes. Its ``allow`` list names
127.0.0.2, which nothing here uses: the phones share 127.0.0.1 with Kamailio, and a
request from an allowed address would be taken for the carrier's. Outbound calls do
not need it (the provider's answers come back on our transactions).

The callers are real: baresip (tests/support/phones.py) as the extensions, dialling
with ctrl_tcp and answering the switch's own 407 with its account's password; SIPp
for the outsiders (no credentials, a wrong password, a customer calling a public
number). Members "on a call" really are: one extension calls the other through the
switch and it answers.

What each test checks comes from sources that must agree: the gateway's -trace_msg,
Kamailio's request log (each INVITE, each 407 it sent, each relay to the gateway), the
switch's JSON log (outbound_call, outbound_refused, trunk_challenge_answered,
hunt_overflow) and its call records (GET /calls). Every process runs on 127.0.0.1 and
is stopped by PID by its fixture.
"""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
from pathlib import Path
from typing import Any, Final

import pytest

from tests.e2e.trunk_support import gateway_sipp
from tests.support.kamailio import KamailioProvider, ProviderFactory, provider_factory
from tests.support.phones import (
    BaresipAccount,
    BaresipFactory,
    BaresipPhone,
    baresip_factory,
    free_rtp_range,
)
from tests.support.processes import (
    OUTER_GRACE,
    Address,
    RunningSwitch,
    SwitchFactory,
    assert_nothing_left,
    free_port,
    log_events,
    run_sipp,
    wait_until,
)
from tests.support.sipp_calls import (
    SCENARIOS,
    Callee,
    SippMessage,
    password,
    received,
    report,
    sipp_messages,
    traces,
    users,
)

__all__ = ["baresip_factory", "provider_factory"]

pytestmark = [pytest.mark.e2e, pytest.mark.requires_tool("kamailio", "sipp", "baresip")]

HOST: Final = "127.0.0.1"
#: The trunk's allow-list: an address nobody here sends from (see the module docstring).
UNUSED_HOST: Final = "127.0.0.2"
ACCOUNT: Final = "shop"
ACCOUNT_SECRET: Final = "shop-secret"
SIPP_TIMEOUT: Final = 20.0
CALL_WAIT: Final = 10.0

MARY: Final = "201"
"""Permission ``national``; her own DID (the number table) is her caller ID."""
MARY_NAME: Final = "Mary"
MARY_DID: Final = "+15550201"
IRIS: Final = "202"
"""No permissions: she may call extensions only."""
KATE: Final = "203"
"""The team's first member, who does not answer."""

SHOP_DID: Final = "+15550200"
"""The shop group (Mary, Iris; linear): every member busy goes to the contact centre."""
CONTACT_CENTRE: Final = "+442080000000"
TEAM_DID: Final = "+15550400"
"""The team group (linear): Kate, then her mobile through the trunk."""
MOBILE: Final = "+447700900123"
CUSTOMER: Final = "+15557654321"
"""An outside caller's number (From user of trunk_out_uac_customer.xml)."""

NATIONAL_DIALLED: Final = "02071234567"
NATIONAL_SENT: Final = "+442071234567"
INTERNATIONAL_DIALLED: Final = "0033123456789"


# -- the switch's config


def provider_trunk(provider: KamailioProvider) -> str:
    """The ``[trunks.provider]`` table without its routes (the configs here and in
    test_trunks_confirm.py add their own): the account, calls from 127.0.0.1 not taken
    as the provider's (``allow`` names an unused address), the caller's DID shown."""
    return f'''[trunks.provider]
host = "{HOST}"
port = {provider.port}
username = "{ACCOUNT}"
password = "{ACCOUNT_SECRET}"
allow = ["{UNUSED_HOST}"]
caller_id = "extension"
caller_id_number = "+15550299"
forward_caller_id = true
'''


def switch_config(
    provider: KamailioProvider, *, ring_time: float = 2.0, hide_number: bool = False
) -> str:
    """Extensions 201-203 (``secret-N``; ``hide_number`` for Mary's), the shop and team
    groups, and the trunk."""
    low, high = free_rtp_range(size=40)
    return f"""\
[server]
listen = ["udp:{HOST}:0"]

[sip]
t1 = 0.5

[media]
rtp_port_min = {low}
rtp_port_max = {high}

[extensions."{MARY}"]
name = "{MARY_NAME}"
password = "{password(MARY)}"
permissions = ["national"]
hide_number = {str(hide_number).lower()}

[extensions."{IRIS}"]
name = "Iris"
password = "{password(IRIS)}"

[extensions."{KATE}"]
name = "Kate"
password = "{password(KATE)}"

[numbers."{MARY_DID}"]
destination = "extension:{MARY}"
public = true

[groups.shop]
public_numbers = ["{SHOP_DID}"]
strategy = "linear"
members = ["{MARY}", "{IRIS}"]

[groups.shop.destinations]
all_busy = "external:{CONTACT_CENTRE}"

[groups.team]
public_numbers = ["{TEAM_DID}"]
strategy = "linear"
members = ["{KATE}", "external:{MOBILE}"]
ring_time = {ring_time}

{provider_trunk(provider)}
[[trunks.provider.routes]]
prefix = "0"
strip = 1
add = "+44"
category = "national"

[[trunks.provider.routes]]
prefix = "00"
strip = 2
add = "+"
category = "international"

[[trunks.provider.routes]]
prefix = "+44"
category = "national"
"""


def at_provider(provider: KamailioProvider, user: str) -> str:
    """``sip:USER@127.0.0.1:PORT``: how the switch names a number at the provider."""
    return f"sip:{user}@{HOST}:{provider.port}"


# -- the gateway behind the provider


def gateway_invite(directory: Path) -> SippMessage:
    """The one INVITE the gateway got (retransmissions aside)."""
    invites = received(directory / "gateway-messages.log", "INVITE")
    assert invites, report(directory)
    branches = {branch(m) for m in invites}
    assert len(branches) == 1, invites
    return invites[0]


def branch(message: SippMessage) -> str:
    found = re.search(r"branch=([^;\s]+)", message.text)
    assert found, message.text
    return found.group(1)


def header(message: SippMessage, name: str) -> list[str]:
    """Every value of header ``name`` in a traced message."""
    prefix = name.lower() + ":"
    return [
        line.split(":", 1)[1].strip()
        for line in message.text.splitlines()
        if line.lower().startswith(prefix)
    ]


def without_tag(value: str) -> str:
    return re.sub(r";tag=[^;\s]+", "", value)


# -- the provider's log


def provider_invites(provider: KamailioProvider) -> list[str]:
    """Kamailio's log lines for every INVITE it received (request log, not replies)."""
    return [line for line in provider.provider_lines() if line.startswith("INVITE sip:")]


def challenged(provider: KamailioProvider) -> list[str]:
    return [line for line in provider_invites(provider) if line.endswith("challenged: 407")]


def relayed(provider: KamailioProvider) -> list[str]:
    return [line for line in provider.provider_lines() if line.startswith("outbound ")]


def failure(
    directory: Path,
    provider: KamailioProvider,
    switch: RunningSwitch,
    *extra: str,
) -> str:
    return "\n".join(
        [
            report(directory),
            provider.diagnostics(),
            "--- switch stderr:",
            switch.stderr_text()[-4000:],
            *extra,
        ]
    )


def assert_the_switch_answered_the_challenge(
    provider: KamailioProvider, switch: RunningSwitch, number: str
) -> None:
    """Every INVITE Kamailio got came from the switch, for ``number``; Kamailio challenged
    it (407) and relayed to its gateway one INVITE only, which carried valid proxy digest
    for the trunk's account (``outbound NUMBER from shop``); the switch logged answering
    the challenge once, for this trunk. (A UDP retransmission would log its INVITE, or
    its challenge, once more: the counts are not pinned.)"""
    sent = f"INVITE {at_provider(provider, number)} from {switch.udp} "
    lines = provider_invites(provider)
    assert lines, provider.diagnostics()
    assert all(line.startswith(sent) for line in lines), provider.diagnostics()
    requests = [line for line in lines if not line.endswith("challenged: 407")]
    assert len(requests) >= 2, provider.diagnostics()  # the first, and the answered one
    challenges = challenged(provider)
    assert challenges, "Kamailio never challenged the switch\n" + provider.diagnostics()
    assert lines.index(challenges[0]) == 1, provider.diagnostics()  # the first INVITE's
    assert provider.gateway is not None
    gateway = f"sip:{provider.gateway.host}:{provider.gateway.port}"
    assert relayed(provider) == [f"outbound {number} from {ACCOUNT} to {gateway}"]
    answered = log_events(switch, "trunk_challenge_answered")
    assert [e["trunk"] for e in answered] == ["provider"], answered


def final_statuses(directory: Path, name: str) -> list[int]:
    """The final answers a SIPp received, in order (one per transaction: a retransmitted
    answer counts once)."""
    out: list[int] = []
    seen: set[tuple[int, str]] = set()
    for message in sipp_messages(directory / f"{name}-messages.log"):
        if message.sent or message.status is None or message.status < 200:
            continue
        cseq = re.search(r"^CSeq:\s*(\d+)", message.text, re.MULTILINE | re.IGNORECASE)
        key = (message.status, cseq.group(1) if cseq else "")
        if key not in seen:
            seen.add(key)
            out.append(message.status)
    return out


def record_of(switch: RunningSwitch, callee: str, count: int) -> dict[str, Any]:
    wait_until(lambda: len(switch.calls()) >= count, 10, f"{count} call records")
    records = switch.calls()
    assert len(records) == count, records
    [record] = [r for r in records if r["callee"] == callee]
    return record


def member_states(switch: RunningSwitch, group: str) -> dict[str, str]:
    members: list[dict[str, Any]] = switch.status()["groups"][group]["members"]
    return {str(m["extension"]): str(m["state"]) for m in members}


def customer_call(
    switch: RunningSwitch, directory: Path, number: str, *, hold_ms: int
) -> subprocess.CompletedProcess[str]:
    """A customer (no credentials, caller ID ``CUSTOMER``) calls public ``number``, is
    answered by whoever, holds ``hold_ms``, hangs up."""
    return run_sipp(
        [
            str(switch.udp), "-sf", str(SCENARIOS / "trunk_out_uac_customer.xml"),
            "-s", number, "-key", "caller", CUSTOMER, "-d", str(hold_ms), "-i", HOST,
            *traces(directory, "customer"),
        ],
        SIPP_TIMEOUT,
        cwd=directory,
    )  # fmt: skip


def extension_phone(
    baresip_factory: BaresipFactory, switch: RunningSwitch, *numbers: str
) -> BaresipPhone:
    """One baresip registering ``numbers`` (manual answer: a call to it rings)."""
    phone = baresip_factory(
        [BaresipAccount(n, switch.udp, password=password(n), answermode="manual") for n in numbers]
    )
    phone.wait_registered(10)
    return phone


# -- 1. an extension with permission calls out


@pytest.mark.parametrize("hide_number", [False, True], ids=["caller-id", "withheld"])
def test_an_extension_with_permission_calls_out_with_its_caller_id_through_the_challenge(
    provider_factory: ProviderFactory,
    switch_factory: SwitchFactory,
    baresip_factory: BaresipFactory,
    tmp_path: Path,
    hide_number: bool,
) -> None:
    """Issue 10, "calls out": Mary (baresip, permission national) dials 02071234567. The
    switch sends +442071234567 to the provider with her own DID as the caller ID (From
    and P-Asserted-Identity, Privacy: none), answers Kamailio's 407 with the trunk's
    digest, and the gateway behind Kamailio answers: 200, ACK, and Mary's hang-up
    reaches it as a BYE. With ``hide_number`` From is anonymous and Privacy: id, while
    P-Asserted-Identity still tells the provider who calls (RFC 3323, RFC 3325)."""
    gateway_port = free_port()
    provider = provider_factory({ACCOUNT: ACCOUNT_SECRET}, gateway=Address(HOST, gateway_port))
    switch = switch_factory(switch_config(provider, hide_number=hide_number), ("udp",))
    mary = extension_phone(baresip_factory, switch, MARY)

    with gateway_sipp(tmp_path, "trunk_out_gateway_answer.xml", gateway_port) as gateway:
        since = mary.mark()
        mary.dial(f"sip:{NATIONAL_DIALLED}@{switch.udp}")
        try:
            mary.wait_event("CALL_ESTABLISHED", CALL_WAIT, since=since)
        except TimeoutError:
            pytest.fail(failure(tmp_path, provider, switch, mary.output()))
        [live] = switch.status()["calls"]["list"]
        assert (live["caller"], live["callee"]) == (MARY, NATIONAL_DIALLED)
        assert switch.status()["trunks"]["provider"]["calls"] == 1
        mary.hangup()
        mary.wait_event("CALL_CLOSED", CALL_WAIT, since=since)
        code = gateway.call.finish(timeout=SIPP_TIMEOUT + OUTER_GRACE)
    assert code == 0, failure(tmp_path, provider, switch)

    # What the called number's gateway got, through the provider.
    invite = gateway_invite(tmp_path)
    number = at_provider(provider, NATIONAL_SENT)
    assert invite.first_line == f"INVITE {number} SIP/2.0"
    assert header(invite, "To") == [f"<{number}>"]
    [from_] = header(invite, "From")
    if hide_number:
        assert without_tag(from_) == '"Anonymous" <sip:anonymous@anonymous.invalid>'
    else:
        assert without_tag(from_) == f'"{MARY_NAME}" <{at_provider(provider, MARY_DID)}>'
    assert header(invite, "P-Asserted-Identity") == [f"<{at_provider(provider, MARY_DID)}>"]
    assert header(invite, "Privacy") == ["id" if hide_number else "none"]
    assert header(invite, "Proxy-Authorization") == []  # the provider took them
    [record_route] = header(invite, "Record-Route")
    assert f"{HOST}:{provider.port};lr" in record_route
    assert received(tmp_path / "gateway-messages.log", "ACK")
    assert received(tmp_path / "gateway-messages.log", "BYE")

    # The provider challenged the switch, and relayed only the answered INVITE.
    assert_the_switch_answered_the_challenge(provider, switch, NATIONAL_SENT)
    [outbound] = log_events(switch, "outbound_call")
    assert (outbound["trunk"], outbound["extension"]) == ("provider", MARY)
    assert (outbound["dialled"], outbound["number"]) == (NATIONAL_DIALLED, NATIONAL_SENT)
    record = record_of(switch, NATIONAL_DIALLED, 1)
    assert (record["caller"], record["answered_by"]) == (MARY, "trunk:provider")
    assert (record["disposition"], record["caller_status"]) == ("answered", 200)
    assert_nothing_left(switch)
    assert switch.status()["trunks"]["provider"]["calls"] == 0


# -- 2. nobody without permission or credentials reaches the provider


def test_no_permission_no_credentials_or_a_wrong_password_never_reach_the_provider(
    provider_factory: ProviderFactory,
    switch_factory: SwitchFactory,
    baresip_factory: BaresipFactory,
    tmp_path: Path,
) -> None:
    """Issue 10, "only authenticated extensions with permission": Mary (national only)
    dials an international number and Iris (no permissions) a national one: both get
    403 from the switch. A caller without credentials gets 407 and nothing more; with a
    wrong password, 403. Nothing reaches the provider: Kamailio logs no INVITE at all,
    and its gateway (a bare UDP socket) receives not one datagram."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gateway:
        gateway.bind((HOST, 0))
        gateway_address = Address(HOST, gateway.getsockname()[1])
        provider = provider_factory({ACCOUNT: ACCOUNT_SECRET}, gateway=gateway_address)
        switch = switch_factory(switch_config(provider), ("udp",))
        phone = extension_phone(baresip_factory, switch, MARY, IRIS)

        refusals: dict[str, object] = {}
        for who, dialled in ((MARY, INTERNATIONAL_DIALLED), (IRIS, NATIONAL_DIALLED)):
            since = phone.mark()
            phone.dial(f"sip:{dialled}@{switch.udp}", from_aor=f"sip:{who}@{switch.udp}")
            closed = phone.wait_event("CALL_CLOSED", CALL_WAIT, since=since)
            refusals[who] = closed.get("param")
        assert refusals == {MARY: "403 Not Permitted", IRIS: "403 Not Permitted"}, phone.output()

        stranger = run_sipp(
            [
                str(switch.udp), "-sf", str(SCENARIOS / "trunk_out_uac_unauthenticated.xml"),
                "-s", NATIONAL_DIALLED, "-key", "caller", MARY, "-i", HOST,
                *traces(tmp_path, "stranger"),
            ],
            SIPP_TIMEOUT,
            cwd=tmp_path,
        )  # fmt: skip
        assert stranger.returncode == 0, report(tmp_path, stranger)
        liar = run_sipp(
            [
                str(switch.udp), "-sf", str(SCENARIOS / "call_uac_expect_status.xml"),
                "-inf", str(users(tmp_path, MARY, "not-the-password")),
                "-s", NATIONAL_DIALLED, "-key", "expected_status", "403", "-i", HOST,
                *traces(tmp_path, "liar"),
            ],
            SIPP_TIMEOUT,
            cwd=tmp_path,
        )  # fmt: skip
        assert liar.returncode == 0, report(tmp_path, liar)
        assert final_statuses(tmp_path, "stranger") == [407]
        assert final_statuses(tmp_path, "liar") == [407, 403]

        # Nothing went out: not to Kamailio, not (through it) to the gateway.
        assert provider.is_running()
        assert provider_invites(provider) == [], provider.diagnostics()
        assert relayed(provider) == []
        gateway.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            data = gateway.recv(65535)
            pytest.fail(f"the gateway got a datagram: {data[:300]!r}")

    # The switch refused each: logged with who dialled what, from where.
    refused = log_events(switch, "outbound_refused")
    assert [(e["extension"], e["dialled"], e["reason"], e["source"]) for e in refused] == [
        (MARY, INTERNATIONAL_DIALLED, "Not Permitted", HOST),
        (IRIS, NATIONAL_DIALLED, "Not Permitted", HOST),
    ]
    assert log_events(switch, "outbound_call") == []
    assert log_events(switch, "trunk_challenge_answered") == []
    assert switch.status()["trunks"]["provider"]["calls"] == 0
    assert_nothing_left(switch)


# -- 3. every member busy: overflow to the contact centre through the trunk


def test_every_member_busy_forwards_the_caller_to_the_contact_centre_with_diversion(
    provider_factory: ProviderFactory,
    switch_factory: SwitchFactory,
    baresip_factory: BaresipFactory,
    tmp_path: Path,
) -> None:
    """Issue 10, "overflow to an external number": Mary calls Iris through the switch
    (both baresip lines, Iris answers), so every member of the shop group is on a call.
    A customer calls the shop's public number: no member is offered the call, the
    switch forwards it to the contact centre through the trunk (answering Kamailio's
    407), with the customer's own number in From and P-Asserted-Identity and Diversion
    naming the shop's number with reason user-busy. The contact centre answers."""
    gateway_port = free_port()
    provider = provider_factory({ACCOUNT: ACCOUNT_SECRET}, gateway=Address(HOST, gateway_port))
    switch = switch_factory(switch_config(provider), ("udp",))
    phone = extension_phone(baresip_factory, switch, MARY, IRIS)

    # Mary calls Iris; Iris answers.
    since = phone.mark()
    phone.dial(f"sip:{IRIS}@{switch.udp}", from_aor=f"sip:{MARY}@{switch.udp}")
    phone.wait_event("CALL_INCOMING", CALL_WAIT, since=since)
    phone.accept()
    wait_until(
        lambda: member_states(switch, "shop") == {MARY: "talking", IRIS: "talking"},
        CALL_WAIT,
        "Mary and Iris talking in the group's book",
    )
    busy_mark = phone.mark()

    with gateway_sipp(tmp_path, "trunk_out_gateway_forwarded.xml", gateway_port) as gateway:
        customer = customer_call(switch, tmp_path, SHOP_DID, hold_ms=1000)
        assert customer.returncode == 0, failure(tmp_path, provider, switch)
        code = gateway.call.finish(timeout=SIPP_TIMEOUT + OUTER_GRACE)
    assert code == 0, failure(tmp_path, provider, switch)
    # Mary's and Iris's call was never disturbed, and no line was offered the customer.
    assert member_states(switch, "shop") == {MARY: "talking", IRIS: "talking"}
    assert not [e for e in phone.events[busy_mark:] if e.get("type") == "CALL_INCOMING"]
    phone.hangup()
    phone.wait_event("CALL_CLOSED", CALL_WAIT, since=busy_mark)

    invite = gateway_invite(tmp_path)
    centre = at_provider(provider, CONTACT_CENTRE)
    assert invite.first_line == f"INVITE {centre} SIP/2.0"
    assert header(invite, "To") == [f"<{centre}>"]
    [from_] = header(invite, "From")
    assert without_tag(from_) == f'"Customer" <{at_provider(provider, CUSTOMER)}>'
    assert header(invite, "P-Asserted-Identity") == [f"<{at_provider(provider, CUSTOMER)}>"]
    assert header(invite, "Diversion") == [
        f"<{at_provider(provider, SHOP_DID)}>;reason=user-busy;counter=1"
    ]
    assert header(invite, "Proxy-Authorization") == []
    assert received(tmp_path / "gateway-messages.log", "BYE")
    assert_the_switch_answered_the_challenge(provider, switch, CONTACT_CENTRE)
    [forwarded] = log_events(switch, "call_forwarded")
    assert (forwarded["trunk"], forwarded["number"], forwarded["member"]) == (
        "provider",
        CONTACT_CENTRE,
        f"external:{CONTACT_CENTRE}",
    )

    [overflow] = log_events(switch, "hunt_overflow")
    assert (overflow["group"], overflow["reason"], overflow["destination"]) == (
        "shop",
        "all_busy",
        f"external:{CONTACT_CENTRE}",
    )
    record = record_of(switch, SHOP_DID, 2)
    assert (record["caller"], record["answered_by"]) == (CUSTOMER, f"external:{CONTACT_CENTRE}")
    # Two hunts: the group's (every member skipped, busy), then its overflow
    # destination alone, which answered.
    group_hunt, overflow_hunt = record["hunts"]
    assert (group_hunt["group"], group_hunt["result"]) == ("shop", "overflowed")
    assert (group_hunt["overflow"], group_hunt["connected"]) == ("all_busy", None)
    assert [(m["member"], m["outcome"], m.get("reason")) for m in group_hunt["members"]] == [
        (MARY, "skipped", "talking"),
        (IRIS, "skipped", "talking"),
    ]
    assert (overflow_hunt["result"], overflow_hunt["connected"]) == (
        "connected",
        f"external:{CONTACT_CENTRE}",
    )
    assert [(m["member"], m["outcome"]) for m in overflow_hunt["members"]] == [
        (f"external:{CONTACT_CENTRE}", "rung"),
        (f"external:{CONTACT_CENTRE}", "alerting"),
        (f"external:{CONTACT_CENTRE}", "answered"),
    ]
    assert_nothing_left(switch)


# -- 4. an external member rung through the trunk after an unanswered extension


def test_a_linear_group_rings_the_mobile_through_the_trunk_after_an_unanswered_line(
    provider_factory: ProviderFactory,
    switch_factory: SwitchFactory,
    tmp_path: Path,
) -> None:
    """Issue 10, "external numbers in hunt groups": the team group rings Kate's line
    (a registered SIPp phone that rings and never answers) for its 2 s ring time, then
    cancels it and rings her mobile, an external member, through the trunk: Diversion
    names the team's number with reason follow-me, From shows the customer's number.
    The mobile (the gateway behind Kamailio) answers and the customer talks to it."""
    gateway_port = free_port()
    provider = provider_factory({ACCOUNT: ACCOUNT_SECRET}, gateway=Address(HOST, gateway_port))
    switch = switch_factory(switch_config(provider, ring_time=2), ("udp",))

    kate = Callee.start(switch, KATE, "call_uas_ring_forever.xml", tmp_path)
    try:
        with gateway_sipp(tmp_path, "trunk_out_gateway_forwarded.xml", gateway_port) as gateway:
            customer = customer_call(switch, tmp_path, TEAM_DID, hold_ms=1000)
            assert customer.returncode == 0, failure(tmp_path, provider, switch)
            code = gateway.call.finish(timeout=SIPP_TIMEOUT + OUTER_GRACE)
        assert code == 0, failure(tmp_path, provider, switch)
        assert kate.finish() == 0, failure(tmp_path, provider, switch)
    finally:
        kate.stop()

    # Kate's line rang its 2 s and was cancelled; then the mobile's INVITE went out.
    kate_got = [
        m.method or m.status
        for m in sipp_messages(kate.messages_log)
        if m.cseq_method in ("INVITE", "CANCEL", "ACK")
    ]
    assert kate_got == ["INVITE", 180, "CANCEL", 200, 487, "ACK"], report(tmp_path)
    kate_invite = received(kate.messages_log, "INVITE")[0]
    invite = gateway_invite(tmp_path)
    assert 1.8 < invite.at - kate_invite.at < 3.5, (kate_invite.at, invite.at)
    mobile = at_provider(provider, MOBILE)
    assert invite.first_line == f"INVITE {mobile} SIP/2.0"
    [from_] = header(invite, "From")
    assert without_tag(from_) == f'"Customer" <{at_provider(provider, CUSTOMER)}>'
    assert header(invite, "P-Asserted-Identity") == [f"<{at_provider(provider, CUSTOMER)}>"]
    assert header(invite, "Diversion") == [
        f"<{at_provider(provider, TEAM_DID)}>;reason=follow-me;counter=1"
    ]
    assert_the_switch_answered_the_challenge(provider, switch, MOBILE)
    [forwarded] = log_events(switch, "call_forwarded")
    assert (forwarded["trunk"], forwarded["number"], forwarded["member"]) == (
        "provider",
        MOBILE,
        f"external:{MOBILE}",
    )

    record = record_of(switch, TEAM_DID, 1)
    assert (record["caller"], record["answered_by"]) == (CUSTOMER, f"external:{MOBILE}")
    [hunt] = record["hunts"]
    assert (hunt["result"], hunt["connected"]) == ("connected", f"external:{MOBILE}")
    outcomes = [(m["member"], m["outcome"]) for m in hunt["members"]]
    assert (KATE, "rung") in outcomes
    assert (KATE, "cancelled") in outcomes
    assert (f"external:{MOBILE}", "answered") in outcomes
    assert_nothing_left(switch)
