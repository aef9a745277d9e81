"""The processes of the call benchmarks: the system under test (b2bua or the sippy
B2BUA) pinned to one core, the SIPp caller and callee pinned to the other. Every process
is started here and stopped here, by PID (SIGTERM, then SIGKILL), and every SIPp run is
bounded by its own ``-timeout`` and by an outer deadline.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Final, Literal

from register.procfs import core_busy_seconds, process_cpu_seconds

from calls.setup import Inputs

ROOT: Final = Path(__file__).resolve().parent.parent.parent
BENCH: Final = ROOT / "benchmarks"
SCENARIOS: Final = BENCH / "scenarios"
SWITCH: Final = ROOT / ".venv" / "bin" / "b2bua"
PYTHON: Final = ROOT / ".venv" / "bin" / "python"
SIPPY_VENV: Final = BENCH / "build" / "venv-sippy"
SIPPY: Final = SIPPY_VENV / "bin" / "b2bua_radius"
SIPPY_VERSION: Final = "2.5.0"

SUT_CORE: Final = 1
LOAD_CORE: Final = 0
READY_TIMEOUT: Final = 30.0
STOP_TIMEOUT: Final = 10.0
QUIET_CORES: Final = 0.25

System = Literal["b2bua", "sippy"]


class BenchError(RuntimeError):
    """The bench itself could not run (a tool missing, a process did not start)."""


class TerminatedError(Exception):
    """SIGTERM: unwinds through the finally blocks that stop the processes."""


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise TerminatedError


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_udp_pair() -> int:
    """P with P and P+2 free (SIPp's -mp binds both)."""
    for _ in range(50):
        port = free_udp_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("127.0.0.1", port + 2))
            except OSError:
                continue
            return port
    raise BenchError("no free UDP port pair")


def udp_port_bound(port: int) -> bool:
    """Whether some process holds ``port`` (our own bind attempt fails)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def stop(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> int | None:
    """SIGTERM, then SIGKILL after ``timeout``; by PID. Returns the exit code."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            return process.wait(5)
    return process.returncode


def popen(command: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> Any:
    with log.open("ab") as out:
        return subprocess.Popen(
            command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=env,
        )  # fmt: skip


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# -- the machine


def busy_cores(seconds: float = 1.0) -> float:
    """How many cores' worth of work ran on the machine over ``seconds`` (0 to 2 here)."""
    before = core_busy_seconds()
    time.sleep(seconds)
    after = core_busy_seconds()
    return sum(after.values()) - sum(before.values())


def wait_for_quiet(max_wait: float) -> float:
    """Other engineers' work shares this 2-core machine: before a timed run, wait (up to
    ``max_wait`` s) until less than QUIET_CORES of a core is busy. Returns the last sample."""
    deadline = time.monotonic() + max_wait
    while True:
        busy = busy_cores()
        if busy < QUIET_CORES or time.monotonic() >= deadline:
            if busy >= QUIET_CORES:
                print(f"  (machine busy: {busy:.2f} cores; measuring anyway)", file=sys.stderr)
            return round(busy, 2)


def machine_info() -> dict[str, Any]:
    import platform  # noqa: PLC0415

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "kernel": platform.release(),
        "cores": os.cpu_count(),
        "open_file_limit": [int(x) for x in _rlimit_nofile()],
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    return info


def _rlimit_nofile() -> tuple[int, int]:
    import resource  # noqa: PLC0415

    return resource.getrlimit(resource.RLIMIT_NOFILE)


def sipp_version() -> str:
    try:
        out = subprocess.run(
            ["sipp", "-v"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    for line in (out.stdout + out.stderr).splitlines():
        if "SIPp v" in line:
            return line.strip().split(" ")[1].rstrip(".,-")
    return "unknown"


def check_tools(*, sippy: bool) -> None:
    for tool in ("sipp", "taskset"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} not found (make apt installs sip-tester)")
    if not SWITCH.exists():
        raise BenchError(f"{SWITCH} not found (make venv)")
    if sippy and not SIPPY.exists():
        raise BenchError(f"{SIPPY} not found (make {SIPPY_VENV.relative_to(ROOT)})")
    if len(os.sched_getaffinity(0)) < 2:
        raise BenchError("needs 2 cores: the load on core 0, the system under test on core 1")


# -- systems under test


@dataclass
class Sut:
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
        return process_cpu_seconds(self.pid)

    def get_status(self) -> dict[str, Any]:
        if self.status is None:
            raise BenchError("no status server")
        url = f"http://{self.status[0]}:{self.status[1]}/status"
        with urllib.request.urlopen(url, timeout=10) as reply:
            document: dict[str, Any] = json.load(reply)
            return document

    def log_lines(self, limit: int = 8) -> list[str]:
        lines = [x for x in self.log.read_text(errors="replace").splitlines() if x.strip()]
        if self.system == "sippy":  # its start-up banner is not news
            lines = [x for x in lines if "error" in x.lower() or "exception" in x.lower()]
        return lines[:limit] + (
            [f"... {len(lines) - limit} more lines"] if len(lines) > limit else []
        )


def start_b2bua(inputs: Inputs, workdir: Path) -> Sut:
    data_dir = workdir / "data"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir()
    ready = workdir / "ready.json"
    ready.unlink(missing_ok=True)
    log = workdir / "switch.log"
    command = [
        "taskset", "-c", str(SUT_CORE), str(SWITCH), "run", "--config", str(inputs.config),
        "--listen", "udp:127.0.0.1:0", "--status-listen", "127.0.0.1:0",
        "--data-dir", str(data_dir), "--ready-file", str(ready), "--log-format", "json",
    ]  # fmt: skip
    process: subprocess.Popen[bytes] = popen(command, workdir, log)
    deadline = time.monotonic() + READY_TIMEOUT
    try:
        while not ready.exists():
            if process.poll() is not None:
                raise BenchError(f"the switch exited: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise BenchError(f"no ready file after {READY_TIMEOUT} s")
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        port = int(str(info["listen"][0]).rsplit(":", 1)[1])
        host, _, status_port = str(info["status"]).rpartition(":")
        if os.sched_getaffinity(process.pid) != {SUT_CORE}:
            raise BenchError(f"the switch is not pinned to core {SUT_CORE}")
    except BaseException:
        stop(process)
        raise
    return Sut("b2bua", process, port, log, status=(host, int(status_port)))


def start_sippy(workdir: Path, callee_port: int) -> Sut:
    """sippy's B2BUA as PEERS.md runs it: no RADIUS (-u), so a static route (-s) to the
    callee; no accounting (-A 0); SIPLOG_BEND=none, or it logs every message."""
    port = free_udp_port()
    log = workdir / "sippy.log"
    command = [
        "taskset", "-c", str(SUT_CORE), str(SIPPY), "-f", "-u", "-A", "0",
        "-l", "127.0.0.1", "-p", str(port), "-s", f"127.0.0.1:{callee_port}",
    ]  # fmt: skip
    env = dict(os.environ, SIPLOG_BEND="none")
    process: subprocess.Popen[bytes] = popen(command, workdir, log, env)
    deadline = time.monotonic() + READY_TIMEOUT
    try:
        while not udp_port_bound(port):
            if process.poll() is not None:
                raise BenchError(f"sippy exited: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise BenchError(f"sippy did not bind {port} in {READY_TIMEOUT} s")
            time.sleep(0.05)
        time.sleep(0.3)
    except BaseException:
        stop(process)
        raise
    return Sut("sippy", process, port, log, callee_port=callee_port)


# -- SIPp


@dataclass
class Sipp:
    process: subprocess.Popen[bytes]
    workdir: Path
    name: str
    deadline: float  # monotonic: killed by PID past this

    def file(self, suffix: str) -> Path | None:
        found = sorted(self.workdir.glob(f"*_{self.process.pid}_{suffix}"))
        return found[-1] if found else None


def sipp_command(target_port: int, *, port: int, extra: list[str], timeout_s: float) -> list[str]:
    return [
        "taskset", "-c", str(LOAD_CORE), "sipp", f"127.0.0.1:{target_port}",
        "-i", "127.0.0.1", "-p", str(port), "-mp", str(free_udp_pair()),
        "-cp", str(free_udp_port()), "-nd", "-nostdin",
        "-timeout", f"{int(timeout_s)}s", "-timeout_error",
        "-trace_stat", "-fd", "1", "-trace_err", "-max_log_size", "2000000",
        *extra,
    ]  # fmt: skip


def start_sipp(name: str, workdir: Path, command: list[str], timeout_s: float) -> Sipp:
    rundir = workdir / name
    if rundir.exists():
        shutil.rmtree(rundir)
    rundir.mkdir(parents=True)
    (rundir / "command.txt").write_text(" ".join(command) + "\n")
    process: subprocess.Popen[bytes] = popen(command, rundir, rundir / "stdout.log")
    return Sipp(process, rundir, name, time.monotonic() + timeout_s + 15)


def wait_sipp(sipp: Sipp) -> int | None:
    """Wait for SIPp to end (bounded by its deadline, then killed by PID)."""
    try:
        return sipp.process.wait(max(0.0, sipp.deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        stop(sipp.process, 2)
        return None


def start_callee(sut: Sut, inputs: Inputs, workdir: Path, stay_s: float) -> Sipp:
    """The callee phones. For b2bua: K registered extensions in one SIPp (REGISTER with
    digest, then -oocsf answers the calls). For sippy: a plain UAS on its static route."""
    if sut.system == "b2bua":
        extra = [
            "-sf", str(SCENARIOS / "cps_uas_register.xml"),
            "-oocsf", str(SCENARIOS / "cps_uas_answer.xml"),
            "-inf", str(inputs.callees_csv), "-m", str(inputs.callees), "-r", "200",
            "-l", str(inputs.callees), "-d", str(int(stay_s * 1000)),
        ]  # fmt: skip
        port = free_udp_port()
    else:
        extra = ["-sf", str(SCENARIOS / "cps_uas_answer.xml")]
        port = sut.callee_port
    command = sipp_command(sut.port, port=port, extra=extra, timeout_s=stay_s + 10)
    return start_sipp("callee", workdir, command, stay_s + 10)


def wait_registered(sut: Sut, callee: Sipp, count: int, timeout: float = 30.0) -> None:
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
            raise BenchError(f"{registered} of {count} callees registered")
        time.sleep(0.2)


def caller_command(
    sut: Sut, inputs: Inputs, *, rate: float, calls: int, limit: int, hold_ms: int,
    timeout_s: float, counts: bool = False,
) -> list[str]:  # fmt: skip
    extra = [
        "-sf", str(SCENARIOS / "cps_uac.xml"), "-inf", str(inputs.numbers_csv),
        "-r", f"{rate:g}", "-rp", "1000", "-l", str(limit), "-m", str(calls),
        "-d", str(hold_ms), "-trace_rtt",
    ]  # fmt: skip
    if counts:
        extra.append("-trace_counts")
    return sipp_command(sut.port, port=free_udp_port(), extra=extra, timeout_s=timeout_s)


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


def last_stats(path: Path | None) -> dict[str, str]:
    if path is None or not path.exists():
        return {}
    with path.open(newline="") as handle:
        rows = [row for row in csv.reader(handle, delimiter=";") if row]
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1], strict=False))


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
    values = last_stats(sipp.file(".csv"))

    def count(name: str) -> int:
        text = values.get(f"{name}(C)", "0") or "0"
        return int(text) if text.strip().isdigit() else 0

    kinds = {
        name[: -len("(C)")]: int(value)
        for name, value in values.items()
        if name.startswith("Failed") and name.endswith("(C)") and name != "FailedCall(C)"
        if value.strip().isdigit() and int(value) > 0
    }
    achieved, setup = rtt_figures(sipp.file("rtt.csv"))
    return CallerTotals(
        created=count("OutgoingCall"),
        successful=count("SuccessfulCall"),
        failed=count("FailedCall"),
        retransmissions=count("Retransmissions"),
        unexpected=count("FailedUnexpectedMessage"),
        failure_kinds=kinds,
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
