"""Run a scenario from ``sipp-scenarios/`` as a UAC against a running switch."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from tests.support.processes import Address, run_sipp

SCENARIOS: Final = Path(__file__).resolve().parents[2] / "sipp-scenarios"
SIPP_TIMEOUT: Final = 5.0
"""SIPp's own ``-timeout``: every scenario here is a handful of round trips on loopback."""

Transport = Literal["udp", "tcp"]
SIPP_TRANSPORT: Final[dict[Transport, str]] = {"udp": "u1", "tcp": "t1"}


@dataclass(frozen=True)
class SippRun:
    scenario: str
    transport: Transport
    result: subprocess.CompletedProcess[str]
    workdir: Path

    @property
    def passed(self) -> bool:
        return self.result.returncode == 0

    def _file(self, name: str, limit: int = 6000) -> str:
        path = self.workdir / name
        if not path.exists():
            return "(none)"
        text = path.read_text(errors="replace")
        return text if len(text) <= limit else "...\n" + text[-limit:]

    def report(self) -> str:
        """Everything needed to see why a run failed, for an assertion message."""
        return "\n".join(
            [
                f"sipp {self.scenario} over {self.transport}: exit {self.result.returncode}",
                f"command: {' '.join(self.result.args)}",
                f"--- errors (-trace_err):\n{self._file('errors.log')}",
                f"--- scenario <log> lines:\n{self._file('logs.log')}",
                f"--- messages (-trace_msg):\n{self._file('messages.log')}",
                f"--- stderr:\n{self.result.stderr[-2000:]}",
            ]
        )


def run_scenario(
    scenario: str,
    target: Address,
    transport: Transport,
    tmp_path: Path,
    *,
    timeout: float = SIPP_TIMEOUT,
    extra_args: Sequence[str] = (),
) -> SippRun:
    """One call of ``sipp-scenarios/<scenario>`` to ``target``, traced into its own folder."""
    path = SCENARIOS / scenario
    assert path.is_file(), f"no scenario {path}"
    workdir = Path(tempfile.mkdtemp(prefix=f"sipp-{path.stem}-{transport}-", dir=tmp_path))
    args = [
        str(target),
        "-sf",
        str(path),
        "-t",
        SIPP_TRANSPORT[transport],
        "-i",
        "127.0.0.1",
        "-trace_err",
        "-error_file",
        str(workdir / "errors.log"),
        "-trace_msg",
        "-message_file",
        str(workdir / "messages.log"),
        "-trace_logs",
        "-log_file",
        str(workdir / "logs.log"),
        *extra_args,
    ]
    result = run_sipp(args, timeout, cwd=workdir)
    return SippRun(scenario, transport, result, workdir)
