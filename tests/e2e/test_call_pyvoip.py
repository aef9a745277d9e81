"""A misbehaving phone: pyVoIP 1.6.8 (an interop peer only; GPLv3, run as its own
process) answers CANCEL with 200 but never sends 487, and answers the cancelled INVITE
later anyway. The switch must still finish its transactions, ACK and BYE that late 200,
and leave nothing behind."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from tests.e2e.scenarios import run_scenario
from tests.e2e.test_call_phones import example_config
from tests.support.phones import free_rtp_range, free_sip_port
from tests.support.processes import (
    RunningSwitch,
    SwitchFactory,
    assert_nothing_left,
    log_events,
    wait_until,
)

pytestmark = pytest.mark.e2e

ROOT: Final = Path(__file__).resolve().parents[2]
PYVOIP_LIFETIME: Final = 60


class PyVoipPhone:
    """``python -m tests.support.pyvoip_phone`` as a child process, stopped by PID."""

    def __init__(self, switch: RunningSwitch, workdir: Path, *, answer_after: float) -> None:
        low, high = free_rtp_range(size=20)
        self.log = workdir / "pyvoip.log"
        self._out = self.log.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.pyvoip_phone",
                "--server",
                str(switch.udp),
                "--user",
                "0103",
                "--password",
                "change-me-0103",
                "--sip-port",
                str(free_sip_port()),
                "--rtp",
                f"{low}-{high}",
                "--answer-after",
                str(answer_after),
                "--hold",
                "2",
                "--lifetime",
                str(PYVOIP_LIFETIME),
            ],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def events(self) -> list[dict[str, Any]]:
        lines = self.log.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def names(self) -> list[str]:
        return [event["event"] for event in self.events()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()  # pyVoIP's stop() can hang on its socket threads
        self.process.wait(timeout=10)
        self._out.close()


@pytest.fixture
def pyvoip_switch(
    switch_factory: SwitchFactory, tmp_path: Path
) -> Iterator[tuple[RunningSwitch, PyVoipPhone]]:
    switch = switch_factory(example_config(), ("udp",))
    phone = PyVoipPhone(switch, tmp_path, answer_after=3.0)
    try:
        wait_until(lambda: "0103" in switch.status()["registrations"], 15, "pyVoIP's REGISTER")
        yield switch, phone
    finally:
        phone.stop()


def users(tmp_path: Path) -> Path:
    path = tmp_path / "users.csv"
    path.write_text("SEQUENTIAL\n0101;[authentication username=0101 password=change-me-0101]\n")
    return path


@pytest.mark.requires_tool("sipp")
def test_a_callee_that_ignores_cancel_and_answers_late_is_acked_and_byed(
    pyvoip_switch: tuple[RunningSwitch, PyVoipPhone], tmp_path: Path
) -> None:
    switch, phone = pyvoip_switch
    # The caller cancels while pyVoIP rings; it gets 200 and 487 from the switch at once.
    run = run_scenario(
        "call_uac_cancel.xml",
        switch.udp,
        "udp",
        tmp_path,
        extra_args=["-inf", str(users(tmp_path)), "-s", "0103"],
    )
    assert run.passed, run.report()
    # pyVoIP sent no 487; three seconds after the INVITE it answers the cancelled call.
    wait_until(lambda: "answered" in phone.names(), 10, "pyVoIP's late answer")
    wait_until(lambda: bool(log_events(switch, "late_answer_released")), 10, "ACK and BYE")
    wait_until(lambda: "ended" in phone.names(), 10, "pyVoIP's call ending on our BYE")
    [ended] = log_events(switch, "call_ended")
    assert ended["disposition"] == "cancelled"
    assert ended["caller_status"] == 487
    # Nothing is left: no call, no port, no media socket.
    assert_nothing_left(switch)
    assert switch.is_alive()
