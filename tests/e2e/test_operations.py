"""Operations through the real switch process with SIPp peers on 127.0.0.1: the metrics
move as calls happen; a reload with a broken file keeps the running config (every error
logged); a reload that changes a group's members sends the next call to the new member
while the call in progress stays up; SIGTERM drains (503 with Retry-After to new calls,
the call in progress ended with BYE on both legs at ``drain_timeout``, exit 0, the
registrations still there after a restart).

What each test checks comes from the switch's own answers (GET /metrics, /status,
/calls), its JSON log, and the SIP messages each SIPp logged (-trace_msg)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
from pathlib import Path
from typing import Any

import pytest

from tests.support.audio import write_tone_wav_ulaw
from tests.support.operations import (
    CALLER,
    TEAM_DID,
    TEAM_NUMBER,
    answered_by,
    callee,
    customer_call,
    http,
    metrics,
    running,
    team_config,
    value,
)
from tests.support.processes import (
    RunningSwitch,
    log_events,
    run_bounded,
    start_switch,
    wait_until,
)
from tests.support.sipp_calls import (
    BackgroundCall,
    call,
    received,
    report,
    sipp_messages,
)

pytestmark = pytest.mark.e2e


def records(switch: RunningSwitch) -> list[dict[str, Any]]:
    """The call records, oldest first."""
    return switch.calls()


def test_metric_counters_move_as_calls_happen(tmp_path: Path) -> None:
    write_tone_wav_ulaw(tmp_path / "caller_tone.wav", 1000, 1.0)
    with running(tmp_path, team_config('["201"]')) as switch:
        before = metrics(switch)
        assert value(before, "b2bua_calls_total", disposition="answered") == 0
        assert value(before, "b2bua_registrations") == 0
        assert http(switch, "/healthz") == "ok\n"
        with callee(switch, "201", "call_uas_answer.xml", tmp_path) as member:
            assert value(metrics(switch), "b2bua_registrations") == 1
            assert value(metrics(switch), "b2bua_registered_extensions") == 1
            with customer_call(switch, tmp_path, "customer", 3.0) as customer:
                wait_until(lambda: answered_by(switch, "201"), 10, "201 answering")
                during = metrics(switch)
                assert value(during, "b2bua_calls_active") == 1
                assert value(during, "b2bua_media_ports_in_use") == 2  # one pair per side
                assert value(during, "b2bua_media_sockets") == 4  # RTP and RTCP, each side
                assert value(during, "b2bua_media_sessions") == 1
                assert value(during, "b2bua_group_members", group="team", state="talking") == 1
                assert customer.finish() == 0, report(tmp_path)
            assert member.finish() == 0, report(tmp_path)
        # A REGISTER with a wrong password, and a datagram that is no SIP message.
        refused = call(
            switch, "uac_register_refused.xml", tmp_path, caller="201", secret="wrong-one",
            name="refused",
        )  # fmt: skip
        assert refused.returncode == 0, report(tmp_path, refused)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.sendto(b"INVITE sip:x SIP/2.0\r\nCSeq: one INVITE\r\n\r\n", tuple(switch.udp))
        wait_until(
            lambda: value(metrics(switch), "b2bua_sip_parse_errors_total") == 1, 5, "parse error"
        )
        wait_until(lambda: value(metrics(switch), "b2bua_calls_active") == 0, 10, "the call to end")
        after = metrics(switch)
    assert value(after, "b2bua_calls_total", disposition="answered") == 1
    assert value(after, "b2bua_calls_total", disposition="busy") == 0
    assert value(after, "b2bua_hunts_total", group="team", result="connected") == 1
    assert value(after, "b2bua_member_answers_total", member="201", group="team") == 1
    # The customer's INVITE in; our INVITE out to 201; 180 and 200 both ways.
    assert value(after, "b2bua_sip_requests_total", direction="in", method="INVITE") >= 1
    assert value(after, "b2bua_sip_requests_total", direction="out", method="INVITE") >= 1
    for direction in ("in", "out"):
        for status in ("180", "200"):
            labels = {"direction": direction, "method": "INVITE", "status": status}
            assert value(after, "b2bua_sip_responses_total", **labels) >= 1, labels
    assert value(after, "b2bua_sip_requests_total", direction="in", method="BYE") >= 1
    assert value(after, "b2bua_sip_requests_total", direction="out", method="BYE") >= 1
    out_401 = {"direction": "out", "method": "REGISTER", "status": "401"}
    assert value(after, "b2bua_sip_responses_total", **out_401) >= 2
    assert value(after, "b2bua_auth_failures_total") >= 1
    # The customer's tone went through the relay (50 packets a second for 3 s).
    assert value(after, "b2bua_rtp_packets_relayed_total") >= 50
    assert value(after, "b2bua_media_ports_in_use") == 0
    assert value(after, "b2bua_registrations") == 1  # 201's binding stays


def reload_switch(switch: RunningSwitch, pid_file: Path) -> subprocess.CompletedProcess[str]:
    """``b2bua reload --pid-file`` as an operator runs it."""
    command = [sys.executable, "-m", "b2bua", "reload", "--pid-file", str(pid_file)]
    result = run_bounded(command, 20)
    assert result.returncode == 0, result.stderr
    return result


def config_file(switch: RunningSwitch) -> Path:
    return switch.workdir / "switch.toml"


def group_members(switch: RunningSwitch) -> list[str]:
    return [m["extension"] for m in switch.status()["groups"]["team"]["members"]]


def test_reload_refuses_a_broken_file_and_moves_new_calls_to_new_members(tmp_path: Path) -> None:
    write_tone_wav_ulaw(tmp_path / "caller_tone.wav", 1000, 1.0)
    pid_file = tmp_path / "switch.pid"
    good = team_config('["201"]')
    with running(tmp_path, good, "--pid-file", str(pid_file)) as switch:
        assert pid_file.read_text().strip() == str(switch.pid)
        with (
            callee(switch, "201", "call_uas_answer.xml", tmp_path) as first_member,
            callee(switch, "202", "call_uas_answer.xml", tmp_path) as second_member,
            customer_call(switch, tmp_path, "first", 12.0) as first,
        ):
            wait_until(lambda: answered_by(switch, "201"), 10, "201 answering the first call")

            # A file with two errors: both are logged, nothing changes.
            broken = good.replace('strategy = "linear"', 'strategy = "sideways"').replace(
                "ring_time = 10", "ring_time = -4"
            )
            config_file(switch).write_text(broken)
            reload_switch(switch, pid_file)
            wait_until(
                lambda: log_events(switch, "config_reload_refused"), 10, "the reload refused"
            )
            [refused] = log_events(switch, "config_reload_refused")
            errors = refused["errors"]
            assert len(errors) == 2, errors
            assert any("groups.team.strategy" in line for line in errors), errors
            assert any("groups.team.ring_time" in line for line in errors), errors
            assert len(log_events(switch, "config_reload_error")) == 2
            assert group_members(switch) == ["201"]
            assert value(metrics(switch), "b2bua_config_reload_failures_total") == 1

            # The group now has 202 only: the next call rings 202, the first stays up.
            config_file(switch).write_text(good.replace('members = ["201"]', 'members = ["202"]'))
            os.kill(switch.pid, signal.SIGHUP)  # what b2bua reload --pid does
            wait_until(lambda: log_events(switch, "config_reloaded"), 10, "the reload taken")
            assert log_events(switch, "config_reloaded")[0]["changed"] == ["groups"]
            assert group_members(switch) == ["202"]
            second = call(
                switch, "call_uac_public_basic.xml", tmp_path, "-d", "1000",
                called=TEAM_DID, caller=None, name="second",
            )  # fmt: skip
            assert second.returncode == 0, report(tmp_path, second)
            assert second_member.finish() == 0, report(tmp_path)
            assert answered_by(switch, "201"), "the first call must still be up"
            assert first.finish() == 0, report(tmp_path)
            assert first_member.finish() == 0, report(tmp_path)
        wait_until(lambda: len(records(switch)) == 2, 10, "both call records")
        first_record, second_record = records(switch)
    assert (first_record["answered_by"], first_record["end_reason"]) == ("201", "caller BYE")
    assert first_record["duration"] >= 11.0  # up across both reloads
    assert second_record["answered_by"] == "202"
    assert [m["member"] for m in second_record["hunts"][0]["members"]] == ["202"] * len(
        second_record["hunts"][0]["members"]
    )


def test_sigterm_drains_then_ends_the_calls_with_bye_and_exits_0(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = team_config('["201"]', drain_timeout=6)
    switch = start_switch(tmp_path, config, ("udp",), data_dir=data)
    try:
        with (
            callee(switch, "201", "call_uas_answer.xml", tmp_path) as member,
            BackgroundCall.start(
                switch, "call_uac_wait_bye.xml", tmp_path,
                called=TEAM_NUMBER, caller=CALLER, name="in-progress",
            ) as in_progress,
        ):  # fmt: skip
            wait_until(lambda: answered_by(switch, "201"), 10, "201 answering")
            signalled = time.time()  # SIPp's trace stamps are wall-clock time too
            os.kill(switch.pid, signal.SIGTERM)
            wait_until(lambda: log_events(switch, "draining"), 5, "the drain to start")
            with pytest.raises(urllib.error.HTTPError) as unhealthy:
                http(switch, "/healthz")
            assert (unhealthy.value.code, unhealthy.value.read()) == (503, b"draining\n")
            # A new call is refused with 503 and Retry-After while the first goes on.
            refused = call(
                switch, "hunt_uac_public_expect_status.xml", tmp_path,
                "-key", "expected_status", "503", called=TEAM_DID, caller=None, name="late",
            )  # fmt: skip
            assert refused.returncode == 0, report(tmp_path, refused)
            [answer] = [
                m for m in sipp_messages(tmp_path / "late-messages.log") if m.status == 503
            ][:1]
            assert "Retry-After: 30" in answer.text
            assert switch.is_alive()
            # At drain_timeout (6 s) the switch hangs up both legs; both answer its BYE.
            assert in_progress.finish(timeout=15) == 0, report(tmp_path)
            assert member.finish(timeout=15) == 0, report(tmp_path)
            for log in (tmp_path / "in-progress-messages.log", member.messages_log):
                [bye, *_] = received(log, "BYE")
                # Not before drain_timeout (6 s), and not much after it.
                assert 5.8 <= bye.at - signalled <= 9.0, (log.name, bye.at - signalled)
            assert switch.process.wait(timeout=15) == 0, switch.stderr_text()[-3000:]
        switch.exit_code = 0
        drained = log_events(switch, "drained")
        assert drained
        assert drained[0]["calls_left"] == 0
        [ending] = log_events(switch, "drain_ending_calls")
        assert (ending["calls"], ending["hurried"]) == (1, False)
    finally:
        switch.stop()
    # Started again on the same data: 201's binding and the drained call's record are there.
    again = start_switch(tmp_path, config, ("udp",), data_dir=data)
    try:
        assert "201" in again.status()["registrations"]
        [drained_call] = [r for r in again.calls() if r["answered_by"] == "201"]
        assert drained_call["end_reason"] == "shutting down"
        assert (
            json.loads(http(again, "/calls?format=json&member=201"))[0]["call_id"]
            == (drained_call["call_id"])
        )
    finally:
        again.stop()


def test_sigint_ends_the_calls_in_progress_at_once_with_bye(tmp_path: Path) -> None:
    """SIGINT (or a second SIGTERM) skips the drain's wait, never the BYEs."""
    with running(tmp_path, team_config('["201"]', drain_timeout=20)) as switch:
        with (
            callee(switch, "201", "call_uas_answer.xml", tmp_path) as member,
            BackgroundCall.start(
                switch, "call_uac_wait_bye.xml", tmp_path,
                called="201", caller=CALLER, name="in-progress",
            ) as in_progress,
        ):  # fmt: skip
            wait_until(lambda: answered_by(switch, "201"), 10, "201 answering")
            os.kill(switch.pid, signal.SIGINT)
            # Well before drain_timeout (20 s): both legs get the switch's BYE.
            assert switch.process.wait(timeout=8) == 0, switch.stderr_text()[-3000:]
            switch.exit_code = 0
            assert in_progress.finish(timeout=10) == 0, report(tmp_path)
            assert member.finish(timeout=10) == 0, report(tmp_path)
        [ending] = log_events(switch, "drain_ending_calls")
        assert (ending["calls"], ending["hurried"]) == (1, True)
        assert log_events(switch, "drained")[0]["calls_left"] == 0


def test_reload_adds_an_extension_that_registers_and_takes_calls_at_once(
    tmp_path: Path,
) -> None:
    write_tone_wav_ulaw(tmp_path / "caller_tone.wav", 1000, 1.0)
    good = team_config('["201"]')
    with running(tmp_path, good) as switch:
        # A new line, 204, in the file and in the group; no restart.
        config_file(switch).write_text(
            good.replace('members = ["201"]', 'members = ["204"]')
            + '\n[extensions."204"]\npassword = "secret-204"\n'
        )
        os.kill(switch.pid, signal.SIGHUP)
        wait_until(lambda: log_events(switch, "config_reloaded"), 10, "the reload taken")
        assert log_events(switch, "config_reloaded")[0]["changed"] == ["extensions", "groups"]
        with callee(switch, "204", "call_uas_answer.xml", tmp_path) as new_line:
            wait_until(lambda: "204" in switch.status()["registrations"], 10, "204 registered")
            customer = call(
                switch, "call_uac_public_basic.xml", tmp_path, "-d", "1000",
                called=TEAM_DID, caller=None, name="customer",
            )  # fmt: skip
            assert customer.returncode == 0, report(tmp_path, customer)
            assert new_line.finish() == 0, report(tmp_path)
        wait_until(lambda: len(records(switch)) == 1, 10, "the call record")
        [record] = records(switch)
    assert record["answered_by"] == "204"
