"""Confirm-call for a hunt group's mobile (issue 10: "a mobile member answered by a
machine that never presses 1 is not bridged"), end to end through a carrier trunk.

The team group's only member is ``{ external = "+447700900123", confirm = true }``:
the switch rings the mobile through its trunk to Kamailio, the stand-in provider
(tests/support/kamailio.py), whose PSTN gateway is a SIPp UAS standing for the mobile
(sipp-scenarios/trunk_confirm_gateway_*.xml). When the mobile answers, the switch ACKs
its 200 but does not bridge the caller: the media host plays the prompt and a beep to
the mobile's RTP address, from the port the switch offered it (side B), and listens for
RFC 4733 keys; 1 (or SIP INFO ``Signal=1``) bridges the call; nothing within ``[calls]
confirm_timeout`` (2 s here) and the switch BYEs the mobile, the member fails and the
hunt goes on: here it ends, and ``destinations.no_answer = "hangup"`` gives the caller
480.

The mobile's SDP answer names, in its m= line, a UDP socket this test owns
(:class:`~tests.e2e.trunk_support.RtpSink`), so the prompt the switch plays to it is
counted there: PCMU packets from the address of the switch's offer. The caller is a
customer from outside (SIPp, no credentials) calling the group's public number, offering
PCMU and telephone-event 101; the mobile's key is SIPp's own recording of a '1'
(/usr/share/sip-tester/dtmf_2833_1.pcap, payload type 101), valid because the switch
passed that offer on.

What each test checks comes from sources that must agree: SIPp's message traces (the
customer's and the gateway's, with SIPp's timestamps), the RTP sink, Kamailio's request
log, the switch's JSON log (confirm_asked, confirm_key, confirm_timeout) and its call
records and /status. Every process runs on 127.0.0.1 and is stopped by PID by its
fixture or context manager; every wait is bounded.

Helpers shared with the outbound trunk tests come from tests/e2e/test_trunks_outbound.py
(its switch's trunk: ``allow`` names 127.0.0.2, which nothing here uses, so Kamailio on
127.0.0.1 is not taken for the carrier calling in).
"""

from __future__ import annotations

import itertools
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest

from tests.e2e.test_trunks_outbound import (
    ACCOUNT,
    ACCOUNT_SECRET,
    CUSTOMER,
    MOBILE,
    assert_the_switch_answered_the_challenge,
    at_provider,
    failure,
    gateway_invite,
    provider_trunk,
    record_of,
)
from tests.e2e.trunk_support import (
    HOST,
    RtpPacket,
    RtpSink,
    gateway_sipp,
    sdp_address,
    sdp_body,
)
from tests.support.audio import decode_pcmu
from tests.support.kamailio import KamailioProvider, ProviderFactory, provider_factory
from tests.support.phones import free_rtp_range
from tests.support.processes import (
    OUTER_GRACE,
    Address,
    RunningSwitch,
    SwitchFactory,
    assert_nothing_left,
    free_port,
    log_events,
    run_sipp,
)
from tests.support.sipp_calls import SCENARIOS, SippMessage, sent, sipp_messages, traces

__all__ = ["provider_factory"]

pytestmark = [pytest.mark.e2e, pytest.mark.requires_tool("kamailio", "sipp")]

SIPP_TIMEOUT: Final = 20.0
#: [calls] confirm_timeout when nobody presses 1: the test waits it out.
MACHINE_CONFIRM_TIMEOUT: Final = 2.0
#: [calls] confirm_timeout when the person presses 1 after LISTEN_MS: ample margin.
PERSON_CONFIRM_TIMEOUT: Final = 5.0
TEAM_DID: Final = "+15550400"
MEMBER: Final = f"external:{MOBILE}"
#: The telephone-event payload type of the customer's offer and of SIPp's '1' pcap.
EVENT_PT: Final = 101
#: How long the person listens to the prompt before pressing 1 (the gateway's -d).
LISTEN_MS: Final = 1000


def confirm_config(provider: KamailioProvider, confirm_timeout: float) -> str:
    """The team group (linear), whose one member is the mobile with ``confirm = true``;
    nobody confirming hangs up on the caller (480); the trunk as in
    test_trunks_outbound.py."""
    low, high = free_rtp_range(size=40)
    return f"""\
[server]
listen = ["udp:{HOST}:0"]

[sip]
t1 = 0.5

[media]
rtp_port_min = {low}
rtp_port_max = {high}

[calls]
confirm_timeout = {confirm_timeout}

[groups.team]
public_numbers = ["{TEAM_DID}"]
strategy = "linear"
members = [{{ external = "{MOBILE}", confirm = true }}]
ring_time = 10

[groups.team.destinations]
no_answer = "hangup"

{provider_trunk(provider)}
[[trunks.provider.routes]]
prefix = "+44"
category = "national"
"""


def customer(
    switch: RunningSwitch, directory: Path, scenario: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    """A customer (no credentials, offering PCMU and telephone-event 101) calls the
    team's public number with ``scenario``; its caller ID is ``CUSTOMER`` where the
    scenario takes ``-key caller`` (hunt_uac_public_expect_status.xml calls as
    ``customer``, which the forwarded INVITE replaces with the company number)."""
    return run_sipp(
        [
            str(switch.udp), "-sf", str(SCENARIOS / scenario), "-s", TEAM_DID,
            "-key", "caller", CUSTOMER, *extra, "-i", HOST, *traces(directory, "customer"),
        ],
        SIPP_TIMEOUT,
        cwd=directory,
    )  # fmt: skip


def sent_by_gateway(directory: Path, status: int) -> SippMessage:
    """The first time the gateway sent a response ``status`` to the INVITE."""
    for message in sipp_messages(directory / "gateway-messages.log"):
        if message.sent and message.status == status and message.cseq_method == "INVITE":
            return message
    raise AssertionError(f"the gateway sent no {status}")


def received_by(
    directory: Path,
    name: str,
    *,
    method: str | None = None,
    status: int | None = None,
    to: str = "INVITE",
) -> list[SippMessage]:
    """What SIPp ``name`` received: requests of ``method``, or responses ``status`` to its
    request ``to`` (retransmissions included, in order)."""
    return [
        m
        for m in sipp_messages(directory / f"{name}-messages.log")
        if not m.sent
        and (method is None or m.method == method)
        and (status is None or (m.status == status and m.cseq_method == to))
    ]


def invite_answers(directory: Path, name: str) -> list[int]:
    """The final answers SIPp ``name`` got to its INVITE (a retransmission counts once)."""
    return sorted(
        {
            m.status
            for m in sipp_messages(directory / f"{name}-messages.log")
            if not m.sent and m.status is not None and m.status >= 200 and m.cseq_method == "INVITE"
        }
    )


def sent_by(directory: Path, name: str, method: str) -> list[SippMessage]:
    """The requests of ``method`` SIPp ``name`` sent (retransmissions included)."""
    return sent(directory / f"{name}-messages.log", method)


def hunt_outcomes(record: dict[str, Any]) -> list[tuple[str, str]]:
    [hunt] = record["hunts"]
    return [(m["member"], m["outcome"]) for m in hunt["members"]]


# -- 1. a machine answers and never presses 1


def test_a_machine_that_never_presses_1_is_hung_up_on_and_the_caller_never_bridged(
    provider_factory: ProviderFactory,
    switch_factory: SwitchFactory,
    tmp_path: Path,
) -> None:
    """The mobile's voicemail answers (200 with PCMU and telephone-event) and sends
    nothing. The switch ACKs it and plays it the prompt (PCMU packets from the port of
    its offer reach the socket the mobile's SDP named), the customer only hears ringing;
    2 s (confirm_timeout) after the 200 the switch BYEs the mobile; the hunt then ends and
    the customer gets 480, never a 200. The call record names nobody as the answerer."""
    gateway_port = free_port()
    provider = provider_factory({ACCOUNT: ACCOUNT_SECRET}, gateway=Address(HOST, gateway_port))
    switch = switch_factory(confirm_config(provider, MACHINE_CONFIRM_TIMEOUT), ("udp",))

    with (
        RtpSink() as sink,
        gateway_sipp(
            tmp_path,
            "trunk_confirm_gateway_machine.xml",
            gateway_port,
            "-key",
            "sink_port",
            str(sink.port),
        ) as gateway,
    ):
        refused = customer(
            switch, tmp_path, "hunt_uac_public_expect_status.xml", "-key", "expected_status", "480"
        )
        code = gateway.call.finish(timeout=SIPP_TIMEOUT + OUTER_GRACE)
        packets = sink.received()
    assert refused.returncode == 0, failure(tmp_path, provider, switch)
    assert code == 0, failure(tmp_path, provider, switch)

    # The customer heard ringing, then 480: never a 200.
    assert invite_answers(tmp_path, "customer") == [480], failure(tmp_path, provider, switch)
    assert received_by(tmp_path, "customer", status=180)
    assert not received_by(tmp_path, "customer", status=200)

    # The mobile was rung through the provider, answered, and got the BYE confirm_timeout
    # after its 200 (its ACK in between); nothing else (the scenario runs with -nd).
    invite = gateway_invite(tmp_path)
    assert invite.first_line == f"INVITE {at_provider(provider, MOBILE)} SIP/2.0"
    assert_the_switch_answered_the_challenge(provider, switch, MOBILE)
    answered = sent_by_gateway(tmp_path, 200)
    ack = received_by(tmp_path, "gateway", method="ACK")[0]
    bye = received_by(tmp_path, "gateway", method="BYE")[0]
    waited = bye.at - answered.at
    assert ack.at < bye.at
    assert MACHINE_CONFIRM_TIMEOUT - 0.1 < waited < MACHINE_CONFIRM_TIMEOUT + 1.0, waited
    refusal = received_by(tmp_path, "customer", status=480)[0]
    assert refusal.at > answered.at + MACHINE_CONFIRM_TIMEOUT - 0.1

    # The prompt: PCMU from the address the switch offered the mobile, while it waited.
    side_b = sdp_address(sdp_body(invite.text))
    assert_the_prompt_played(switch, packets, side_b, start=answered.at, end=bye.at)

    # The switch's own account: asked, timed out, no key; nobody answered the call.
    assert [e["member"] for e in log_events(switch, "confirm_asked")] == [MEMBER]
    assert [e["member"] for e in log_events(switch, "confirm_timeout")] == [MEMBER]
    assert log_events(switch, "confirm_key") == []
    assert log_events(switch, "call_answered") == []
    record = record_of(switch, TEAM_DID, 1)
    assert record["answered_by"] is None, record
    assert (record["disposition"], record["caller_status"]) == ("no answer", 480)
    [hunt] = record["hunts"]
    assert (hunt["result"], hunt["overflow"], hunt["connected"]) == (
        "overflowed",
        "no_answer",
        None,
    )
    assert hunt_outcomes(record) == [
        (MEMBER, "rung"),
        (MEMBER, "alerting"),
        (MEMBER, "confirming"),
        (MEMBER, "failed"),
    ]
    assert_nothing_left(switch)


# -- 2. a person presses 1


@dataclass(frozen=True)
class Press:
    """How the person presses 1, and who hangs up afterwards."""

    gateway: str
    customer: str
    customer_args: tuple[str, ...]
    answer_has_events: bool
    bye_from_mobile: bool


PRESSES: Final = {
    # SIPp's recorded '1' (RFC 4733, payload type 101); the customer hangs up after 1 s.
    "rfc4733": Press(
        "trunk_confirm_gateway_press1.xml",
        "trunk_out_uac_customer.xml",
        ("-d", "1000"),
        answer_has_events=True,
        bye_from_mobile=False,
    ),
    # SIP INFO Signal=1 (the mobile's answer has no telephone-event); the mobile hangs up.
    "info": Press(
        "trunk_confirm_gateway_info1.xml",
        "trunk_confirm_uac_customer_wait_bye.xml",
        (),
        answer_has_events=False,
        bye_from_mobile=True,
    ),
}


@pytest.mark.parametrize("how", list(PRESSES))
def test_a_person_who_presses_1_is_bridged_to_the_caller(
    provider_factory: ProviderFactory,
    switch_factory: SwitchFactory,
    tmp_path: Path,
    how: str,
) -> None:
    """The mobile answers and hears the prompt (it reaches the socket its SDP named);
    after 1 s the person presses 1, as RFC 4733 events (SIPp's recorded key, payload type
    101, which the customer offered and the switch passed on to the mobile) or as SIP INFO
    through the provider. Only then does the customer get 200; the prompt stops; the call
    is bridged, and a BYE from either side (the customer's, or the mobile's) ends both
    legs. The call record names the mobile as the answerer."""
    press = PRESSES[how]
    gateway_port = free_port()
    provider = provider_factory({ACCOUNT: ACCOUNT_SECRET}, gateway=Address(HOST, gateway_port))
    switch = switch_factory(confirm_config(provider, PERSON_CONFIRM_TIMEOUT), ("udp",))

    with (
        RtpSink() as sink,
        gateway_sipp(
            tmp_path,
            press.gateway,
            gateway_port,
            "-key",
            "sink_port",
            str(sink.port),
            "-d",
            str(LISTEN_MS),
        ) as gateway,
    ):
        bridged = customer(switch, tmp_path, press.customer, *press.customer_args)
        code = gateway.call.finish(timeout=SIPP_TIMEOUT + OUTER_GRACE)
        packets = sink.received()
    assert bridged.returncode == 0, failure(tmp_path, provider, switch)
    assert code == 0, failure(tmp_path, provider, switch)

    # The customer offered telephone-event 101; the switch passed it on to the mobile.
    invite = gateway_invite(tmp_path)
    assert invite.first_line == f"INVITE {at_provider(provider, MOBILE)} SIP/2.0"
    offer = sdp_body(invite.text)
    assert f"a=rtpmap:{EVENT_PT} telephone-event/8000" in offer, offer
    answered = sent_by_gateway(tmp_path, 200)
    assert ("telephone-event" in sdp_body(answered.text)) == press.answer_has_events

    # The customer's 200 came only after the person listened and pressed 1, and long
    # before confirm_timeout would have ended it.
    assert invite_answers(tmp_path, "customer") == [200], failure(tmp_path, provider, switch)
    ok = received_by(tmp_path, "customer", status=200)[0]
    listened = LISTEN_MS / 1000
    assert answered.at + listened - 0.05 < ok.at < answered.at + listened + 1.5, ok.at - answered.at
    assert [e["digit"] for e in log_events(switch, "confirm_key")] == ["1"]
    # The media host heard the key in RTP only when it was sent so.
    heard = [e["digit"] for e in log_events(switch, "confirm_digit")]
    assert heard == (["1"] if press.answer_has_events else [])
    assert log_events(switch, "confirm_timeout") == []
    if how == "info":
        info = sent_by(tmp_path, "gateway", "INFO")[0]
        assert "Signal=1" in info.text
        assert received_by(tmp_path, "gateway", status=200, to="INFO")

    # The prompt played until the key, from the address the switch offered the mobile,
    # and stopped once the call was bridged (the customer sends no audio to relay).
    side_b = sdp_address(offer)
    assert_the_prompt_played(switch, packets, side_b, start=answered.at, end=ok.at)
    late = [p for p in packets if p.at > ok.at + 0.2]
    assert late == [], late[:3]

    # Bridged: a BYE from one side reached the other, and each was answered.
    if press.bye_from_mobile:
        bye = sent_by(tmp_path, "gateway", "BYE")[0]
        relayed = received_by(tmp_path, "customer", method="BYE")[0]
    else:
        bye = sent_by(tmp_path, "customer", "BYE")[0]
        relayed = received_by(tmp_path, "gateway", method="BYE")[0]
    assert 0 <= relayed.at - bye.at < 1.0

    record = record_of(switch, TEAM_DID, 1)
    assert record["answered_by"] == MEMBER, record
    assert (record["disposition"], record["caller_status"]) == ("answered", 200)
    [hunt] = record["hunts"]
    assert (hunt["result"], hunt["connected"]) == ("connected", MEMBER)
    assert hunt_outcomes(record) == [
        (MEMBER, "rung"),
        (MEMBER, "alerting"),
        (MEMBER, "confirming"),
        (MEMBER, "answered"),
    ]
    assert_nothing_left(switch)


def assert_the_prompt_played(
    switch: RunningSwitch,
    packets: list[RtpPacket],
    side_b: tuple[str, int],
    *,
    start: float,
    end: float,
) -> None:
    """Every datagram the mobile's socket got is the prompt: PCMU (payload type 0), 20 ms
    (160 bytes) each, in streams of consecutive sequence numbers (each play of the prompt
    may be a stream of its own), from the switch's ``side_b`` address, from the mobile's
    200 (``start``) until ``end`` (a little later: the last may be on its way); and it is
    sound, not silence. How much of it: the spoken prompt (espeak-ng at the switch's
    start, about 3.7 s, then the beep) is longer than either wait here, so it plays
    without a gap (50 packets a second, less a fifth for a busy machine) until ``end``
    (half a second's slack for the switch to act); without espeak-ng the beep alone
    (0.5 s, then 1.5 s of nothing) gives 20 at least."""
    assert packets, "the mobile got no RTP at all"
    assert {p.source for p in packets} == {side_b}, {p.source for p in packets}
    assert {p.payload_type for p in packets} == {0}
    assert {len(p.payload) for p in packets} == {160}
    for ssrc in {p.ssrc for p in packets}:
        sequences = [p.sequence for p in packets if p.ssrc == ssrc]
        assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(sequences)), sequences
    assert start - 0.05 < packets[0].at < start + 1.0, packets[0].at - start
    assert packets[-1].at < end + 0.2, packets[-1].at - end
    samples = decode_pcmu(p.payload for p in packets)
    assert max(abs(s) for s in samples) > 2000, "the prompt is silence"
    spoken = any(
        str(e.get("path", "")).endswith("confirm-call.wav")
        for e in log_events(switch, "default_greeting_made")
    )
    if not spoken:
        assert len(packets) >= 20, len(packets)
        return
    first, last = packets[0].at, packets[-1].at
    assert last > end - 0.5, (last - start, end - start)
    assert len(packets) >= 0.8 * (last - first) / 0.02, (len(packets), last - first)
