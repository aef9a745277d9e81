"""Registration storm: how many REGISTER-with-digest registrations per second the switch
takes with no failures, on one core, driven by SIPp on the other.

One registration is SIPp's ``sipp-scenarios/uac_register_digest.xml``: REGISTER, 401 with
the challenges, REGISTER with MD5 credentials, 200 (two REGISTER transactions). N
generated extensions (2,000 by default) register in turn from an injection file, each
several times, so the switch verifies digests, replaces bindings and persists them.

For each target rate the switch starts afresh (new data directory), pinned to core 1
(``taskset -c 1``), and SIPp runs pinned to core 0 for ``rate * 10`` registrations. A rate
passes when every registration succeeds, the achieved rate is at least 97% of the target
and SIPp's retransmissions stay under 1% of the REGISTERs it sent. The switch's CPU is
read from /proc/PID/stat (all threads) just before and just after SIPp's run. The top
rates are then run again, interleaved, and the median of three is kept.

Writes benchmarks/results/register.json and prints a Markdown table.
Run: `make bench-register` (or `python benchmarks/bench_register.py [--quick]`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parent))

from register.generate import make_users, write_inputs
from register.procfs import core_busy_seconds, process_cpu_seconds
from register.sipp_stats import SippTotals, read_totals

ROOT: Final = Path(__file__).resolve().parent.parent
RESULTS: Final = Path(__file__).resolve().parent / "results"
SCENARIO: Final = ROOT / "sipp-scenarios" / "uac_register_digest.xml"
SWITCH: Final = ROOT / ".venv" / "bin" / "b2bua"

RATES: Final = (300, 500, 700, 900, 1100, 1300)
SECONDS_PER_RUN: Final = 10  # -m = rate * this
STEP_UP: Final = 200  # when the top rate passes, keep climbing by this much
REFINE_STEP: Final = 100  # then halve the pass/fail gap down to this
MAX_RATE: Final = 4000
QUICK_RATE: Final = 100
QUICK_USERS: Final = 200

MIN_RATE_RATIO: Final = 0.97
MAX_RETRANS_RATIO: Final = 0.01
TRANSACTIONS_PER_REGISTRATION: Final = 2
TARGET_TRANSACTIONS: Final = 3000  # the issue: ">= 3,000 REGISTER-with-digest tx/s"

SWITCH_CORE: Final = 1
SIPP_CORE: Final = 0
READY_TIMEOUT: Final = 20.0
STOP_TIMEOUT: Final = 10.0
SIPP_GRACE: Final = 20.0  # SIPp's -timeout beyond the run's nominal length
OUTER_GRACE: Final = 15.0  # past SIPp's own -timeout, it is killed by PID
QUIET_CORES: Final = 0.25  # "quiet": less than a quarter of a core busy before a run


class BenchError(RuntimeError):
    """The bench itself could not run (a tool missing, the switch did not start)."""


@dataclass
class Run:
    target: int
    registrations: int
    achieved: float
    successful: int
    failed: int
    retransmissions: int
    sipp_exit: int | None
    switch_cpu_s: float
    sipp_cpu_s: float
    switch_cpu_share: float  # switch CPU seconds / wall seconds of the run (0-1: one core)
    other_busy_s: float  # busy seconds on both cores that were neither SIPp nor the switch
    other_on_switch_core_s: float  # of which on the switch's core
    busy_before: float  # cores busy (0-2) in the second before the run (other work)
    wall_s: float
    bindings_stored: int | None
    failure_kinds: dict[str, int] = field(default_factory=dict)
    switch_log: list[str] = field(default_factory=list)
    passed: bool = False
    faults: list[str] = field(default_factory=list)  # which pass conditions failed
    why_not: str = ""  # the same, with the figures

    @property
    def cpu_ms_per_registration(self) -> float:
        return self.switch_cpu_s / max(self.successful, 1) * 1000


def judge(run: Run, switch_exit: int | None) -> None:
    faults: dict[str, str] = {}
    if switch_exit is not None:
        faults["switch exited"] = f"the switch exited ({switch_exit}) during the run"
    if run.successful != run.registrations or run.failed:
        faults["failures"] = f"{run.registrations - run.successful} not registered"
    if run.achieved < MIN_RATE_RATIO * run.target:
        faults["rate < 97%"] = f"rate {run.achieved:.0f} < 97% of {run.target}"
    if run.retransmissions >= MAX_RETRANS_RATIO * TRANSACTIONS_PER_REGISTRATION * run.registrations:
        faults["retrans >= 1%"] = f"{run.retransmissions} retransmissions >= 1%"
    if run.sipp_exit != 0 and not faults:
        faults["SIPp exit"] = f"SIPp exit code {run.sipp_exit}"
    run.passed = not faults
    run.faults = list(faults)
    run.why_not = "; ".join(faults.values())


# -- processes: every one is started here, stopped here, by PID


class _TerminatedError(Exception):
    pass


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _TerminatedError  # unwinds through the finally blocks that stop the processes


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


@dataclass
class Switch:
    process: subprocess.Popen[bytes]
    port: int
    stderr_path: Path
    data_dir: Path


def start_switch(config: Path, workdir: Path, transport: str) -> Switch:
    data_dir = workdir / "data"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir()
    ready = workdir / "ready.json"
    ready.unlink(missing_ok=True)
    stderr_path = workdir / "switch.stderr"
    command = [
        "taskset", "-c", str(SWITCH_CORE), str(SWITCH), "run",
        "--config", str(config), "--listen", f"{transport}:127.0.0.1:0",
        "--data-dir", str(data_dir), "--ready-file", str(ready), "--log-format", "json",
    ]  # fmt: skip
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=stderr, stderr=subprocess.STDOUT, cwd=workdir
        )
    deadline = time.monotonic() + READY_TIMEOUT
    try:
        while not ready.exists():
            if process.poll() is not None:
                raise BenchError(
                    f"the switch exited ({process.returncode}): {stderr_path.read_text()[-2000:]}"
                )
            if time.monotonic() > deadline:
                raise BenchError(f"no ready file after {READY_TIMEOUT} s")
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        port = int(str(info["listen"][0]).rsplit(":", 1)[1])
        if os.sched_getaffinity(process.pid) != {SWITCH_CORE}:
            raise BenchError(f"the switch is not pinned to core {SWITCH_CORE}")
    except BaseException:
        stop(process)
        raise
    return Switch(process, port, stderr_path, data_dir)


def count_bindings(data_dir: Path) -> int | None:
    """Bindings in the store after the switch stopped (its writer flushes at stop)."""
    import sqlite3  # noqa: PLC0415

    path = data_dir / "b2bua.sqlite3"
    if not path.exists():
        return None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            row = db.execute("SELECT count(*) FROM bindings").fetchone()
    except sqlite3.Error:
        return None
    return int(row[0])


def log_lines(path: Path, limit: int = 5) -> list[str]:
    """The switch's log lines (warnings and errors only: the config says level=warning)."""
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[:limit] + ([f"... {len(lines) - limit} more lines"] if len(lines) > limit else [])


def run_sipp(
    target: int, registrations: int, port: int, users_csv: Path, workdir: Path, *, transport: str
) -> tuple[SippTotals, int | None, float]:
    """One SIPp run pinned to SIPP_CORE; returns its totals, exit code and CPU seconds."""
    stat_file = workdir / f"stat-{target}.csv"
    stat_file.unlink(missing_ok=True)
    nominal = registrations / target
    sipp_timeout = int(nominal + SIPP_GRACE)
    command = [
        "taskset", "-c", str(SIPP_CORE), "sipp", f"127.0.0.1:{port}",
        "-sf", str(SCENARIO), "-inf", str(users_csv), "-t", transport[0] + "1",
        "-i", "127.0.0.1", "-p", str(free_udp_port()), "-mp", str(free_udp_pair()),
        "-cp", str(free_udp_port()),
        "-r", str(target), "-rp", "1000",
        # Concurrent registrations allowed: 3 s worth, so the limit itself never throttles
        # a switch that keeps up (a registration takes about a millisecond here).
        "-l", str(max(3 * target, 100)),
        "-m", str(registrations),
        "-timeout", f"{sipp_timeout}s", "-timeout_error", "-nd", "-nostdin",
        "-trace_stat", "-stf", str(stat_file), "-fd", "1",
        "-trace_err", "-error_file", str(workdir / f"errors-{target}.log"),
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=workdir,
    )
    try:
        exit_code: int | None = process.wait(sipp_timeout + OUTER_GRACE)
    except subprocess.TimeoutExpired:
        exit_code = None
    finally:
        if process.poll() is None:
            stop(process, 2)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return read_totals(stat_file), exit_code, cpu


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
                print(
                    f"  (machine still busy: {busy:.2f} cores; measuring anyway)", file=sys.stderr
                )
            return round(busy, 2)


def measure(
    target: int,
    registrations: int,
    config: Path,
    users_csv: Path,
    workdir: Path,
    *,
    transport: str = "udp",
    quiet_wait: float = 0.0,
) -> Run:
    busy_before = wait_for_quiet(quiet_wait)
    switch = start_switch(config, workdir, transport)
    try:
        time.sleep(0.5)  # let start-up work (GC freeze, store open) settle
        cpu0 = process_cpu_seconds(switch.process.pid)
        busy0 = core_busy_seconds()
        wall0 = time.monotonic()
        totals, exit_code, sipp_cpu = run_sipp(
            target, registrations, switch.port, users_csv, workdir, transport=transport
        )
        wall = time.monotonic() - wall0
        busy1 = core_busy_seconds()
        died = switch.process.poll()
        switch_cpu = 0.0 if died is not None else process_cpu_seconds(switch.process.pid) - cpu0
    finally:
        stop(switch.process)
    busy = {core: busy1[core] - busy0[core] for core in busy1}
    run = Run(
        target=target,
        registrations=registrations,
        achieved=round(totals.call_rate, 1),
        successful=totals.successful,
        failed=totals.failed,
        retransmissions=totals.retransmissions,
        sipp_exit=exit_code,
        switch_cpu_s=round(switch_cpu, 2),
        sipp_cpu_s=round(sipp_cpu, 2),
        switch_cpu_share=round(switch_cpu / wall, 3),
        other_busy_s=round(max(0.0, sum(busy.values()) - switch_cpu - sipp_cpu), 2),
        other_on_switch_core_s=round(max(0.0, busy.get(SWITCH_CORE, 0.0) - switch_cpu), 2),
        busy_before=busy_before,
        wall_s=round(wall, 2),
        bindings_stored=count_bindings(switch.data_dir),
        failure_kinds=totals.failure_kinds,
        switch_log=log_lines(switch.stderr_path),
    )
    judge(run, died)
    return run


# -- the campaign


def median_run(runs: list[Run]) -> dict[str, Any]:
    """Median of each figure over a rate's runs; it passes when most of its runs pass."""
    return {
        "target": runs[0].target,
        "runs": len(runs),
        "passed_runs": sum(r.passed for r in runs),
        "passed": sum(r.passed for r in runs) * 2 > len(runs),
        "achieved": statistics.median(r.achieved for r in runs),
        "failed": statistics.median(r.registrations - r.successful for r in runs),
        "retransmissions": statistics.median(r.retransmissions for r in runs),
        "switch_cpu_s": statistics.median(r.switch_cpu_s for r in runs),
        "switch_cpu_share": statistics.median(r.switch_cpu_share for r in runs),
        "cpu_ms_per_registration": round(
            statistics.median(r.cpu_ms_per_registration for r in runs), 3
        ),
        "sipp_cpu_s": statistics.median(r.sipp_cpu_s for r in runs),
        "other_busy_s": statistics.median(r.other_busy_s for r in runs),
        "other_on_switch_core_s": statistics.median(r.other_on_switch_core_s for r in runs),
        "faults": {
            fault: sum(fault in r.faults for r in runs)
            for fault in sorted({f for r in runs for f in r.faults})
        },
    }


def print_run(run: Run) -> None:
    verdict = "pass" if run.passed else f"FAIL ({run.why_not})"
    print(
        f"  {run.target}/s: achieved {run.achieved}/s, {run.successful}/{run.registrations} ok, "
        f"{run.retransmissions} retrans, switch {run.switch_cpu_s} s CPU "
        f"({run.cpu_ms_per_registration:.3f} ms/reg, {run.switch_cpu_share:.0%} of its core), "
        f"SIPp {run.sipp_cpu_s} s, others {run.other_busy_s} s "
        f"({run.other_on_switch_core_s} s on the switch's core): {verdict}",
        file=sys.stderr,
        flush=True,
    )
    for line in run.switch_log:
        print(f"    switch: {line}", file=sys.stderr)


def campaign(
    rates: list[int],
    *,
    repeats: int,
    climb: bool,
    config: Path,
    users_csv: Path,
    workdir: Path,
    transport: str,
    quiet_wait: float,
) -> dict[int, list[Run]]:
    runs: dict[int, list[Run]] = {}

    def once(rate: int) -> Run:
        run = measure(
            rate,
            rate * SECONDS_PER_RUN,
            config,
            users_csv,
            workdir,
            transport=transport,
            quiet_wait=quiet_wait,
        )
        runs.setdefault(rate, []).append(run)
        print_run(run)
        return run

    print(f"sweep (load average {os.getloadavg()[0]:.2f}):", file=sys.stderr)
    rates = sorted(rates)
    for rate in rates:
        once(rate)
    # Past the list while the top keeps passing, so the table shows where it stops.
    while climb and runs[rates[-1]][-1].passed and rates[-1] + STEP_UP <= MAX_RATE:
        rates.append(rates[-1] + STEP_UP)
        once(rates[-1])
    # Halve the gap between the highest passing rate and the first failing one above it.
    while True:
        passing = [r for r in rates if runs[r][0].passed]
        failing = [r for r in rates if passing and r > max(passing) and not runs[r][0].passed]
        if not passing or not failing or min(failing) - max(passing) <= REFINE_STEP:
            break
        middle = round((max(passing) + min(failing)) / 2 / 50) * 50
        rates = sorted([*rates, middle])
        once(middle)
    if repeats > 1:
        passing = [r for r in rates if runs[r][0].passed]
        top = max(passing) if passing else rates[0]
        # The highest passing rate, the one above it and the one below: interleaved.
        index = rates.index(top)
        again = rates[max(index - 1, 0) : index + 2]
        print(f"repeats of {again} (load average {os.getloadavg()[0]:.2f}):", file=sys.stderr)
        for _ in range(repeats - 1):
            for rate in again:
                once(rate)
    return runs


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


def table(summary: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| target (reg/s) | achieved (reg/s) | REGISTER tx/s | failed | SIPp retrans "
        "| switch CPU (s) | switch CPU / wall | CPU per registration (ms) | runs passed | result |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        faults = ", ".join(f"{f} ({n}/{s['runs']})" for f, n in s["faults"].items())
        result = ("pass" if s["passed"] else "fail") + (f": {faults}" if faults else "")
        lines.append(
            f"| {s['target']} | {s['achieved']:.0f} | {s['achieved'] * 2:.0f} | {s['failed']:.0f} "
            f"| {s['retransmissions']:.0f} | {s['switch_cpu_s']:.2f} | {s['switch_cpu_share']:.0%} "
            f"| {s['cpu_ms_per_registration']:.3f} | {s['passed_runs']}/{s['runs']} | {result} |"
        )
    return lines


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one low rate (smoke check)")
    parser.add_argument("--users", type=int, default=2000, help="extensions generated")
    parser.add_argument(
        "--rates", type=lambda s: [int(x) for x in s.split(",")], default=list(RATES),
        help="target registrations/s, comma-separated",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3, help="runs of the top rates")
    parser.add_argument("--no-climb", action="store_true", help="stop at the last listed rate")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--transport", choices=["udp", "tcp"], default="udp")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        help="seconds to wait, before each run, for other work on the machine to stop",
    )
    return parser.parse_args()


def check_tools() -> None:
    for tool in ("sipp", "taskset"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} not found (make apt installs sip-tester)")
    if not SWITCH.exists():
        raise BenchError(f"{SWITCH} not found (make venv)")
    if len(os.sched_getaffinity(0)) < 2:
        raise BenchError("needs 2 cores: SIPp on core 0, the switch on core 1")


def build_result(
    runs: dict[int, list[Run]], args: argparse.Namespace, users: int, load_before: list[float]
) -> dict[str, Any]:
    summary = [median_run(runs[rate]) for rate in sorted(runs)]
    passing = [s for s in summary if s["passed"]]
    best = max(passing, key=lambda s: s["target"]) if passing else None
    return {
        "benchmark": "register",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "sipp": sipp_version(),
        "scenario": str(SCENARIO.relative_to(ROOT)),
        "transport": args.transport,
        "users": users,
        "registrations_per_run": f"rate * {SECONDS_PER_RUN}",
        "pinning": {"sipp_core": SIPP_CORE, "switch_core": SWITCH_CORE},
        "pass_rule": "every registration succeeds, achieved >= 97% of target, "
        "SIPp retransmissions < 1% of REGISTERs sent; a rate passes when most of its runs "
        "pass, its figures are the medians",
        "quiet_rule": f"before each run, up to --quiet-wait s for < {QUIET_CORES} core busy",
        "load_average_before": load_before,
        "highest_passing_rate": best["target"] if best else None,
        "highest_passing_transactions_per_s": (
            best["target"] * TRANSACTIONS_PER_REGISTRATION if best else None
        ),
        "cpu_ms_per_registration_at_best": best["cpu_ms_per_registration"] if best else None,
        "target_transactions_per_s": TARGET_TRANSACTIONS,
        "summary": summary,
        "runs": [asdict(r) | {"cpu_ms_per_registration": round(r.cpu_ms_per_registration, 3)}
                 for rate in sorted(runs) for r in runs[rate]],
    }  # fmt: skip


def report(result: dict[str, Any]) -> None:
    print("\n".join(table(result["summary"])))
    best = result["highest_passing_rate"]
    if best is None:
        print("\nno rate passed")
        return
    print(
        f"\nhighest passing rate: {best} registrations/s = "
        f"{result['highest_passing_transactions_per_s']} REGISTER transactions/s, "
        f"{result['cpu_ms_per_registration_at_best']:.3f} ms of switch CPU per registration "
        f"(target: {TARGET_TRANSACTIONS} transactions/s)"
    )


def main() -> int:
    args = parse_args()
    check_tools()
    signal.signal(signal.SIGTERM, _on_sigterm)
    users = make_users(QUICK_USERS if args.quick else args.users)
    workdir = Path(tempfile.mkdtemp(prefix="bench-register-"))
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.monotonic()
    try:
        config, users_csv = write_inputs(workdir, users)
        if args.quick:
            run = measure(
                QUICK_RATE, QUICK_RATE * 3, config, users_csv, workdir, transport=args.transport
            )
            print_run(run)
            runs = {QUICK_RATE: [run]}
        else:
            runs = campaign(
                args.rates,
                repeats=args.repeats,
                climb=not args.no_climb,
                config=config,
                users_csv=users_csv,
                workdir=workdir,
                transport=args.transport,
                quiet_wait=args.quiet_wait,
            )
    except _TerminatedError:
        print("terminated: every process stopped", file=sys.stderr)
        return 143
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    result = build_result(runs, args, len(users), load_before)
    result["duration_s"] = round(time.monotonic() - started, 1)
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "register.json").write_text(json.dumps(result, indent=2) + "\n")
    report(result)
    # A smoke run fails when its one low rate does not pass; a campaign reports.
    return 1 if args.quick and result["highest_passing_rate"] is None else 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except BenchError as exc:
        print(f"bench_register: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
