"""Calls through the switch driven by SIPp (sipp-scenarios/call_*.xml): every way a call
can end, the audio in both directions, RTP inactivity, and a run of 200 calls after
which nothing is left behind.

A callee is one SIPp process (tests.support.sipp_calls.Callee): call_uas_register.xml (or
call_uas_register_stay.xml for many calls) registers the extension with digest, and the
callee behaviour runs as its out-of-call scenario (-oocsf) for every INVITE the switch
sends. Callers authenticate (407) as extension 0101.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from tests.support.audio import RATE, RtpCapture, read_wav_samples, tone_power, write_tone_wav_ulaw
from tests.support.phones import (
    BaresipAccount,
    BaresipFactory,
    baresip_factory,
    free_rtp_range,
    write_tone_wav,
)
from tests.support.processes import (
    SwitchFactory,
    assert_nothing_left,
    free_udp_pair,
    log_events,
    wait_until,
)
from tests.support.sipp_calls import Callee, call, callees, password, report

__all__ = ["baresip_factory"]

pytestmark = pytest.mark.e2e

CALLER_HZ: Final = 1000
CALLEE_HZ: Final = 600
TONE_WAV: Final = "caller_tone.wav"  # the fixed name call_uac_basic.xml plays
NUMBERS: Final = ("0101", "0102", "0103", "0104", "0105", "0106", "0107")


def config(*, ring_timeout: float = 30, rtp_timeout: float = 60, max_calls: int = 1) -> str:
    low, high = free_rtp_range(size=500)
    lines = [
        '[server]\nlisten = ["udp:127.0.0.1:0"]',
        f"[calls]\nring_timeout = {ring_timeout}",
        f"[media]\nrtp_port_min = {low}\nrtp_port_max = {high}\nrtp_timeout = {rtp_timeout}",
    ]
    lines += [
        f'[extensions."{n}"]\npassword = "{password(n)}"\nmax_calls = {max_calls}' for n in NUMBERS
    ]
    return "\n\n".join(lines) + "\n"


# -- one call each way it can end


@dataclass(frozen=True)
class Ending:
    caller: str
    callee: str
    disposition: str
    reason: str
    extra: tuple[str, ...] = ()


ENDINGS: Final = {
    "the caller hangs up": Ending(
        "call_uac_basic.xml", "call_uas_answer.xml", "answered", "caller BYE"
    ),
    "the callee hangs up": Ending(
        "call_uac_wait_bye.xml", "call_uas_answer_hangup.xml", "answered", "callee BYE"
    ),
    "CANCEL while ringing": Ending(
        "call_uac_cancel.xml", "call_uas_ring_forever.xml", "cancelled", "caller cancelled"
    ),
    "hold and unhold": Ending(
        "call_uac_hold.xml", "call_uas_answer_hold.xml", "answered", "caller BYE"
    ),
    "the callee is busy": Ending(
        "call_uac_expect_status.xml",
        "call_uas_busy.xml",
        "busy",
        "callees answered 486",
        ("-key", "expected_status", "486"),
    ),
}


@pytest.mark.parametrize("name", list(ENDINGS))
def test_a_call_ends(name: str, switch_factory: SwitchFactory, tmp_path: Path) -> None:
    ending = ENDINGS[name]
    switch = switch_factory(config(), ("udp",))
    write_tone_wav_ulaw(tmp_path / TONE_WAV, CALLER_HZ, 1.0)
    callee = Callee.start(switch, "0102", ending.callee, tmp_path)
    try:
        caller = call(switch, ending.caller, tmp_path, *ending.extra)
        assert caller.returncode == 0, report(tmp_path, caller)
        assert callee.finish() == 0, report(tmp_path, caller)
    finally:
        callee.stop()
    wait_until(lambda: bool(log_events(switch, "call_ended")), 10, "the call's end")
    [ended] = log_events(switch, "call_ended")
    assert (ended["disposition"], ended["reason"]) == (ending.disposition, ending.reason)
    assert_nothing_left(switch)
    wait_until(lambda: len(switch.calls()) == 1, 5, "the call record")


@pytest.mark.parametrize(("caller_transport", "callee_transport"), [("udp", "tcp"), ("tcp", "udp")])
def test_a_call_between_transports(
    caller_transport: str, callee_transport: str, switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    """A phone registered over TCP is called on its connection; each leg keeps its own
    transport (the callee hangs up, its BYE crosses to the caller's transport)."""
    switch = switch_factory(config(), ("udp", "tcp"))
    callee = Callee.start(
        switch, "0102", "call_uas_answer_hangup.xml", tmp_path, transport=callee_transport
    )
    try:
        caller = call(switch, "call_uac_wait_bye.xml", tmp_path, transport=caller_transport)
        assert caller.returncode == 0, report(tmp_path, caller)
        assert callee.finish() == 0, report(tmp_path, caller)
    finally:
        callee.stop()
    [ended] = log_events(switch, "call_ended")
    assert (ended["disposition"], ended["reason"]) == ("answered", "callee BYE")
    assert_nothing_left(switch)


def test_a_callee_that_never_answers_gives_480_at_the_ring_timeout(
    switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    switch = switch_factory(config(ring_timeout=2), ("udp",))
    callee = Callee.start(switch, "0102", "call_uas_ring_forever.xml", tmp_path)
    try:
        started = time.monotonic()
        caller = call(
            switch, "call_uac_expect_status.xml", tmp_path, "-key", "expected_status", "480"
        )
        elapsed = time.monotonic() - started
        assert caller.returncode == 0, report(tmp_path, caller)
        assert callee.finish() == 0, report(tmp_path, caller)  # it got CANCEL, sent 487
    finally:
        callee.stop()
    assert 1.5 < elapsed < 10  # the ring timeout, not SIPp's
    [ended] = log_events(switch, "call_ended")
    assert (ended["disposition"], ended["reason"]) == ("no answer", "ring timeout")
    assert_nothing_left(switch)


def test_unknown_and_unregistered_numbers_are_refused(
    switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    switch = switch_factory(config(), ("udp",))
    unknown = call(
        switch, "call_uac_expect_status.xml", tmp_path, "-key", "expected_status", "404",
        called="0199",
    )  # fmt: skip
    assert unknown.returncode == 0, report(tmp_path, unknown)
    nobody = call(
        switch, "call_uac_expect_status.xml", tmp_path, "-key", "expected_status", "480",
        called="0103",
    )  # fmt: skip
    assert nobody.returncode == 0, report(tmp_path, nobody)
    assert_nothing_left(switch)


def test_rtp_inactivity_ends_the_call_with_bye_on_both_legs(
    switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    """Neither side sends RTP: after rtp_timeout the switch sends BYE both ways (the
    caller scenario waits for a BYE; the callee one too)."""
    switch = switch_factory(config(rtp_timeout=2), ("udp",))
    callee = Callee.start(switch, "0102", "call_uas_answer.xml", tmp_path)
    try:
        started = time.monotonic()
        caller = call(switch, "call_uac_wait_bye.xml", tmp_path)
        elapsed = time.monotonic() - started
        assert caller.returncode == 0, report(tmp_path, caller)
        assert callee.finish() == 0, report(tmp_path, caller)
    finally:
        callee.stop()
    assert 1.5 < elapsed < 15
    [ended] = log_events(switch, "call_ended")
    assert ended["reason"] == "RTP timeout"
    assert_nothing_left(switch)


@pytest.mark.requires_tool("sipp", "baresip", "tcpdump")
def test_sipp_caller_and_baresip_callee_hear_each_other(
    switch_factory: SwitchFactory, baresip_factory: BaresipFactory, tmp_path: Path
) -> None:
    switch = switch_factory(config(), ("udp",))
    write_tone_wav_ulaw(tmp_path / TONE_WAV, CALLER_HZ, 1.0)
    phone = baresip_factory(
        [BaresipAccount("0102", switch.udp, password=password("0102"))],
        audio_source=write_tone_wav(tmp_path / "callee.wav", frequency=CALLEE_HZ, seconds=20),
    )
    phone.wait_registered(10)
    caller_media = free_udp_pair()
    with RtpCapture(tmp_path, [caller_media]) as capture:
        caller = call(switch, "call_uac_basic.xml", tmp_path, "-mp", str(caller_media))
    assert caller.returncode == 0, report(tmp_path, caller) + phone.output()
    wait_until(lambda: any(e.get("type") == "CALL_CLOSED" for e in phone.events), 5, "hang-up")
    heard_by_caller = capture.pcmu_samples(caller_media)
    assert len(heard_by_caller) >= 2 * RATE, f"{len(heard_by_caller)} samples captured"
    assert tone_power(heard_by_caller, RATE, CALLEE_HZ) > 0.5
    assert tone_power(heard_by_caller, RATE, CALLER_HZ) < 0.05
    rate, heard_by_callee = read_wav_samples(sorted(phone.snd_dir.glob("dump-*-dec.wav"))[-1])
    assert tone_power(heard_by_callee, rate, CALLER_HZ) > 0.5
    assert tone_power(heard_by_callee, rate, CALLEE_HZ) < 0.05
    assert_nothing_left(switch)


def expect(status: int) -> tuple[str, ...]:
    return ("-key", "expected_status", str(status))


def test_200_calls_ended_every_way_leave_nothing_behind(
    switch_factory: SwitchFactory, tmp_path: Path
) -> None:
    switch = switch_factory(config(ring_timeout=1, max_calls=100), ("udp",))
    idle_tasks = switch.status()["tasks"]
    write_tone_wav_ulaw(tmp_path / TONE_WAV, CALLER_HZ, 1.0)
    runs = [  # (callee number, callee behaviour, caller scenario, extra caller arguments)
        ("0102", "call_uas_answer.xml", "call_uac_basic.xml", ()),
        ("0103", "call_uas_answer_hangup.xml", "call_uac_wait_bye.xml", ()),
        ("0104", "call_uas_ring_forever.xml", "call_uac_cancel.xml", ()),
        ("0105", "call_uas_busy.xml", "call_uac_expect_status.xml", expect(486)),
        ("0106", "call_uas_ring_forever.xml", "call_uac_expect_status.xml", expect(480)),
    ]  # fmt: skip
    with callees(switch, tmp_path, [(number, behaviour) for number, behaviour, _, _ in runs]):
        for number, _, scenario, extra in runs:
            result = call(switch, scenario, tmp_path, *extra, called=number, calls=40)
            assert result.returncode == 0, report(tmp_path, result)
        assert_nothing_left(switch, idle_tasks)
    wait_until(lambda: len(switch.calls(limit=1000)) == 200, 10, "200 call records")
    dispositions: dict[str, int] = {}
    for record in switch.calls(limit=1000):
        dispositions[record["disposition"]] = dispositions.get(record["disposition"], 0) + 1
    assert dispositions == {"answered": 80, "cancelled": 40, "busy": 40, "no answer": 40}
    assert switch.status()["calls"]["ended"] == 200
