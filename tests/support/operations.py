"""Helpers of the operations tests (tests/e2e/test_operations.py, test_panel.py): a
switch config with one hunt group, the switch run as a context manager, SIPp callees and
customers, and the metrics read back from GET /metrics."""

from __future__ import annotations

import contextlib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from prometheus_client.parser import text_string_to_metric_families

from tests.support.phones import free_rtp_range
from tests.support.processes import RunningSwitch, start_switch
from tests.support.sipp_calls import BackgroundCall, Callee, password

TEAM_DID: Final = "5550400"
TEAM_NUMBER: Final = "400"
CALLER: Final = "209"  # an extension in no group


def team_config(members: str, *, extra: str = "", drain_timeout: float = 3.0) -> str:
    """Extensions 201-203 and 209 (passwords ``secret-N``) and a linear group ``team``
    (``members``: a TOML list) on the public number 5550400 and the internal 400."""
    low, high = free_rtp_range(size=100)
    lines = [
        f'[server]\nlisten = ["udp:127.0.0.1:0"]\ndrain_timeout = {drain_timeout:g}',
        f"[media]\nrtp_port_min = {low}\nrtp_port_max = {high}",
    ]
    lines += [f'[extensions."{n}"]\npassword = "{password(n)}"' for n in ("201", "202", "203")]
    lines.append(f'[extensions."{CALLER}"]\npassword = "{password(CALLER)}"')
    lines.append(
        f'[groups.team]\nstrategy = "linear"\nmembers = {members}\n'
        f'public_numbers = ["{TEAM_DID}"]\nnumbers = ["{TEAM_NUMBER}"]\n'
        "ring_time = 10\ngroup_timeout = 20\n"
    )
    return "\n\n".join(lines) + "\n" + extra


def http(switch: RunningSwitch, path: str) -> str:
    assert switch.status_address is not None
    url = f"http://{switch.status_address}{path}"
    with urllib.request.urlopen(url, timeout=5) as reply:
        text: str = reply.read().decode()
        return text


def metrics(switch: RunningSwitch) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """GET /metrics, parsed: (sample name, labels) -> value."""
    out = {}
    for family in text_string_to_metric_families(http(switch, "/metrics")):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@contextlib.contextmanager
def running(tmp_path: Path, config: str, *extra: str) -> Iterator[RunningSwitch]:
    switch = start_switch(tmp_path, config, ("udp",), extra_args=extra)
    try:
        yield switch
    finally:
        switch.stop()


@contextlib.contextmanager
def callee(switch: RunningSwitch, number: str, behaviour: str, directory: Path) -> Iterator[Callee]:
    started = Callee.start(switch, number, behaviour, directory)
    try:
        yield started
    finally:
        started.stop()


def customer_call(switch: RunningSwitch, directory: Path, name: str, hold: float) -> BackgroundCall:
    """A customer calls the team's public number, plays a tone ``hold`` s, hangs up."""
    return BackgroundCall.start(
        switch, "call_uac_public_basic.xml", directory, "-d", str(round(hold * 1000)),
        called=TEAM_DID, caller=None, name=name,
    )  # fmt: skip


def answered_by(switch: RunningSwitch, number: str) -> bool:
    return any(c["answered_by"] == number for c in switch.status()["calls"]["list"])
