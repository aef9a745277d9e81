"""A carrier trunk over TCP (``transport = "tcp"``) through the real switch, with Kamailio
standing in for the provider.

The provider is tests/support/kamailio.py's Kamailio 5.6 with ``tcp=True``: it listens on
UDP and TCP on one port, and saves each binding made over TCP with the connection it came
from as its ``received`` (``fix_nated_register``), so ``lookup("location")`` sends the
DID call down that very connection: the one the switch opened. The switch listens on UDP
and TCP, dials the provider itself, REGISTERs with digest on that connection, and takes
the provider's INVITEs on it. The outside world calling the DID is a SIPp UAC over UDP
to the provider (provider_uac_call.xml); the hunt group's member is a SIPp phone
registered with the switch over UDP (call_uas_answer.xml for each INVITE): only the
trunk's leg is TCP.

Which connection carried what is read from three sides that must agree: Kamailio's
location table (the binding's socket and ``received``) and its TCP connection list
(``core.tcp_list``), its log (``sent INVITE to tcp:IP:PORT``, written as each request
leaves), and the switch process's own sockets in /proc (the local port of its one
connection to the provider). The trunk expires after 600 s, so nothing but the dropped
connection can explain a REGISTER within seconds of the provider's restart. Every process
is a real one on 127.0.0.1, stopped by PID by its fixture.

docs/trunks.md describes the feature (issue 10).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path
from typing import Final

import pytest

from tests.e2e.test_trunks import (
    ACCOUNT,
    ACCOUNT_SECRET,
    DID,
    HOST,
    MEMBER,
    REGISTER_TIMEOUT,
    finals,
    member,
    outside_call,
    registers_before_saved,
    registration,
    registration_trunk,
    rung,
    stop_and_unregister,
    switch_config,
    trunk_calls,
    wait_answered,
    wait_state,
)
from tests.support.kamailio import KamailioProvider, ProviderFactory, Registration, provider_factory
from tests.support.processes import (
    RunningSwitch,
    SwitchFactory,
    assert_nothing_left,
    log_events,
    wait_until,
)

__all__ = ["provider_factory"]

pytestmark = [pytest.mark.e2e, pytest.mark.requires_tool("kamailio", "sipp")]

EXPIRES: Final = 600
"""The trunk's registration: refreshed after about 300 s, far beyond any test's length."""
REREGISTER_WITHIN: Final = 2.0
"""Seconds from the restarted provider's readiness to the switch's new binding."""
_RECEIVED: Final = re.compile(r"sip:127\.0\.0\.1:(\d+);transport=tcp")
_TCP_ESTABLISHED: Final = "01"


# -- the switch and the provider


def start_switch(factory: SwitchFactory, provider: KamailioProvider) -> RunningSwitch:
    """The switch on UDP and TCP, its trunk ``provider`` registering over TCP."""
    trunk = registration_trunk(provider, expires=EXPIRES) + 'transport = "tcp"\n'
    config = switch_config(trunk).replace(
        f'listen = ["udp:{HOST}:0"]', f'listen = ["udp:{HOST}:0", "tcp:{HOST}:0"]'
    )
    return factory(config, ("udp", "tcp"))


def start_provider(factory: ProviderFactory) -> KamailioProvider:
    return factory({ACCOUNT: ACCOUNT_SECRET}, dids={DID: ACCOUNT}, tcp=True)


def wait_tcp_binding(
    provider: KamailioProvider, switch: RunningSwitch, timeout: float = REGISTER_TIMEOUT
) -> tuple[Registration, int]:
    """The switch's binding, made over TCP: its Contact is the switch's TCP address with
    transport=tcp, Kamailio got it on its TCP socket, and ``received`` names the
    connection it came on. The binding and that connection's port on the switch's side."""
    binding = provider.wait_registered(ACCOUNT, timeout, contact=f"@{switch.tcp}")
    assert binding.contact == f"sip:{ACCOUNT}@{switch.tcp};transport=tcp", binding
    assert binding.socket == f"tcp:{HOST}:{provider.port}", binding
    match = _RECEIVED.fullmatch(binding.received or "")
    assert match is not None, binding
    return binding, int(match[1])


# -- whose connection


def switch_connections(switch: RunningSwitch, provider: KamailioProvider) -> list[int]:
    """The local ports of the switch process's established TCP connections to the
    provider (its sockets in /proc/PID/fd, their addresses in /proc/net/tcp)."""
    inodes = set()
    fds = Path(f"/proc/{switch.pid}/fd")
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):
            link = os.readlink(fd)
            if link.startswith("socket:["):
                inodes.add(link[len("socket:[") : -1])
    ports = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
        remote_ip, remote_port = remote.split(":")
        if (
            inode in inodes
            and state == _TCP_ESTABLISHED
            and remote_ip == "0100007F"  # 127.0.0.1, little-endian hex
            and int(remote_port, 16) == provider.port
        ):
            ports.append(int(local.split(":")[1], 16))
    return sorted(ports)


def provider_connections(provider: KamailioProvider) -> list[tuple[int, int]]:
    """Kamailio's TCP connections as (its own port, the other side's port)."""
    return sorted(
        (int(c["dst_port"]), int(c["src_port"])) for c in provider.rpc("core.tcp_list") or []
    )


def only_connection(provider: KamailioProvider, flow: int) -> None:
    """Kamailio holds one TCP connection: the switch's, from its port ``flow`` (waiting
    briefly for the harness's own readiness probe, closed already, to leave the list)."""
    wait_until(
        lambda: provider_connections(provider) == [(provider.port, flow)],
        2,
        f"the switch's connection (port {flow}) being Kamailio's only one",
    )


def registers_from(provider: KamailioProvider) -> list[int]:
    """The source port of each REGISTER the provider got (every run), in order."""
    return [
        int(found[1])
        for line in provider.provider_lines()
        if (found := re.match(r"REGISTER sip:\S+ from 127\.0\.0\.1:(\d+) ", line))
    ]


def invites_sent_to(provider: KamailioProvider) -> list[str]:
    """Where Kamailio sent each INVITE it relayed (``proto:ip:port``), in order."""
    return [
        found[1]
        for line in provider.provider_lines()
        if (found := re.match(r"sent INVITE to (\S+) ", line))
    ]


def tcp_dials(switch: RunningSwitch) -> int:
    """How many connections the switch opened to anyone (tcp_connected log events)."""
    return len(log_events(switch, "tcp_connected"))


def did_call(provider: KamailioProvider, phone_dir: Path, name: str, flow: int) -> None:
    """The outside world calls the DID at the provider (UDP); Kamailio sends the INVITE
    down the switch's connection ``flow``; the member answers; the caller's BYE ends it."""
    outside_call(str(provider.address), phone_dir, name)
    assert finals(phone_dir, name) == [200, 200]  # the INVITE's, then the BYE's
    assert invites_sent_to(provider)[-1] == f"tcp:{HOST}:{flow}", provider.diagnostics()
    assert any(
        f"DID {DID} next hop sip:{HOST}:{flow};transport=tcp" in line
        for line in provider.provider_lines()
    ), provider.diagnostics()


# -- tests


def test_a_tcp_trunk_registers_on_its_own_connection_and_takes_the_did_call_on_it(
    provider_factory: ProviderFactory, switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    """Issue 10, trunks over TCP: the switch opens one TCP connection to the provider and
    REGISTERs on it with digest (challenged first, then saved): Kamailio's binding has
    the switch's TCP contact, its TCP socket and, as ``received``, the port of the one
    connection the switch process holds to it (read from /proc), the only one Kamailio
    knows. /status says registered for 600 s. A call to the DID from the outside world
    (over UDP to the provider) goes from Kamailio down that same connection (its log says
    where the INVITE went), the switch takes it as the trunk's, rings the group's member
    over UDP, the member answers, the caller gets 200 and its BYE ends both legs; the
    switch opened no other connection. A clean stop un-REGISTERs on that connection and
    the binding is gone."""
    provider = start_provider(provider_factory)
    switch = start_switch(switch_factory, provider)
    binding, flow = wait_tcp_binding(provider, switch)
    assert EXPIRES - 10 <= binding.expires <= EXPIRES, binding
    assert registers_before_saved(provider) == 2  # challenged, then answered
    assert registers_from(provider) == [flow, flow]  # both on the one connection
    assert switch_connections(switch, provider) == [flow]
    only_connection(provider, flow)
    assert tcp_dials(switch) == 1
    wait_state(switch, "registered")
    state = registration(switch)
    assert (state["last_status"], state["expires"]) == (200, EXPIRES), state
    assert state["contact"] == binding.contact

    with member(switch, tmp_path) as phone:
        did_call(provider, tmp_path, "outside", flow)
        wait_answered(phone, 1, tmp_path)
    [event] = trunk_calls(switch)
    assert (event["trunk"], event["did"]) == ("provider", DID)
    assert rung(switch) == [MEMBER]
    assert_nothing_left(switch)
    assert switch.status()["trunks"]["provider"]["calls"] == 0
    # Still the one connection the switch opened.
    assert switch_connections(switch, provider) == [flow]
    assert tcp_dials(switch) == 1

    stop_and_unregister(switch, provider)
    assert registers_from(provider)[-1] == flow  # the un-REGISTER too


def test_a_tcp_trunk_registers_again_at_once_when_the_provider_restarts(
    provider_factory: ProviderFactory, switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    """Issue 10, trunks over TCP: the provider restarts (its connections drop, its
    location table is forgotten). The switch notices its connection close
    (trunk_connection_lost) and REGISTERs again at once on a new connection it opens,
    so the new Kamailio, which challenges it afresh, holds a binding within 2 s of being
    ready: with expires 600 no refresh is due for minutes, so only the lost connection
    explains it. The new binding's ``received`` is the new connection, the only one the
    switch now holds, and a second DID call comes down it and is answered. A clean stop
    un-REGISTERs on it."""
    provider = start_provider(provider_factory)
    switch = start_switch(switch_factory, provider)
    before, first_flow = wait_tcp_binding(provider, switch)
    wait_state(switch, "registered")
    with member(switch, tmp_path) as phone:
        did_call(provider, tmp_path, "outside-before", first_flow)
        wait_answered(phone, 1, tmp_path)

        provider.restart()
        ready = time.monotonic()
        after, flow = wait_tcp_binding(provider, switch, timeout=REREGISTER_WITHIN)
        took = time.monotonic() - ready
        assert took < REREGISTER_WITHIN, took
        assert flow != first_flow
        # The new Kamailio started empty: this binding came from a REGISTER it challenged.
        assert registers_before_saved(provider, start=2) == 2, provider.diagnostics()
        assert after.call_id == before.call_id  # one Call-ID for the process's life
        assert after.cseq > before.cseq
        assert EXPIRES - 10 <= after.expires <= EXPIRES, after
        assert len(log_events(switch, "trunk_connection_lost")) == 1
        wait_state(switch, "registered")
        assert registration(switch)["consecutive_failures"] == 0
        assert switch_connections(switch, provider) == [flow]
        only_connection(provider, flow)

        did_call(provider, tmp_path, "outside-after", flow)
        wait_answered(phone, 2, tmp_path)
    assert [e["did"] for e in trunk_calls(switch)] == [DID, DID]
    assert rung(switch) == [MEMBER, MEMBER]
    assert_nothing_left(switch)
    assert switch_connections(switch, provider) == [flow]

    stop_and_unregister(switch, provider)
    assert registers_from(provider)[-1] == flow
