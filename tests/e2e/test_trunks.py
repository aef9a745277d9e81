"""Carrier trunks through the real switch, with Kamailio standing in for the SIP provider.

The provider (tests/support/kamailio.py) is a real Kamailio 5.6: a registrar that demands
digest and keeps its location table in memory, and a proxy that delivers a call for the
shop's DID to the contact the switch registered (the DID stays in To, the Request-URI
is that contact, as real providers do). The outside world calling the DID is a SIPp UAC
behind it (provider_uac_call.xml); the hunt group's member is a SIPp phone registered
with the switch for the whole test (call_uas_register_stay.xml running
call_uas_answer.xml for each INVITE). The IP-authenticated trunk's carrier is a SIPp UAC
bound to 127.0.0.2, the one source that trunk allows; the same INVITE from 127.0.0.1
must be refused (trunk_uac_untrusted.xml).

What each test checks comes from sources that must agree: the provider's location table
(JSON-RPC ``ul.dump``) and its request log, the switch's /status (its "trunks" section)
and JSON log events (trunk_call, member_rung), and the SIP messages each SIPp logged
(-trace_msg). Every process is a real one on loopback, stopped by PID by its fixture.

docs/trunks.md describes the feature; each test names the lines of issue 10 it proves.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import pytest

from tests.support.kamailio import KamailioProvider, ProviderFactory, provider_factory
from tests.support.phones import free_rtp_range
from tests.support.processes import (
    RunningSwitch,
    SwitchFactory,
    assert_nothing_left,
    log_events,
    run_sipp,
    wait_until,
)
from tests.support.sipp_calls import (
    SCENARIOS,
    Callee,
    password,
    report,
    sipp_messages,
    traces,
)

__all__ = ["provider_factory"]

pytestmark = [pytest.mark.e2e, pytest.mark.requires_tool("kamailio", "sipp")]

HOST: Final = "127.0.0.1"
#: The IP trunk's carrier: another loopback address (Linux routes all of 127/8 to lo).
CARRIER_HOST: Final = "127.0.0.2"
ACCOUNT: Final = "shop"
"""The shop's account at the provider (digest user, AOR user and contact user)."""
ACCOUNT_SECRET: Final = "shop-secret"
DID: Final = "5550200"
"""The shop's public number, delivered by the provider."""
INTERNAL: Final = "300"
"""The group's internal number: not public, so only a trunk (or an extension) reaches it."""
MEMBER: Final = "201"
SIPP_TIMEOUT: Final = 15.0
REGISTER_TIMEOUT: Final = 10.0


# -- configs


def switch_config(trunk: str) -> str:
    """One extension (201, password ``secret-201``) in a group ``shop`` reached on the
    public number 5550200 and the internal number 300, and one trunk ``provider`` whose
    keys are ``trunk`` (TOML lines)."""
    low, high = free_rtp_range(size=20)
    return f"""\
[server]
listen = ["udp:{HOST}:0"]

[sip]
t1 = 0.5

[media]
rtp_port_min = {low}
rtp_port_max = {high}

[extensions."{MEMBER}"]
password = "{password(MEMBER)}"

[groups.shop]
public_numbers = ["{DID}"]
numbers = ["{INTERNAL}"]
members = ["{MEMBER}"]

[trunks.provider]
{trunk.strip()}
"""


def registration_trunk(
    provider: KamailioProvider,
    *,
    secret: str = ACCOUNT_SECRET,
    expires: int = 60,
    retry_min: float = 0.5,
    retry_max: float = 1.0,
) -> str:
    """A registration trunk to ``provider``, the DID read from To (Kamailio sends the call
    to our contact and keeps the caller's To, as most providers do)."""
    return f"""\
host = "{HOST}"
port = {provider.port}
register = true
username = "{ACCOUNT}"
password = "{secret}"
expires = {expires}
retry_min = {retry_min}
retry_max = {retry_max}
did_from = "to"
"""


def provider_for(factory: ProviderFactory, **settings: Any) -> KamailioProvider:
    return factory({ACCOUNT: ACCOUNT_SECRET}, dids={DID: ACCOUNT}, **settings)


# -- what the provider and the switch say


def registers_before_saved(provider: KamailioProvider, start: int = 1) -> int:
    """How many REGISTERs the provider got (in its ``start``-th run) before it saved the
    first binding: 2 when the first was challenged (no credentials) and the second
    answered the challenge."""
    lines = provider.log_text().split(f"=== start {start}:", 1)[1].splitlines()
    count = 0
    for line in lines:
        if "provider: REGISTER " in line and " saved," in line:
            return count
        if "provider: REGISTER sip:" in line and " from " in line:
            count += 1
    pytest.fail(f"no binding saved\n{provider.diagnostics()}")


def registration(switch: RunningSwitch) -> dict[str, Any]:
    state: dict[str, Any] = switch.status()["trunks"]["provider"]["registration"]
    return state


def wait_state(switch: RunningSwitch, state: str, timeout: float = REGISTER_TIMEOUT) -> None:
    """Poll /status until the trunk's registration is in ``state`` (bounded)."""
    deadline = time.monotonic() + timeout
    while (current := registration(switch))["state"] != state:
        assert switch.is_alive(), switch.stderr_text()[-4000:]
        if time.monotonic() > deadline:
            pytest.fail(f"trunk registration not {state} within {timeout} s: {current}")
        time.sleep(0.05)


def stop_and_unregister(switch: RunningSwitch, provider: KamailioProvider) -> None:
    """A clean stop (SIGTERM): exit code 0, and the binding gone from the provider."""
    started = time.monotonic()
    code = switch.stop(signum=signal.SIGTERM)
    assert code == 0, switch.stderr_text()[-4000:]
    assert time.monotonic() - started < 5
    provider.wait_unregistered(ACCOUNT, timeout=2)
    # Removed by our un-REGISTER (Expires 0), not by the binding running out.
    unregistered = [line for line in provider.provider_lines() if " saved, " in line]
    assert unregistered[-1].endswith("Expires 0"), provider.diagnostics()


# -- peers


@contextmanager
def member(switch: RunningSwitch, directory: Path) -> Iterator[Callee]:
    """Extension 201 registered with the switch (one SIPp process for the whole test, so
    the switch has one binding for it), answering every call with call_uas_answer.xml;
    stopped by PID."""
    callee = Callee.start(switch, MEMBER, "call_uas_answer.xml", directory, stay=True)
    try:
        yield callee
    finally:
        callee.stop()


ANSWERED: Final = ["INVITE", 180, 200, "ACK", "BYE", 200]
"""What a member that answers a call and gets the hang-up exchanges (call_uas_answer.xml)."""


def exchange(callee: Callee) -> list[str | int | None]:
    """What the member got and answered outside its registration: request methods and
    response codes, in order."""
    return [
        m.method or m.status
        for m in sipp_messages(callee.messages_log)
        if m.cseq_method != "REGISTER"
    ]


def wait_answered(callee: Callee, calls: int, directory: Path) -> None:
    """The member answered ``calls`` calls and got each one's BYE, and nothing else."""
    wait_until(lambda: len(exchange(callee)) >= calls * len(ANSWERED), 5, f"{calls} calls answered")
    assert exchange(callee) == ANSWERED * calls, report(directory)
    assert callee.process.poll() is None, report(directory)  # no scenario error


def outside_call(
    target: str, directory: Path, name: str, *, number: str = DID, source: str = HOST
) -> None:
    """The outside world calls ``number`` at ``target`` (the provider, or the switch
    for an IP trunk's carrier) from ``source``: 200, ACK, BYE, 200 must all happen."""
    result = run_sipp(
        [
            target, "-sf", str(SCENARIOS / "provider_uac_call.xml"), "-s", number,
            "-i", source, "-d", "500", *traces(directory, name),
        ],
        SIPP_TIMEOUT,
        cwd=directory,
    )  # fmt: skip
    assert result.returncode == 0, report(directory, result)


def trunk_calls(switch: RunningSwitch) -> list[dict[str, Any]]:
    """The switch's trunk_call log events: each INVITE it took as a trunk's, with the DID."""
    return log_events(switch, "trunk_call")


def rung(switch: RunningSwitch) -> list[str]:
    """The members the switch rang (member_rung log events), in order."""
    return [str(e["extension"]) for e in log_events(switch, "member_rung")]


def finals(directory: Path, name: str) -> list[int]:
    """The final responses a SIPp caller received, in order."""
    return [
        m.status
        for m in sipp_messages(directory / f"{name}-messages.log")
        if not m.sent and m.status is not None and m.status >= 200
    ]


# -- tests


def test_registration_trunk_registers_and_a_did_call_reaches_the_group(
    provider_factory: ProviderFactory, switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    """Issue 10: the trunk REGISTERs to the provider, which demands digest (the first
    REGISTER, without credentials, is challenged; Kamailio saves a binding only for
    verified credentials), so the binding is in Kamailio's location table and /status
    says "registered". A call from the outside world to the DID, delivered by the
    provider to that contact with the DID in To (did_from = "to"), reaches the hunt
    group; the member answers, the caller gets 200, the caller's BYE ends both legs and
    nothing is left. A clean stop un-REGISTERs."""
    provider = provider_for(provider_factory)
    switch = switch_factory(switch_config(registration_trunk(provider)), ("udp",))
    binding = provider.wait_registered(ACCOUNT, REGISTER_TIMEOUT, contact=f"@{switch.udp}")
    assert binding.contact == f"sip:{ACCOUNT}@{switch.udp}"
    assert 50 <= binding.expires <= 60
    assert registers_before_saved(provider) == 2
    wait_state(switch, "registered")
    state = registration(switch)
    assert (state["last_status"], state["expires"]) == (200, 60), state
    assert state["contact"] == binding.contact
    assert state["next_attempt"] is not None

    with member(switch, tmp_path) as phone:
        outside_call(str(provider.address), tmp_path, "outside")
        wait_answered(phone, 1, tmp_path)
    assert finals(tmp_path, "outside") == [200, 200]  # the INVITE's, then the BYE's
    # The provider sent the call to our contact, the DID only in To.
    assert any(
        f"DID {DID} to {ACCOUNT} at {binding.contact}" in line for line in provider.provider_lines()
    ), provider.diagnostics()
    [event] = trunk_calls(switch)
    assert (event["trunk"], event["did"]) == ("provider", DID)
    assert rung(switch) == [MEMBER]
    assert_nothing_left(switch)
    assert switch.status()["trunks"]["provider"]["calls"] == 0
    stop_and_unregister(switch, provider)


def test_registration_survives_a_provider_restart(
    provider_factory: ProviderFactory, switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    """Issue 10: the provider restarts and forgets every binding (usrloc in memory). The
    switch's next refresh (expires 4 s: refreshed every 2 s), whose cached credentials
    the new Kamailio no longer knows, is challenged afresh and answered, so a new
    binding appears, and a DID call works again."""
    provider = provider_for(provider_factory, min_expires=1)
    switch = switch_factory(switch_config(registration_trunk(provider, expires=4)), ("udp",))
    before = provider.wait_registered(ACCOUNT, REGISTER_TIMEOUT, contact=f"@{switch.udp}")
    with member(switch, tmp_path) as phone:
        outside_call(str(provider.address), tmp_path, "outside-before")
        wait_answered(phone, 1, tmp_path)

        provider.restart()
        after = provider.wait_registered(ACCOUNT, REGISTER_TIMEOUT, contact=f"@{switch.udp}")
        # The new Kamailio started empty: this binding came from a REGISTER it challenged.
        assert registers_before_saved(provider, start=2) >= 2, provider.diagnostics()
        assert after.call_id == before.call_id  # one Call-ID for the process's life
        assert after.cseq > before.cseq
        wait_state(switch, "registered")

        outside_call(str(provider.address), tmp_path, "outside-after")
        wait_answered(phone, 2, tmp_path)
    assert finals(tmp_path, "outside-after") == [200, 200]
    assert [e["did"] for e in trunk_calls(switch)] == [DID, DID]
    assert rung(switch) == [MEMBER, MEMBER]
    assert_nothing_left(switch)
    stop_and_unregister(switch, provider)


def test_a_wrong_trunk_password_shows_failing_and_the_switch_keeps_serving(
    provider_factory: ProviderFactory, switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    """Issue 10: with a wrong password the provider refuses the REGISTER (Kamailio: 403
    for credentials that do not verify); /status shows the trunk failing with that
    status, the switch keeps retrying on its back-off and keeps failing, and it keeps
    serving: an extension registers and a customer's call to the public number (from
    an address that is no trunk's) is answered. Nothing was ever bound."""
    provider = provider_for(provider_factory)
    config = registration_trunk(provider, secret="not-the-secret", retry_min=0.5, retry_max=1)
    switch = switch_factory(switch_config(config), ("udp",))
    wait_state(switch, "failing")
    state = registration(switch)
    assert (state["last_status"], state["registered_until"]) == (403, None), state
    # It keeps trying (back-off 0.25 to 1 s here), and keeps failing.
    wait_until(lambda: registration(switch)["consecutive_failures"] >= 2, 5, "a second attempt")
    assert provider.registrations(ACCOUNT) == []

    with member(switch, tmp_path) as phone:
        outside_call(str(switch.udp), tmp_path, "customer", source=CARRIER_HOST)
        wait_answered(phone, 1, tmp_path)
    assert finals(tmp_path, "customer") == [200, 200]
    assert trunk_calls(switch) == []  # 127.0.0.2 is no trunk's: a plain public call
    assert rung(switch) == [MEMBER]
    assert_nothing_left(switch)
    # Still retrying (back-off up to 1 s), still failing.
    seen = registration(switch)["consecutive_failures"]
    wait_until(lambda: registration(switch)["consecutive_failures"] > seen, 5, "one more attempt")
    state = registration(switch)
    assert (state["state"], state["last_status"]) == ("failing", 403), state
    assert switch.stop() == 0, switch.stderr_text()[-4000:]
    assert provider.registrations(ACCOUNT) == []


def test_a_423_is_followed_by_a_register_with_the_min_expires(
    provider_factory: ProviderFactory, switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    """Issue 10: the switch asks for 10 s, below the provider's min_expires of 30 s; the
    provider answers 423 with Min-Expires: 30 and the switch registers again at once
    asking for 30 s, which the provider saves: the binding's expiry and /status say 30."""
    provider = provider_for(provider_factory, min_expires=30)
    switch = switch_factory(switch_config(registration_trunk(provider, expires=10)), ("udp",))
    binding = provider.wait_registered(ACCOUNT, REGISTER_TIMEOUT, contact=f"@{switch.udp}")
    assert 25 <= binding.expires <= 30, binding
    lines = provider.provider_lines()
    refused = [i for i, line in enumerate(lines) if "not saved (Expires 10)" in line]
    saved = [i for i, line in enumerate(lines) if " saved, " in line]
    assert len(refused) == 1, provider.diagnostics()
    assert saved, provider.diagnostics()
    assert refused[0] < saved[0], provider.diagnostics()
    assert "Expires 30" in lines[saved[0]], provider.diagnostics()
    wait_state(switch, "registered")
    state = registration(switch)
    assert (state["last_status"], state["expires"]) == (200, 30), state
    stop_and_unregister(switch, provider)


def test_an_ip_trunk_takes_calls_from_its_allowed_address_only(
    switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    """Issue 10: an IP-authenticated trunk (no registration, allow = ["127.0.0.2"]). An
    INVITE without credentials from 127.0.0.1 to the group's internal number 300 (not
    public) is no trunk's: the switch challenges it (407: with untrusted_calls =
    "public", only public numbers are open to the outside world) and rings nobody. The
    same INVITE from 127.0.0.2 is the trunk's: the DID (Request-URI user) reaches the
    group, the member answers, the caller gets 200, the BYE ends the call."""
    trunk = f'host = "{CARRIER_HOST}"\nallow = ["{CARRIER_HOST}"]'
    switch = switch_factory(switch_config(trunk), ("udp",))
    trunks = switch.status()["trunks"]
    assert trunks["provider"]["allow"] == [f"{CARRIER_HOST}/32"]
    assert "registration" not in trunks["provider"]

    with member(switch, tmp_path) as phone:
        refused = run_sipp(
            [
                str(switch.udp), "-sf", str(SCENARIOS / "trunk_uac_untrusted.xml"),
                "-s", INTERNAL, "-i", HOST, *traces(tmp_path, "untrusted"),
            ],
            SIPP_TIMEOUT,
            cwd=tmp_path,
        )  # fmt: skip
        assert refused.returncode == 0, report(tmp_path, refused)
        assert finals(tmp_path, "untrusted") == [407]
        assert trunk_calls(switch) == []
        outside_call(str(switch.udp), tmp_path, "carrier", number=INTERNAL, source=CARRIER_HOST)
        wait_answered(phone, 1, tmp_path)  # one call: the refused one rang nothing
    assert finals(tmp_path, "carrier") == [200, 200]
    [event] = trunk_calls(switch)
    assert (event["trunk"], event["did"]) == ("provider", INTERNAL)
    assert rung(switch) == [MEMBER]
    assert_nothing_left(switch)
    assert switch.status()["trunks"]["provider"]["calls"] == 0
    assert switch.stop() == 0, switch.stderr_text()[-4000:]
