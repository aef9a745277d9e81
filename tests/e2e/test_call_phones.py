"""Calls between real phones through the switch, audio relayed both ways.

The configuration is configs/example.toml (what ``make run`` serves), with the media
range moved to free ports. Each phone sends a tone of its own; the test finds each tone,
by frequency, in the audio the other phone decoded, so the relay carried both directions.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Final

import pytest

from tests.support.audio import read_wav_samples, tone_power
from tests.support.phones import (
    BaresipAccount,
    BaresipFactory,
    LinphoneAccount,
    LinphoneFactory,
    baresip_factory,
    free_rtp_range,
    linphone_factory,
    write_tone_wav,
)
from tests.support.processes import (
    SwitchFactory,
    assert_nothing_left,
    log_events,
    wait_until,
)

__all__ = ["baresip_factory", "linphone_factory"]

pytestmark = pytest.mark.e2e

EXAMPLE: Final = Path(__file__).resolve().parents[2] / "configs" / "example.toml"
CALLER_TONE: Final = 1000.0
CALLEE_TONE: Final = 600.0
#: A tone is "there" when this share of the decoded audio's power lies at its frequency
#: (a clean tone scores about 0.9; G.711, jitter-buffer gaps and the call's silent edges
#: lower it; the other phone's tone scores about 0).
TONE_SHARE: Final = 0.3


def example_config() -> str:
    """configs/example.toml with the relay on a free port range."""
    low, high = free_rtp_range(size=40)
    text = EXAMPLE.read_text()
    assert "rtp_port_min = 20000\nrtp_port_max = 29999" in text
    return text.replace(
        "rtp_port_min = 20000\nrtp_port_max = 29999",
        f"rtp_port_min = {low}\nrtp_port_max = {high}",
    )


def decoded_audio(snd_dir: Path) -> tuple[int, list[int]]:
    """What baresip decoded in its latest call."""
    dump = sorted(snd_dir.glob("dump-*-dec.wav"))[-1]
    return read_wav_samples(dump)


@pytest.mark.requires_tool("baresip")
def test_two_baresip_phones_call_each_other_and_talk(
    switch_factory: SwitchFactory, baresip_factory: BaresipFactory, tmp_path: Path
) -> None:
    switch = switch_factory(example_config(), ("udp",))
    callee = baresip_factory(
        [BaresipAccount("0102", switch.udp, password="change-me-0102", answermode="auto")],
        audio_source=write_tone_wav(tmp_path / "callee.wav", frequency=CALLEE_TONE, seconds=20),
    )
    caller = baresip_factory(
        [BaresipAccount("0101", switch.udp, password="change-me-0101", answermode="manual")],
        audio_source=write_tone_wav(tmp_path / "caller.wav", frequency=CALLER_TONE, seconds=20),
    )
    callee.wait_registered(10)
    caller.wait_registered(10)
    idle_tasks = switch.status()["tasks"]
    since = caller.mark()
    caller.dial(f"sip:0102@{switch.udp}")
    caller.wait_event(lambda e: e.get("type") == "CALL_ESTABLISHED", 10, since=since)
    [live] = switch.status()["calls"]["list"]
    assert (live["caller"], live["callee"], live["answered_by"]) == ("0101", "0102", "0102")
    time.sleep(3)  # talk
    caller.hangup()
    caller.wait_event(lambda e: e.get("type") == "CALL_CLOSED", 10, since=since)
    wait_until(lambda: bool(log_events(switch, "call_ended")), 10, "the call's end")

    # Each phone heard the other's tone, and not its own.
    rate, heard_by_callee = decoded_audio(callee.snd_dir)
    assert tone_power(heard_by_callee, rate, CALLER_TONE) > TONE_SHARE
    assert tone_power(heard_by_callee, rate, CALLEE_TONE) < 0.05
    rate, heard_by_caller = decoded_audio(caller.snd_dir)
    assert tone_power(heard_by_caller, rate, CALLEE_TONE) > TONE_SHARE
    assert tone_power(heard_by_caller, rate, CALLER_TONE) < 0.05

    [ended] = log_events(switch, "call_ended")
    assert ended["disposition"] == "answered"
    assert ended["reason"] == "caller BYE"
    assert_nothing_left(switch)
    assert switch.status()["tasks"] <= idle_tasks
    wait_until(lambda: len(switch.calls()) == 1, 5, "the call record")
    [record] = switch.calls()
    assert record["caller"] == "0101"
    assert record["answered_by"] == "0102"
    assert record["caller_status"] == record["callee_status"] == 200
    assert 2.5 < record["duration"] < 30


@pytest.mark.requires_tool("baresip", "linphonec")
def test_linphonec_calls_baresip_and_baresip_calls_linphonec(
    switch_factory: SwitchFactory,
    baresip_factory: BaresipFactory,
    linphone_factory: LinphoneFactory,
    tmp_path: Path,
) -> None:
    switch = switch_factory(example_config(), ("udp",))
    baresip = baresip_factory(
        [BaresipAccount("0102", switch.udp, password="change-me-0102", answermode="auto")],
        audio_source=write_tone_wav(tmp_path / "callee.wav", frequency=CALLEE_TONE, seconds=30),
    )
    linphone = linphone_factory(
        LinphoneAccount("0103", switch.udp, password="change-me-0103"), auto_answer=True
    )
    baresip.wait_registered(10)
    linphone.wait_registered(10)

    # linphonec as the caller, playing a tone and recording what it hears.
    tone = write_tone_wav(tmp_path / "linphone.wav", frequency=CALLER_TONE, seconds=30)
    recording = tmp_path / "linphone-heard.wav"
    since = baresip.mark()
    mark = linphone.call(f"sip:0102@{switch.udp}")
    linphone.wait_line(r"Call \d+ .*connected", 15, since=mark)
    linphone.send(f"play {tone}")
    linphone.send(f"record {recording}")
    time.sleep(3)
    linphone.terminate()
    baresip.wait_event(lambda e: e.get("type") == "CALL_CLOSED", 10, since=since)
    wait_until(lambda: len(log_events(switch, "call_ended")) == 1, 10, "the first call's end")
    rate, heard = decoded_audio(baresip.snd_dir)
    assert tone_power(heard, rate, CALLER_TONE) > TONE_SHARE, "linphonec's tone not relayed"
    wait_until(recording.exists, 5, "linphonec's recording")
    rate, heard = read_wav_samples(recording)
    assert tone_power(heard, rate, CALLEE_TONE) > TONE_SHARE, "baresip's tone not relayed"

    # linphonec as the callee (it auto-answers).
    since = baresip.mark()
    baresip.dial(f"sip:0103@{switch.udp}")
    baresip.wait_event(lambda e: e.get("type") == "CALL_ESTABLISHED", 15, since=since)
    time.sleep(2)
    baresip.hangup()
    baresip.wait_event(lambda e: e.get("type") == "CALL_CLOSED", 10, since=since)
    wait_until(lambda: len(log_events(switch, "call_ended")) == 2, 10, "the second call's end")
    first, second = log_events(switch, "call_ended")
    assert first["disposition"] == second["disposition"] == "answered"
    assert_nothing_left(switch)
    wait_until(lambda: len(switch.calls()) == 2, 5, "both call records")
    records = switch.calls()
    assert [(r["caller"], r["answered_by"]) for r in records] == [
        ("0103", "0102"),
        ("0102", "0103"),
    ]
