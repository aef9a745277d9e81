"""The processes of the call benchmarks: the system under test (b2bua or the sippy
B2BUA) pinned to one core, the SIPp caller and callee pinned to the other. Every process
is started here and stopped here (with :mod:`common`'s helpers), by PID (SIGTERM, then
SIGKILL), and every SIPp run is bounded by its own ``-timeout`` and by an outer deadline.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import common

from calls.setup import Inputs

SCENARIOS: Final = common.BENCH / "scenarios"
SIPPY_VENV: Final = common.BENCH / "build" / "venv-sippy"
SIPPY: Final = SIPPY_VENV / "bin" / "b2bua_radius"
SIPPY_VERSION: Final = "2.5.0"
READY_TIMEOUT: Final = 30.0

System = Literal["b2bua", "sippy"]


def check_tools(*, sippy: bool) -> None:
    """SIPp, taskset, the switch (and sippy's B2BUA when ``sippy``), two cores."""
    builds = [(common.SWITCH, "venv")]
    if sippy:
        builds.append((SIPPY, str(SIPPY_VENV.relative_to(common.ROOT))))
    common.check_tools(*builds, cores="the load on core 0, the system under test on core 1")


def systems_to_run(names: str) -> list[System]:
    """The systems a comma-separated ``--systems`` names (b2bua first), once the tools
    they need are checked."""
    systems: list[System] = [s for s in ("b2bua", "sippy") if s in names.split(",")]
    check_tools(sippy="sippy" in systems)
    return systems


def calls_result_head(benchmark: str, *, sippy: bool) -> dict[str, Any]:
    """The first fields of a call benchmark's result file: the machine, SIPp's version
    and (``sippy``) sippy's."""
    head = (
        common.result_head(benchmark) | common.machine_details() | {"sipp": common.sipp_version()}
    )
    return (head | {"sippy": SIPPY_VERSION}) if sippy else head


# -- systems under test


@dataclass
class Sut:
    """A started system under test: b2bua or the sippy B2BUA."""

    system: System
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    status: tuple[str, int] | None = None
    callee_port: int = 0  # sippy's static route

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        return common.process_cpu_seconds(self.pid)

    def get_status(self) -> dict[str, Any]:
        """b2bua's GET /status document."""
        if self.status is None:
            raise common.BenchError("no status server")
        url = f"http://{self.status[0]}:{self.status[1]}/status"
        with urllib.request.urlopen(url, timeout=10) as reply:
            document: dict[str, Any] = json.load(reply)
            return document

    def log_lines(self, limit: int = 8) -> list[str]:
        """The first lines of its log; for sippy only errors (its start-up banner is not
        news)."""
        if self.system == "sippy":
            return common.log_head(self.log, limit, _is_error)
        return common.log_head(self.log, limit)


def _is_error(line: str) -> bool:
    return "error" in line.lower() or "exception" in line.lower()


def start_b2bua(inputs: Inputs, workdir: Path, env: dict[str, str] | None = None) -> Sut:
    """b2bua on the generated config, pinned to SUT_CORE, with its status server;
    ``env``: its environment (None: this script's)."""
    switch = common.start_switch(
        inputs.config, workdir, workdir / "switch.log", listen="udp:127.0.0.1:0",
        extra=["--status-listen", "127.0.0.1:0"], ready_timeout=READY_TIMEOUT, env=env,
    )  # fmt: skip
    host, _, status_port = str(switch.ready["status"]).rpartition(":")
    return Sut("b2bua", switch.process, switch.port, switch.log, status=(host, int(status_port)))


def start_sippy(workdir: Path, callee_port: int) -> Sut:
    """sippy's B2BUA as PEERS.md runs it: no RADIUS (-u), so a static route (-s) to the
    callee; no accounting (-A 0); SIPLOG_BEND=none, or it logs every message."""
    port = common.free_udp_port()
    log = workdir / "sippy.log"
    command = [
        "taskset", "-c", str(common.SUT_CORE), str(SIPPY), "-f", "-u", "-A", "0",
        "-l", "127.0.0.1", "-p", str(port), "-s", f"127.0.0.1:{callee_port}",
    ]  # fmt: skip
    env = dict(os.environ, SIPLOG_BEND="none")
    process = common.popen(command, workdir, log, env)
    deadline = time.monotonic() + READY_TIMEOUT
    try:
        while not common.udp_port_bound(port):
            if process.poll() is not None:
                raise common.BenchError(f"sippy exited: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise common.BenchError(f"sippy did not bind {port} in {READY_TIMEOUT} s")
            time.sleep(0.05)
        time.sleep(0.3)
    except BaseException:
        common.stop(process)
        raise
    return Sut("sippy", process, port, log, callee_port=callee_port)


def start_sut(
    system: System, inputs: Inputs, workdir: Path, env: dict[str, str] | None = None
) -> Sut:
    """The system under test, in the new directory ``workdir``; ``env``: b2bua's
    environment (None: this script's)."""
    common.fresh_directory(workdir)
    if system == "b2bua":
        return start_b2bua(inputs, workdir, env)
    return start_sippy(workdir, common.free_udp_port())


# -- SIPp


@dataclass
class Sipp:
    """A started SIPp process and its own directory (its files carry its PID)."""

    process: subprocess.Popen[bytes]
    workdir: Path
    name: str
    deadline: float  # monotonic: killed by PID past this

    def file(self, suffix: str) -> Path | None:
        found = sorted(self.workdir.glob(f"*_{self.process.pid}_{suffix}"))
        return found[-1] if found else None


def sipp_command(target_port: int, *, port: int, extra: list[str], timeout_s: float) -> list[str]:
    """SIPp's command line (see :func:`common.sipp_command`), its error log bounded."""
    return common.sipp_command(
        target_port, port=port, extra=["-max_log_size", "2000000", *extra], timeout_s=timeout_s
    )


def start_sipp(
    name: str, workdir: Path, command: list[str], timeout_s: float,
    files: Mapping[str, bytes] | None = None,
) -> Sipp:  # fmt: skip
    """Start SIPp in the new directory ``workdir/name``, its command in command.txt;
    ``files``: written there first, by name (an ``rtp_stream`` file is read from SIPp's
    working directory)."""
    rundir = common.fresh_directory(workdir / name)
    for file_name, data in (files or {}).items():
        (rundir / file_name).write_bytes(data)
    (rundir / "command.txt").write_text(" ".join(command) + "\n")
    process = common.popen(command, rundir, rundir / "stdout.log")
    return Sipp(process, rundir, name, time.monotonic() + timeout_s + common.OUTER_GRACE)


def wait_sipp(sipp: Sipp) -> int | None:
    """Wait for SIPp to end (bounded by its deadline, then killed by PID)."""
    return common.wait_or_stop(sipp.process, sipp.deadline - time.monotonic())


def stop_all(sut: Sut, *sipps: Sipp | None) -> None:
    """Stop the SIPp processes (those started), then the system under test; by PID."""
    for sipp in sipps:
        if sipp is not None:
            common.stop(sipp.process, 3)
    common.stop(sut.process)


def start_callee(
    sut: Sut, inputs: Inputs, workdir: Path, stay_s: float, *,
    answer: str = "cps_uas_answer.xml", name: str = "callee", extra: Sequence[str] = (),
) -> Sipp:  # fmt: skip
    """The callee phones. For b2bua: K registered extensions in one SIPp (REGISTER with
    digest, then -oocsf takes the calls with the scenario ``answer``). For sippy: a plain
    UAS on its static route. ``name``: its directory; ``extra``: more SIPp options."""
    if sut.system == "b2bua":
        options = [
            "-sf", str(SCENARIOS / "cps_uas_register.xml"),
            "-oocsf", str(SCENARIOS / answer),
            "-inf", str(inputs.callees_csv), "-m", str(inputs.callees), "-r", "200",
            "-l", str(inputs.callees), "-d", str(int(stay_s * 1000)),
        ]  # fmt: skip
        port = common.free_udp_port()
    else:
        options = ["-sf", str(SCENARIOS / answer)]
        port = sut.callee_port
    command = sipp_command(sut.port, port=port, extra=[*options, *extra], timeout_s=stay_s + 10)
    return start_sipp(name, workdir, command, stay_s + 10)


def wait_registered(sut: Sut, callee: Sipp, count: int, timeout: float = 30.0) -> None:
    """Wait until ``count`` callees have registered with b2bua (sippy: until the UAS
    has bound its port)."""
    if sut.system != "b2bua":
        time.sleep(0.5)  # let the UAS bind
        return
    deadline = time.monotonic() + timeout
    while True:
        state = sut.get_status()
        registered = sum(1 for e in state["extensions"].values() if e["registered"])
        if registered >= count:
            return
        if callee.process.poll() is not None or time.monotonic() > deadline:
            raise common.BenchError(f"{registered} of {count} callees registered")
        time.sleep(0.2)


def wait_answered(sut: Sut, caller: Sipp, calls: int, timeout: float) -> list[dict[str, Any]]:
    """Wait until the caller has ACKed ``calls`` calls and (b2bua) the switch lists them
    answered; return the answered calls of its /status (sippy: none)."""
    deadline = time.monotonic() + timeout
    while established_calls(caller) < calls:
        if caller.process.poll() is not None or time.monotonic() > deadline:
            raise common.BenchError(
                f"{established_calls(caller)} of {calls} calls set up; caller errors: "
                f"{error_lines(caller)}; {sut.system}: {sut.log_lines()}"
            )
        time.sleep(0.25)
    if sut.system != "b2bua":
        return []
    while True:
        listed = sut.get_status()["calls"]["list"]
        answered = [c for c in listed if c["state"] == "answered"]
        if len(answered) >= calls:
            return answered
        if time.monotonic() > deadline:
            raise common.BenchError(f"the switch lists {len(answered)} of {calls} calls answered")
        time.sleep(0.25)


def caller_command(
    sut: Sut, inputs: Inputs, *, rate: float, calls: int, limit: int, hold_ms: int,
    timeout_s: float, counts: bool = False, scenario: str = "cps_uac.xml",
    extra: Sequence[str] = (),
) -> list[str]:  # fmt: skip
    """The caller: ``calls`` calls at ``rate``/s to the numbers of ``inputs.numbers_csv``
    in turn, at most ``limit`` at once, each held ``hold_ms``; ``counts``: with the
    -trace_counts file of :func:`established_calls`; ``scenario``: its file in
    scenarios/; ``extra``: more SIPp options."""
    options = [
        "-sf", str(SCENARIOS / scenario), "-inf", str(inputs.numbers_csv),
        "-r", f"{rate:g}", "-rp", "1000", "-l", str(limit), "-m", str(calls),
        "-d", str(hold_ms), "-trace_rtt",
    ]  # fmt: skip
    if counts:
        options.append("-trace_counts")
    return sipp_command(
        sut.port, port=common.free_udp_port(), extra=[*options, *extra], timeout_s=timeout_s
    )


# -- SIPp's files


@dataclass(frozen=True)
class CallerTotals:
    created: int
    successful: int
    failed: int
    retransmissions: int
    unexpected: int
    failure_kinds: dict[str, int]
    achieved: float  # calls/s from the first to the last 200 OK (see rtt_figures)
    setup_ms: dict[str, float] = field(default_factory=dict)  # INVITE -> 200, percentiles


def rtt_figures(path: Path | None) -> tuple[float, dict[str, float]]:
    """From SIPp's -trace_rtt file (one line per 200 OK: ms since start; INVITE->200 ms):
    the achieved rate, (n - 1) / (last - first), and the setup time percentiles.

    SIPp's own CallRate(C) divides by the run's whole length, hold time included, so
    it understates the rate of calls held for a second (about 10% on a 10 s run)."""
    if path is None or not path.exists():
        return 0.0, {}
    times: list[float] = []
    setup: list[float] = []
    for line in path.read_text().splitlines()[1:]:
        parts = line.split(";")
        if len(parts) >= 2 and parts[0]:
            times.append(float(parts[0]))
            setup.append(float(parts[1]))
    if len(times) < 2:
        return 0.0, {}
    span = (max(times) - min(times)) / 1000
    setup.sort()

    def pct(q: float) -> float:
        return setup[min(len(setup) - 1, int(q * (len(setup) - 1) + 0.5))]

    figures = {
        "p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": setup[-1],
        "mean": round(statistics.fmean(setup), 1),
    }  # fmt: skip
    return (len(times) - 1) / span if span > 0 else 0.0, figures


def caller_totals(sipp: Sipp) -> CallerTotals:
    """The caller's totals from its statistics file and its -trace_rtt file."""
    values = common.last_stats(sipp.file(".csv"))

    def count(name: str) -> int:
        text = values.get(f"{name}(C)", "0") or "0"
        return int(text) if text.strip().isdigit() else 0

    achieved, setup = rtt_figures(sipp.file("rtt.csv"))
    return CallerTotals(
        created=count("OutgoingCall"),
        successful=count("SuccessfulCall"),
        failed=count("FailedCall"),
        retransmissions=count("Retransmissions"),
        unexpected=count("FailedUnexpectedMessage"),
        failure_kinds=common.failure_kinds(values),
        achieved=round(achieved, 1),
        setup_ms=setup,
    )


def established_calls(sipp: Sipp) -> int:
    """Calls the caller has ACKed and not yet hung up (its -trace_counts file)."""
    path = sipp.file("counts.csv")
    if path is None or not path.exists():
        return 0
    lines = [x for x in path.read_text().splitlines() if x.strip()]
    if len(lines) < 2:
        return 0
    header = lines[0].split(";")
    last = lines[-1].split(";")
    values = dict(zip(header, last, strict=False))
    acked = sum(int(v) for k, v in values.items() if k.endswith("_ACK_Sent") and v.isdigit())
    byes = sum(int(v) for k, v in values.items() if k.endswith("_BYE_Sent") and v.isdigit())
    return acked - byes


def error_lines(sipp: Sipp, limit: int = 6) -> list[str]:
    """The first lines of SIPp's -trace_err file, without the notes it writes for every
    out-of-call INVITE the callee scenario takes (that is how calls reach it)."""
    path = sipp.file("errors.log")
    if path is None:
        return []
    text = path.read_text(errors="replace")
    events = [e.strip() for e in text.split("\n\n") if e.strip()]
    events = [
        e.replace("\n", " | ")[:600]
        for e in events
        if "using the out-of-call scenario" not in e and e != "The following events occurred"
    ]
    return events[:limit]
