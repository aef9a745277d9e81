"""sipsak, an independent SIP tool, gets its OPTIONS answered (as the README promises)."""

from __future__ import annotations

import pytest

from tests.support.processes import RunningSwitch, run_bounded

pytestmark = pytest.mark.e2e

SIPSAK_TIMEOUT = 15.0


@pytest.mark.requires_tool("sipsak")
def test_sipsak_options_exits_0(switch: RunningSwitch) -> None:
    # sipsak exits 0 when its OPTIONS gets a 200 (3 on no answer or an error).
    host, port = switch.udp
    result = run_bounded(["sipsak", "-vv", "-s", f"sip:{host}:{port}"], SIPSAK_TIMEOUT)
    assert result.returncode == 0, (
        f"sipsak exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        f"\n--- switch stderr:\n{switch.stderr_text()[-3000:]}"
    )
    assert "200 OK" in result.stdout, result.stdout
