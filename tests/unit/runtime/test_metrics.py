"""The metrics' pure parts: classifying SIP messages by their first line, the counters
fed by call records, and the gauges read from a /status snapshot."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from b2bua.call.records import CallRecord, Disposition
from b2bua.runtime.metrics import Metrics, classify


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"INVITE sip:100@x SIP/2.0\r\nCSeq: 1 INVITE\r\n\r\n", ("INVITE", None)),
        (b"SIP/2.0 180 Ringing\r\nCSeq: 2 INVITE\r\n\r\n", ("INVITE", "180")),
        (b"SIP/2.0 401 Unauthorized\r\nVia: x\r\ncseq:  7  register\r\n\r\n", ("REGISTER", "401")),
        (b"SIP/2.0 200 OK\r\n\r\n", ("other", "200")),  # no CSeq
        (b"FROB sip:x SIP/2.0\r\n\r\n", ("other", None)),  # a method nobody defined
        (b"\r\n\r\n", None),  # a keep-alive
        (b"HELLO", None),
        (b"SIP/2.0 99 Odd\r\n\r\n", None),
    ],
)
def test_classify(data: bytes, expected: tuple[str, str | None] | None) -> None:
    assert classify(data) == expected


def snapshot() -> dict[str, Any]:
    return {
        "calls": {"active": 2, "finishing": 0, "ended": 5, "list": []},
        "groups": {
            "sales": {
                "hunting": 1,
                "members": [
                    {"extension": "101", "state": "ringing"},
                    {"extension": "102", "state": "idle"},
                    {"extension": "103", "state": "idle"},
                ],
            }
        },
        "registrations": {"101": [{}, {}], "102": [{}], "103": []},
        "blocked_sources": [{"source": "192.0.2.1"}],
        "transactions": 4,
        "media_ports": {"allocated": 8, "capacity": 100},
        "media": {"sessions": 2, "sockets": 8},
        "voicemail": {"messages": {"101": {"new": 2, "old": 1}}},
        "trunks": {
            "carrier": {"calls": 1, "registration": {"state": "registered"}},
            "backup": {
                "calls": 0,
                "registration": {
                    "state": "failing",
                    "last_status": 403,
                    "consecutive_failures": 3,
                    "next_attempt": 1_800_000_040.0,
                },
            },
            "ip-only": {"calls": 0},
        },
        "draining": False,
    }


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def record(**changes: object) -> CallRecord:
    fields: dict[str, Any] = {
        "call_id": "c1",
        "caller": "5551234",
        "caller_name": None,
        "callee": "300",
        "answered_by": "102",
        "started_at": 1000.0,
        "answered_at": 1004.0,
        "ended_at": 1010.0,
        "duration": 6.0,
        "disposition": Disposition.ANSWERED,
        "caller_status": 200,
        "callee_status": 200,
        "end_reason": "caller BYE",
        "hunts": ({"group": "sales", "result": "connected", "connected": "102", "members": []},),
    }
    fields.update(changes)
    return CallRecord(**fields)


def test_levels_come_from_the_snapshot_and_counters_from_the_core() -> None:
    counts = {"parse_errors": 3, "auth_failures": 4, "rtp_relayed": 500, "rtp_dropped": 2}
    metrics = Metrics(snapshot, lambda: counts)
    got = samples(metrics)
    assert got[("b2bua_calls_active", ())] == 2
    assert got[("b2bua_calls_hunting", (("group", "sales"),))] == 1
    assert got[("b2bua_group_members", (("group", "sales"), ("state", "idle")))] == 2
    assert got[("b2bua_group_members", (("group", "sales"), ("state", "ringing")))] == 1
    assert got[("b2bua_registrations", ())] == 3
    assert got[("b2bua_registered_extensions", ())] == 2
    assert got[("b2bua_blocked_sources", ())] == 1
    assert got[("b2bua_media_ports_in_use", ())] == 8
    assert got[("b2bua_voicemail_messages", (("mailbox", "101"), ("state", "new")))] == 2
    assert got[("b2bua_trunk_registered", (("trunk", "carrier"),))] == 1
    assert ("b2bua_trunk_registered", (("trunk", "ip-only"),)) not in got
    backup = (("trunk", "backup"),)
    assert got[("b2bua_trunk_registered", backup)] == 0
    assert got[("b2bua_trunk_registration_failures", backup)] == 3
    assert got[("b2bua_trunk_registration_last_status", backup)] == 403
    assert got[("b2bua_trunk_registration_next_attempt_timestamp_seconds", backup)] == 1.80000004e9
    assert got[("b2bua_trunk_registration_failures", (("trunk", "carrier"),))] == 0
    assert got[("b2bua_sip_parse_errors_total", ())] == 3
    assert got[("b2bua_auth_failures_total", ())] == 4
    assert got[("b2bua_rtp_packets_relayed_total", ())] == 500
    assert got[("b2bua_rtp_packets_dropped_total", ())] == 2
    assert got[("b2bua_config_reloads_total", ())] == 0
    assert got[("b2bua_draining", ())] == 0


def test_call_records_count_calls_hunts_and_answers() -> None:
    metrics = Metrics(snapshot, dict)
    metrics.call_recorded(record())
    metrics.call_recorded(
        record(
            answered_by="voicemail:101",
            disposition=Disposition.VOICEMAIL,
            hunts=({"group": "sales", "result": "overflowed", "connected": None},),
        )
    )
    metrics.call_recorded(record(answered_by="102", hunts=()))  # a direct call
    got = samples(metrics)
    assert got[("b2bua_calls_total", (("disposition", "answered"),))] == 2
    assert got[("b2bua_calls_total", (("disposition", "voicemail"),))] == 1
    assert got[("b2bua_calls_total", (("disposition", "busy"),))] == 0  # shown at 0
    assert got[("b2bua_hunts_total", (("group", "sales"), ("result", "connected")))] == 1
    assert got[("b2bua_hunts_total", (("group", "sales"), ("result", "overflowed")))] == 1
    assert got[("b2bua_member_answers_total", (("group", "sales"), ("member", "102")))] == 1
    assert got[("b2bua_member_answers_total", (("group", ""), ("member", "102")))] == 1
    assert not any(name == "b2bua_member_answers_total" and ("member", "voicemail:101") in labels
                   for name, labels in got)  # fmt: skip


def test_sip_messages_count_by_direction_method_and_status() -> None:
    metrics = Metrics(snapshot, dict)
    metrics.sip_received(b"INVITE sip:300@x SIP/2.0\r\nCSeq: 1 INVITE\r\n\r\n")
    metrics.sip_received(b"INVITE sip:300@x SIP/2.0\r\nCSeq: 1 INVITE\r\n\r\n")
    metrics.sip_sent(b"SIP/2.0 407 Proxy Authentication Required\r\nCSeq: 1 INVITE\r\n\r\n")
    metrics.sip_sent(b"\r\n\r\n")
    got = samples(metrics)
    assert got[("b2bua_sip_requests_total", (("direction", "in"), ("method", "INVITE")))] == 2
    key = (("direction", "out"), ("method", "INVITE"), ("status", "407"))
    assert got[("b2bua_sip_responses_total", key)] == 1
    assert ("b2bua_sip_requests_total", (("direction", "out"), ("method", "INVITE"))) not in got


def test_two_servers_count_apart() -> None:
    first, second = Metrics(snapshot, dict), Metrics(snapshot, dict)
    first.call_recorded(record())
    assert samples(second)[("b2bua_calls_total", (("disposition", "answered"),))] == 0
