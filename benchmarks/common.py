"""What every benchmark script shares (bench_register.py, bench_cps.py, bench_relay.py,
bench_memory.py, bench_parse.py, bench_hunt.py, bench_voicemail.py): the entry point that
turns SIGTERM and set-up errors into exit codes, processes started and stopped by PID,
free UDP ports, CPU and memory readings from /proc, the switch started pinned from a
generated config, the SIPp command line and statistics file, and the result files.

The machine has two cores: the system under test runs pinned to SUT_CORE, the load
(SIPp, the RTP generator) to LOAD_CORE.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Final, NoReturn, Protocol

ROOT: Final = Path(__file__).resolve().parent.parent
BENCH: Final = ROOT / "benchmarks"
RESULTS: Final = BENCH / "results"
SWITCH: Final = ROOT / ".venv" / "bin" / "b2bua"
PYTHON: Final = ROOT / ".venv" / "bin" / "python"

LOAD_CORE: Final = 0
SUT_CORE: Final = 1
STOP_TIMEOUT: Final = 10.0  # SIGTERM, then SIGKILL after this
OUTER_GRACE: Final = 15.0  # past SIPp's own -timeout, it is killed by PID
QUIET_CORES: Final = 0.25  # "quiet": less than a quarter of a core busy before a run
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")


# -- errors and the entry point


class BenchError(RuntimeError):
    """The bench itself could not run (a tool missing, a process did not start)."""


class TerminatedError(Exception):
    """SIGTERM: unwinds through the finally blocks that stop the processes."""


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    """The SIGTERM handler: raise :class:`TerminatedError` wherever the script is."""
    raise TerminatedError


def run_main(main: Callable[[], int], name: str) -> NoReturn:
    """Run a bench's ``main`` and exit with its code: 143 after SIGTERM (every process
    stopped on the way out), 2 when the bench could not run (:class:`BenchError`)."""
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        code = main()
    except TerminatedError:
        print("terminated: every process stopped", file=sys.stderr)
        code = 143
    except BenchError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        code = 2
    raise SystemExit(code)


def argument_parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser described by the first paragraph of the script's docstring."""
    return argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)


@contextlib.contextmanager
def work_directory(prefix: str, *, keep: bool) -> Iterator[Path]:
    """A new temporary directory, removed on the way out unless ``keep``."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield workdir
    finally:
        if keep:
            print(f"work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def fresh_directory(path: Path) -> Path:
    """``path`` as a new empty directory (what was there is removed)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


# -- ports


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing holds right now."""
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


# -- processes: every one is started here and stopped here, by PID


def popen(
    command: Sequence[str], cwd: Path, log: Path | None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``command`` in ``cwd`` with no input, its output in the new file ``log``
    (discarded when ``log`` is None)."""
    if log is None:
        return subprocess.Popen(
            command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
    with log.open("wb") as out:
        return subprocess.Popen(
            command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=env,
        )  # fmt: skip


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


def wait_or_stop(process: subprocess.Popen[bytes], timeout: float) -> int | None:
    """Wait up to ``timeout`` s for ``process`` to end; past that (or when interrupted)
    stop it by PID. Returns its exit code, None when it had to be stopped."""
    try:
        return process.wait(max(0.0, timeout))
    except subprocess.TimeoutExpired:
        return None
    finally:
        if process.poll() is None:
            stop(process, 2)


def log_head(path: Path, limit: int, keep: Callable[[str], bool] | None = None) -> list[str]:
    """The first ``limit`` non-blank lines of a log (those ``keep`` accepts), then a line
    that says how many more there are."""
    lines = [x for x in path.read_text(errors="replace").splitlines() if x.strip()]
    if keep is not None:
        lines = [x for x in lines if keep(x)]
    return lines[:limit] + ([f"... {len(lines) - limit} more lines"] if len(lines) > limit else [])


# -- readings from /proc (Linux)


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (fields 14 and 15 of /proc/PID/stat; for a thread-group
    leader they cover every thread of the process)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def core_busy_seconds() -> dict[int, float]:
    """Busy (non-idle, non-iowait) seconds of each core since boot, from /proc/stat."""
    busy: dict[int, float] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        ticks = [int(v) for v in values]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
        busy[int(name[3:])] = (sum(ticks[:8]) - idle) / CLOCK_TICKS
    return busy


def children_cpu_seconds() -> float:
    """User + system seconds of this script's children that have been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def vm_rss_kib(pid: int) -> int:
    """The resident set size of ``pid`` (VmRSS of /proc/PID/status), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for {pid}")


def open_fds(pid: int) -> int:
    """How many file descriptors ``pid`` holds open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


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


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded as the result files keep them."""
    return [round(x, 2) for x in os.getloadavg()]


@dataclass(frozen=True, slots=True)
class CpuUsage:
    """Where the CPU went during a timed run, rounded as the result files keep it."""

    sut_cpu_s: float  # the system under test (0 when it died during the run)
    sut_cpu_share: float  # its CPU seconds / wall seconds (0-1: one core)
    sipp_cpu_s: float  # the children reaped during the run (SIPp), and the companions
    other_busy_s: float  # busy seconds on both cores that were neither of those
    other_on_sut_core_s: float  # of which on the system under test's core
    wall_s: float
    sut_exit: int | None  # the system under test's exit code if it died


def alive_cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    """utime + stime of a child not yet reaped (0 once it has been waited for)."""
    try:
        return process_cpu_seconds(process.pid)
    except (OSError, IndexError, ValueError):
        return 0.0


class CpuWindow:
    """CPU readings at the start of a timed run; :meth:`close` takes them again at its
    end and returns the difference. ``companions``: load processes (SIPp) that run
    through the window without being reaped in it; their CPU counts as SIPp's, not as
    other processes'."""

    def __init__(
        self, process: subprocess.Popen[bytes], companions: Sequence[subprocess.Popen[bytes]] = ()
    ) -> None:
        self.process = process
        self.companions = list(companions)
        self.companions_cpu = sum(alive_cpu_seconds(c) for c in self.companions)
        self.sut_cpu = process_cpu_seconds(process.pid)
        self.busy = core_busy_seconds()
        self.children = children_cpu_seconds()
        self.started = time.monotonic()

    def close(self) -> CpuUsage:
        """Read again (before the system under test is stopped)."""
        wall = time.monotonic() - self.started
        busy_now = core_busy_seconds()
        companions = sum(alive_cpu_seconds(c) for c in self.companions) - self.companions_cpu
        sipp = children_cpu_seconds() - self.children + max(0.0, companions)
        died = self.process.poll()
        sut = 0.0 if died is not None else process_cpu_seconds(self.process.pid) - self.sut_cpu
        busy = {core: busy_now[core] - self.busy[core] for core in busy_now}
        return CpuUsage(
            sut_cpu_s=round(sut, 2),
            sut_cpu_share=round(sut / wall, 3),
            sipp_cpu_s=round(sipp, 2),
            other_busy_s=round(max(0.0, sum(busy.values()) - sut - sipp), 2),
            other_on_sut_core_s=round(max(0.0, busy.get(SUT_CORE, 0.0) - sut), 2),
            wall_s=round(wall, 2),
            sut_exit=died,
        )


# -- the switch


def config_head(generated_by: str, data_dir: Path) -> list[str]:
    """The first lines of a generated switch config: the note, a UDP listen address (the
    command line replaces it), the data directory and JSON logs of warnings only."""
    return [
        f"# Generated by {generated_by}: do not edit.",
        "[server]",
        'listen = ["udp:127.0.0.1:0"]',
        f'data_dir = "{data_dir.as_posix()}"',
        "[log]",
        'level = "warning"',
        'format = "json"',
    ]


def password_for(number: int) -> str:
    """The password of a generated extension (the config wants at least 8 characters)."""
    return f"bench-pw-{number}"


def authentication_row(number: str, password: str) -> str:
    """A SIPp injection row: the number, then the ``[authentication ...]`` keyword."""
    return f"{number};[authentication username={number} password={password}]"


def injection_text(rows: Iterable[str]) -> str:
    """A SIPp injection file whose rows are taken in turn."""
    return "SEQUENTIAL\n" + "\n".join(rows) + "\n"


@dataclass(frozen=True, slots=True)
class Switch:
    """A started switch (b2bua)."""

    process: subprocess.Popen[bytes]
    port: int  # its first listen address's
    ready: dict[str, Any]  # its ready file
    log: Path
    data_dir: Path


def start_switch(
    config: Path, workdir: Path, log: Path, *, listen: str, extra: Sequence[str] = (),
    ready_timeout: float, env: dict[str, str] | None = None,
) -> Switch:  # fmt: skip
    """Start the switch pinned to SUT_CORE with a new data directory in ``workdir`` and
    wait for its ready file; a switch that does not get ready is stopped by PID.
    ``env``: its environment (None: this script's)."""
    data_dir = fresh_directory(workdir / "data")
    ready = workdir / "ready.json"
    ready.unlink(missing_ok=True)
    command = [
        "taskset", "-c", str(SUT_CORE), str(SWITCH), "run", "--config", str(config),
        "--listen", listen, *extra,
        "--data-dir", str(data_dir), "--ready-file", str(ready), "--log-format", "json",
    ]  # fmt: skip
    process = popen(command, workdir, log, env)
    deadline = time.monotonic() + ready_timeout
    try:
        while not ready.exists():
            if process.poll() is not None:
                raise BenchError(
                    f"the switch exited ({process.returncode}): {log.read_text()[-2000:]}"
                )
            if time.monotonic() > deadline:
                raise BenchError(f"no ready file after {ready_timeout} s")
            time.sleep(0.05)
        info: dict[str, Any] = json.loads(ready.read_text())
        port = int(str(info["listen"][0]).rsplit(":", 1)[1])
        if os.sched_getaffinity(process.pid) != {SUT_CORE}:
            raise BenchError(f"the switch is not pinned to core {SUT_CORE}")
    except BaseException:
        stop(process)
        raise
    return Switch(process, port, info, log, data_dir)


# -- SIPp


def check_tools(*builds: tuple[Path, str], cores: str) -> None:
    """SIPp and taskset on the PATH, each of ``builds`` (a path, the make target that
    makes it) there, and two cores to pin to (``cores`` says what runs where)."""
    for tool in ("sipp", "taskset"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} not found (make apt installs sip-tester)")
    for path, target in builds:
        if not path.exists():
            raise BenchError(f"{path} not found (make {target})")
    if len(os.sched_getaffinity(0)) < 2:
        raise BenchError(f"needs 2 cores: {cores}")


def sipp_version() -> str:
    """SIPp's version as ``sipp -v`` prints it, or "unknown"."""
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


def sipp_command(
    target_port: int, *, port: int, extra: Sequence[str], timeout_s: float
) -> list[str]:
    """SIPp pinned to LOAD_CORE, sending to 127.0.0.1:``target_port`` from ``port``, on
    free media and control ports, bounded by its own ``-timeout``, writing its statistics
    and errors; then ``extra`` (the scenario, the rate, ...)."""
    return [
        "taskset", "-c", str(LOAD_CORE), "sipp", f"127.0.0.1:{target_port}",
        "-i", "127.0.0.1", "-p", str(port), "-mp", str(free_udp_pair()),
        "-cp", str(free_udp_port()), "-nd", "-nostdin",
        "-timeout", f"{int(timeout_s)}s", "-timeout_error",
        "-trace_stat", "-fd", "1", "-trace_err",
        *extra,
    ]  # fmt: skip


def last_stats(path: Path | None) -> dict[str, str]:
    """The last line of SIPp's ``-trace_stat`` file by column ({} when there is none)."""
    if path is None or not path.exists():
        return {}
    with path.open(newline="") as handle:
        rows = [row for row in csv.reader(handle, delimiter=";") if row]
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1], strict=False))


def failure_kinds(values: dict[str, str]) -> dict[str, int]:
    """The non-zero ``Failed...(C)`` counters of a statistics line, but FailedCall."""
    return {
        name[: -len("(C)")]: int(value)
        for name, value in values.items()
        if name.startswith("Failed") and name.endswith("(C)") and name != "FailedCall(C)"
        if value.strip().isdigit() and int(value) > 0
    }


# -- verdicts and results


class Judged(Protocol):
    """A run with a verdict: passed, the faults' names, the same with the figures."""

    passed: bool
    faults: list[str]
    why_not: str


def set_verdict(run: Judged, faults: dict[str, str]) -> None:
    """``faults``: name -> what failed, with the figures; none means the run passed."""
    run.passed = not faults
    run.faults = list(faults)
    run.why_not = "; ".join(faults.values())


Check = tuple[bool, str, str]  # failed?, the fault's name, what failed with the figures


def rate_check(achieved: float, target: int, min_ratio: float) -> Check:
    """The achieved rate is at least ``min_ratio`` of the target."""
    return (
        achieved < min_ratio * target,
        f"rate < {min_ratio:.0%}",
        f"rate {achieved:.0f} < {min_ratio:.0%} of {target}",
    )


def judge_checks(run: Judged, checks: Iterable[Check], sipp_exit: int | None) -> None:
    """Set ``run``'s verdict from the ``checks`` that failed, in order; SIPp's exit code is
    a fault only when nothing else explains it."""
    faults = {name: text for failed, name, text in checks if failed}
    if sipp_exit != 0 and not faults:
        faults["SIPp exit"] = f"SIPp exit code {sipp_exit}"
    set_verdict(run, faults)


def majority(runs: Sequence[Judged]) -> bool:
    """Whether most of ``runs`` passed."""
    return sum(r.passed for r in runs) * 2 > len(runs)


def fault_counts(runs: Sequence[Judged]) -> dict[str, int]:
    """How many of ``runs`` each fault failed, by name."""
    return {
        fault: sum(fault in r.faults for r in runs)
        for fault in sorted({f for r in runs for f in r.faults})
    }


def result_cell(summary: dict[str, Any]) -> str:
    """A table's last cell: pass or fail, and which faults failed how many runs."""
    faults = ", ".join(f"{f} ({n}/{summary['runs']})" for f, n in summary["faults"].items())
    return ("pass" if summary["passed"] else "fail") + (f": {faults}" if faults else "")


def table_head(*columns: str) -> list[str]:
    """The header and separator lines of a Markdown table."""
    return ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0 to 1) of the sorted values ``ordered``, by nearest rank."""
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def ratio(numerator: float | None, denominator: float | None, digits: int) -> float | None:
    """``numerator / denominator`` rounded to ``digits``; None when either is missing or 0."""
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, digits)


def result_head(benchmark: str) -> dict[str, Any]:
    """The first fields of a result file: the benchmark, the date (UTC), Python and the
    machine's architecture."""
    return {
        "benchmark": benchmark,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def machine_details() -> dict[str, Any]:
    """The kernel, the cores, the open file limit and the CPU model."""
    info: dict[str, Any] = {
        "kernel": platform.release(),
        "cores": os.cpu_count(),
        "open_file_limit": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    return info


def write_result(benchmark: str, result: dict[str, Any]) -> Path:
    """Write ``results/BENCHMARK.json``."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{benchmark}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


CPS_RESULT: Final = RESULTS / "cps.json"


def best_cps_rate() -> int:
    """The switch's highest passing calls/s in ``results/cps.json`` (``make bench-cps``),
    the default load of ``make profile`` and (halved) of ``make soak``."""
    try:
        best = json.loads(CPS_RESULT.read_text())["best"]["b2bua"]["highest_passing_rate"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BenchError(
            f"no measured maximum in {CPS_RESULT} ({exc}): run make bench-cps or pass --rate"
        ) from exc
    return int(best)
