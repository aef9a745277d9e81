"""The operations endpoints of the real server over 127.0.0.1 (in process): the bearer
token (and /healthz open without it), /calls filtered and as CSV from the real store,
/metrics in the Prometheus text format, the panel page and its event stream, and a
reload refused or taken."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
from aiohttp import ClientSession
from prometheus_client.parser import text_string_to_metric_families

from b2bua.call.records import CallRecord, Disposition
from b2bua.cli import main
from b2bua.config import ListenAddress, load_config
from b2bua.runtime.server import Server
from b2bua.sip.address import Transport

TOKEN: Final = "t0ken-for-the-tests-0123456789"
AUTH: Final = {"Authorization": f"Bearer {TOKEN}"}
CONFIG: Final = f"""
[sip]
t1 = 0.05
[status]
listen = "127.0.0.1:0"
token = "{TOKEN}"
[extensions.101]
password = "secret-101"
[extensions.102]
password = "secret-102"
[groups.sales]
strategy = "linear"
members = ["101"]
numbers = ["300"]
"""
T0: Final = 1_795_000_000.0


@dataclass
class Api:
    server: Server
    base: str
    http: ClientSession
    config_path: Path

    async def get(self, path: str, **kw: Any) -> tuple[int, str]:
        async with self.http.get(self.base + path, **kw) as reply:
            return reply.status, await reply.text()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    path = tmp_path / "switch.toml"
    path.write_text(CONFIG)
    listen = [ListenAddress(Transport.UDP, "127.0.0.1", 0)]
    server = Server(load_config(path), listen, tmp_path / "data", None, config_path=path)
    await server.start()
    try:
        assert server.status is not None
        assert server.status.address is not None
        host, port = server.status.address
        async with ClientSession() as http:
            yield Api(server, f"http://{host}:{port}", http, path)
    finally:
        await server.stop()


def record(n: int, caller: str, callee: str, member: str | None, **kw: Any) -> CallRecord:
    hunts: tuple[dict[str, object], ...] = ()
    if member is not None:
        hunts = (
            {
                "group": "sales",
                "strategy": "linear",
                "result": "connected",
                "connected": member,
                "overflow": None,
                "members": [{"t": 0.0, "member": member, "outcome": "answered", "round": 1}],
            },
        )
    fields: dict[str, Any] = {
        "call_id": f"call-{n}",
        "caller": caller,
        "caller_name": None,
        "callee": callee,
        "answered_by": None,
        "started_at": T0 + 60 * n,
        "answered_at": None,
        "ended_at": T0 + 60 * n + 10,
        "duration": 0.0,
        "disposition": Disposition.NO_ANSWER,
        "caller_status": 480,
        "callee_status": None,
        "end_reason": "ring timeout",
        "hunts": hunts,
    }
    fields.update(kw)
    return CallRecord(**fields)


async def test_every_path_but_healthz_wants_the_token(api: Api) -> None:
    assert await api.get("/healthz") == (200, "ok\n")
    for path in ("/status", "/calls", "/metrics", "/panel"):
        status, _ = await api.get(path)
        assert status == 401, path
        status, _ = await api.get(path, headers={"Authorization": "Bearer wrong-token-000000"})
        assert status == 401, path
        status, _ = await api.get(path, headers=AUTH)
        assert status == 200, path
    status, _ = await api.get(f"/status?access_token={TOKEN}")
    assert status == 200


async def test_calls_filtered_by_time_number_and_member_as_json_and_csv(api: Api) -> None:
    store = api.server.store
    assert store is not None
    store.save_call_record(record(1, "0101", "300", "101", answered_by="101"))
    store.save_call_record(record(2, "5551234", "300", None))
    store.save_call_record(record(3, "0102", "0101", None))
    # 101 rang in call 4's hunt but another member answered.
    four = record(4, "5551234", "300", "102", answered_by="102")
    four_hunt = dict(four.hunts[0])
    four_hunt["members"] = [{"t": 0.0, "member": "101", "outcome": "cancelled"}]
    store.save_call_record(
        record(4, "5551234", "300", "102", answered_by="102", hunts=(four_hunt,))
    )
    await asyncio.get_running_loop().run_in_executor(None, store.flush)

    async def ids(query: str) -> list[str]:
        status, text = await api.get(f"/calls?{query}", headers=AUTH)
        assert status == 200, text
        return [r["call_id"] for r in json.loads(text)]

    assert await ids("") == ["call-4", "call-3", "call-2", "call-1"]
    assert await ids("number=0101") == ["call-3", "call-1"]
    assert await ids("member=101") == ["call-4", "call-1"]
    assert await ids("member=10") == []  # a whole member, not a prefix
    assert await ids(f"since={T0 + 120}") == ["call-4", "call-3", "call-2"]
    assert await ids(f"since={T0 + 60}&until={T0 + 180}") == ["call-2", "call-1"]
    assert await ids("until=2026-11-18T11:09:40Z") == ["call-2", "call-1"]  # T0 + 180
    assert await ids("number=5551234&member=102") == ["call-4"]
    assert await ids("limit=1") == ["call-4"]
    status, text = await api.get("/calls?since=soon", headers=AUTH)
    assert (status, text) == (400, "since must be Unix seconds or an ISO 8601 time\n")

    status, text = await api.get("/calls?format=csv&member=101", headers=AUTH)
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["call_id"] for row in rows] == ["call-4", "call-1"]
    assert rows[1]["hunt_trace"] == "sales (linear): 101 answered +0.0s -> connected 101"
    async with api.http.get(api.base + "/calls", headers={**AUTH, "Accept": "text/csv"}) as reply:
        assert reply.content_type == "text/csv"


async def test_metrics_in_the_text_format(api: Api) -> None:
    async with api.http.get(api.base + "/metrics", headers=AUTH) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await reply.text()
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"b2bua_calls", "b2bua_calls_active", "b2bua_sip_requests", "b2bua_registrations",
            "b2bua_media_ports_in_use", "b2bua_rtp_packets_relayed",
            "b2bua_auth_failures", "b2bua_sip_parse_errors"} <= names  # fmt: skip


async def test_panel_page_and_its_event_stream(api: Api) -> None:
    status, page = await api.get("/panel", headers=AUTH)
    assert status == 200
    assert "<title>b2bua: hunt groups, live</title>" in page
    async with api.http.get(api.base + "/panel/events", headers=AUTH) as reply:
        assert reply.headers["Content-Type"] == "text/event-stream"
        assert await asyncio.wait_for(reply.content.readline(), 5) == b"event: state\n"
        line = await asyncio.wait_for(reply.content.readline(), 5)
        state = json.loads(line.removeprefix(b"data: "))
    [group] = state["groups"]
    assert group["name"] == "sales"
    assert group["members"] == [{"extension": "101", "state": "unregistered"}]


async def test_a_broken_file_is_refused_and_a_good_one_taken(api: Api) -> None:
    server = api.server
    assert server.switch is not None
    api.config_path.write_text(CONFIG.replace("[groups.sales]", "[groups.sales]\nbogus = 1"))
    assert await server.reload() is False
    api.config_path.write_text("this is = = not toml")
    assert await server.reload() is False
    assert server.reload_failures == 2
    assert [m.number for m in server.switch.settings.groups["sales"].members] == ["101"]

    api.config_path.write_text(CONFIG.replace('members = ["101"]', 'members = ["102", "101"]'))
    assert await server.reload() is True
    assert [m.number for m in server.switch.settings.groups["sales"].members] == ["102", "101"]
    assert server.reloads == 1


def test_reload_command_sends_sighup(tmp_path: Path) -> None:
    """To a child that waits for SIGHUP and exits 0 on it (bounded, stopped by PID)."""
    child = subprocess.Popen(
        [sys.executable, "-c", WAIT_FOR_SIGHUP], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        pid_file = tmp_path / "b2bua.pid"
        pid_file.write_text(f"{child.pid}\n")
        assert main(["reload", "--pid-file", str(pid_file)]) == 0
        assert child.wait(timeout=10) == 0
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()


WAIT_FOR_SIGHUP = """
import signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
print("ready", flush=True)
signal.sigtimedwait({signal.SIGHUP}, 10) or sys.exit(1)
"""
