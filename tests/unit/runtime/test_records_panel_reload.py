"""/calls' query and CSV, the panel's state, and what a reload may change."""

from __future__ import annotations

import csv
import io
import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from b2bua.cli import main
from b2bua.config import Config, ConfigError, parse_config
from b2bua.runtime.panel import panel_html, panel_state
from b2bua.runtime.records_api import (
    CSV_COLUMNS,
    CallQuery,
    QueryError,
    hunt_trace,
    parse_query,
    to_csv,
)
from b2bua.runtime.reload import ReloadRefusedError, reload_changes

HUNTS: tuple[dict[str, Any], ...] = (
    {
        "group": "sales",
        "strategy": "linear",
        "result": "connected",
        "connected": "102",
        "overflow": None,
        "members": [
            {"t": 0.0, "member": "101", "outcome": "rung", "round": 1},
            {"t": 15.0, "member": "101", "outcome": "cancelled", "reason": "ring time over"},
            {"t": 15.0, "member": "102", "outcome": "rung", "round": 1},
            {"t": 18.25, "member": "102", "outcome": "answered", "round": 1},
        ],
    },
)


def test_default_query() -> None:
    assert parse_query({}) == CallQuery()


def test_query_with_every_filter() -> None:
    query = parse_query(
        {
            "limit": "5",
            "since": "2026-11-23T10:00:00",
            "until": "1795500000.5",
            "number": "+15550100",
            "member": "101",
        }
    )
    assert query.limit == 5
    assert query.since == datetime(2026, 11, 23, 10, tzinfo=UTC).timestamp()
    assert query.until == 1795500000.5
    assert (query.number, query.member, query.csv) == ("+15550100", "101", False)


@pytest.mark.parametrize(
    ("params", "accept", "is_csv"),
    [
        ({"format": "csv"}, "", True),
        ({"format": "json"}, "text/csv", False),
        ({}, "text/csv", True),
        ({}, "application/json, text/plain", False),
    ],
)
def test_format_from_the_parameter_or_the_accept_header(
    params: dict[str, str], accept: str, is_csv: bool
) -> None:
    assert parse_query(params, accept).csv is is_csv


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"since": "20", "until": "10"}, "until is before since"),
        ({"number": "1' OR '1'='1"}, "number"),
        ({"member": ""}, "member"),
        ({"format": "xml"}, "format"),
    ],
)
def test_bad_queries_name_the_parameter(params: dict[str, str], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_query(params)


def test_hunt_trace_in_one_line() -> None:
    assert hunt_trace(HUNTS) == (
        "sales (linear): 101 rung +0.0s, 101 cancelled +15.0s (ring time over), "
        "102 rung +15.0s, 102 answered +18.2s -> connected 102"
    )
    assert hunt_trace(()) == ""


def test_csv_has_a_header_iso_times_and_the_trace() -> None:
    record = {
        "call_id": "c,1",
        "caller": "5551234",
        "caller_name": None,
        "callee": "300",
        "answered_by": "102",
        "started_at": 1795400000.0,
        "answered_at": None,
        "ended_at": 1795400020.0,
        "duration": 2.0,
        "disposition": "answered",
        "caller_status": 200,
        "callee_status": 200,
        "end_reason": "caller BYE",
        "hunts": list(HUNTS),
    }
    rows = list(csv.DictReader(io.StringIO(to_csv([record]))))
    assert list(rows[0]) == list(CSV_COLUMNS)
    row = rows[0]
    assert row["call_id"] == "c,1"
    assert row["started_at"] == "2026-11-23T02:13:20.000+00:00"
    assert (row["answered_at"], row["caller_name"]) == ("", "")
    assert row["hunt_trace"].startswith("sales (linear): 101 rung")
    assert json.loads(row["hunts"]) == list(HUNTS)


def test_panel_state_names_member_states_as_operators_do() -> None:
    snapshot = {
        "groups": {
            "sales": {
                "strategy": "linear",
                "numbers": ["300"],
                "public_numbers": ["5550300"],
                "hunting": 1,
                "members": [
                    {"extension": "101", "state": "ringing"},
                    {"extension": "102", "state": "talking"},
                    {"extension": "103", "state": "dnd"},
                ],
            }
        },
        "calls": {
            "list": [
                {
                    "call_id": "c1",
                    "caller": "5551234",
                    "callee": "5550300",
                    "state": "ringing",
                    "answered_by": None,
                    "started_at": 1.0,
                    "hunt": {"group": "sales", "state": "hunting", "ringing": ["101"]},
                }
            ]
        },
        "draining": False,
    }
    recent = [
        {
            "call_id": "c0",
            "caller": "0101",
            "callee": "300",
            "disposition": "answered",
            "answered_by": "102",
            "started_at": 0.5,
            "duration": 3.0,
            "end_reason": "caller BYE",
            "hunts": list(HUNTS),
        }
    ]
    state = panel_state(snapshot, recent)
    [group] = state["groups"]
    assert [(m["extension"], m["state"]) for m in group["members"]] == [
        ("101", "ringing"),
        ("102", "busy"),
        ("103", "DND"),
    ]
    assert group["numbers"] == ["300", "5550300"]
    assert state["calls"][0]["ringing"] == ["101"]
    assert state["calls"][0]["group"] == "sales"
    assert state["recent"][0]["trace"].endswith("-> connected 102")
    assert "EventSource" in panel_html()


BASE = """
[extensions.101]
password = "secret-101"
[extensions.102]
password = "secret-102"
[groups.sales]
strategy = "linear"
members = ["101"]
numbers = ["300"]
"""


def config(text: str) -> Config:
    return parse_config(tomllib.loads(text), "test.toml")


def test_a_reload_that_changes_groups_numbers_or_calls_is_taken() -> None:
    running = config(BASE)
    new = config(
        BASE.replace('members = ["101"]', 'members = ["102"]') + "[calls]\nmax_calls = 5\n"
    )
    assert reload_changes(running, new) == ["groups", "calls"]
    assert reload_changes(running, running) == []


def test_a_reload_that_changes_anything_else_is_refused_naming_the_sections() -> None:
    running = config(BASE)
    new = config(BASE + "[sip]\nt1 = 0.25\n[media]\nrtp_timeout = 30\n")
    with pytest.raises(ReloadRefusedError) as refused:
        reload_changes(running, new)
    live = "[extensions], [groups], [numbers], [calls]"
    assert refused.value.errors == [
        f"[sip] changed: it needs a restart (a reload applies {live} only)",
        f"[media] changed: it needs a restart (a reload applies {live} only)",
    ]


def test_a_reload_that_adds_an_extension_is_taken() -> None:
    running = config(BASE)
    new = config(BASE + '[extensions.103]\npassword = "secret-103"\n')
    assert reload_changes(running, new) == ["extensions"]


def test_status_token_must_look_like_a_bearer_token() -> None:
    assert config('[status]\ntoken = "abcdefghijklmnop-_.~+/="\n').status.token
    with pytest.raises(ConfigError) as error:
        config('[status]\ntoken = "short"\n')
    assert any("status.token" in line for line in error.value.lines())
    with pytest.raises(ConfigError):
        config("[server]\ndrain_timeout = -1\n")


def test_reload_command_refuses_what_it_cannot_signal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.pid"
    assert main(["reload", "--pid-file", str(missing)]) == 1
    assert f"cannot read {missing}" in capsys.readouterr().err
    garbage = tmp_path / "garbage.pid"
    garbage.write_text("not a pid\n")
    assert main(["reload", "--pid-file", str(garbage)]) == 1
    assert "holds no process id" in capsys.readouterr().err
    assert main(["reload", "--pid", "1"]) == 1  # never init
    assert "refusing process id 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["reload"])  # --pid or --pid-file is required
    broken = tmp_path / "broken.toml"
    broken.write_text('[groups.sales]\nstrategy = "sideways"\n')
    # (a pid file that does not exist: were the check skipped, nothing gets a signal)
    assert main(["reload", "--pid-file", str(missing), "--config", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "groups.sales" in err
    assert "not sent" in err
