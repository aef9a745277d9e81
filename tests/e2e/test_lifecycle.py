"""The switch process itself: ready file, ephemeral ports, clean stop on a signal."""

from __future__ import annotations

import signal

import pytest

from tests.support.processes import SwitchFactory

pytestmark = pytest.mark.e2e


@pytest.mark.python_only
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_switch_with_exit_code_0(
    switch_factory: SwitchFactory, signum: signal.Signals
) -> None:
    switch = switch_factory()
    assert switch.ready_pid == switch.pid
    assert switch.udp.port != 0
    assert switch.tcp.port != 0
    assert switch.is_alive()
    exit_code = switch.stop(signum=signum)
    assert exit_code == 0, f"exit {exit_code}; stderr:\n{switch.stderr_text()[-3000:]}"


@pytest.mark.python_only
def test_two_switches_side_by_side_take_their_own_ports(switch_factory: SwitchFactory) -> None:
    first = switch_factory(transports=("udp",))
    second = switch_factory(transports=("udp",))
    assert first.udp != second.udp
    with pytest.raises(LookupError):
        _ = first.tcp
