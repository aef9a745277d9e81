"""The SIPp scenarios in ``sipp-scenarios/`` against a switch on ephemeral ports."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.scenarios import Transport, run_scenario
from tests.support.processes import RunningSwitch

pytestmark = pytest.mark.e2e

BOTH: list[Transport] = ["udp", "tcp"]


def check(scenario: str, switch: RunningSwitch, transport: Transport, tmp_path: Path) -> None:
    run = run_scenario(scenario, switch.address(transport), transport, tmp_path)
    assert run.passed, run.report() + "\n--- switch stderr:\n" + switch.stderr_text()[-3000:]
    assert switch.is_alive(), switch.stderr_text()


@pytest.mark.parametrize("transport", BOTH)
def test_options_gets_200_with_allow_and_accept(
    switch: RunningSwitch, transport: Transport, tmp_path: Path
) -> None:
    check("uac_options.xml", switch, transport, tmp_path)


def test_retransmitted_options_is_absorbed_by_the_server_transaction(
    switch: RunningSwitch, tmp_path: Path
) -> None:
    # UDP only: over TCP, Timer J is 0 (RFC 3261 section 17.2.2), so a copy sent after
    # the 200 is a new transaction with a new To tag (see the scenario's comment).
    check("uac_options_retransmit.xml", switch, "udp", tmp_path)


@pytest.mark.parametrize("transport", BOTH)
def test_malformed_requests_get_400_naming_the_fault(
    switch: RunningSwitch, transport: Transport, tmp_path: Path
) -> None:
    check("uac_malformed.xml", switch, transport, tmp_path)


@pytest.mark.parametrize("transport", BOTH)
def test_unknown_method_gets_501(
    switch: RunningSwitch, transport: Transport, tmp_path: Path
) -> None:
    check("uac_unknown_method.xml", switch, transport, tmp_path)


@pytest.mark.parametrize("transport", BOTH)
def test_max_forwards_zero_gets_483_except_options(
    switch: RunningSwitch, transport: Transport, tmp_path: Path
) -> None:
    check("uac_max_forwards_zero.xml", switch, transport, tmp_path)
