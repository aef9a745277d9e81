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
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from register.generate import make_users, write_inputs
from register.sipp_stats import SippTotals, read_totals

SCENARIO: Final = common.ROOT / "sipp-scenarios" / "uac_register_digest.xml"

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

SWITCH_CORE: Final = common.SUT_CORE
SIPP_CORE: Final = common.LOAD_CORE
READY_TIMEOUT: Final = 20.0
SIPP_GRACE: Final = 20.0  # SIPp's -timeout beyond the run's nominal length


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
    failed = run.registrations - run.successful
    sent = TRANSACTIONS_PER_REGISTRATION * run.registrations
    retransmissions = f"{run.retransmissions} retransmissions >= 1%"
    checks: list[common.Check] = [
        (
            switch_exit is not None,
            "switch exited",
            f"the switch exited ({switch_exit}) during the run",
        ),
        (bool(failed or run.failed), "failures", f"{failed} not registered"),
        common.rate_check(run.achieved, run.target, MIN_RATE_RATIO),
        (run.retransmissions >= MAX_RETRANS_RATIO * sent, "retrans >= 1%", retransmissions),
    ]
    common.judge_checks(run, checks, run.sipp_exit)


# -- processes: every one is started here, stopped here, by PID (see common)


def start_register_switch(config: Path, workdir: Path, transport: str) -> common.Switch:
    """The switch on the generated config, listening on ``transport``, pinned to core 1."""
    return common.start_switch(
        config, workdir, workdir / "switch.stderr", listen=f"{transport}:127.0.0.1:0",
        ready_timeout=READY_TIMEOUT,
    )  # fmt: skip


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


def run_sipp(
    target: int, registrations: int, port: int, users_csv: Path, workdir: Path, *, transport: str
) -> tuple[SippTotals, int | None]:
    """One SIPp run pinned to SIPP_CORE; returns its totals and exit code."""
    stat_file = workdir / f"stat-{target}.csv"
    stat_file.unlink(missing_ok=True)
    nominal = registrations / target
    sipp_timeout = int(nominal + SIPP_GRACE)
    extra = [
        "-sf", str(SCENARIO), "-inf", str(users_csv), "-t", transport[0] + "1",
        "-r", str(target), "-rp", "1000",
        # Concurrent registrations allowed: 3 s worth, so the limit itself never throttles
        # a switch that keeps up (a registration takes about a millisecond here).
        "-l", str(max(3 * target, 100)),
        "-m", str(registrations),
        "-stf", str(stat_file), "-error_file", str(workdir / f"errors-{target}.log"),
    ]  # fmt: skip
    command = common.sipp_command(
        port, port=common.free_udp_port(), extra=extra, timeout_s=sipp_timeout
    )
    process = common.popen(command, workdir, None)
    exit_code = common.wait_or_stop(process, sipp_timeout + common.OUTER_GRACE)
    return read_totals(stat_file), exit_code


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
    busy_before = common.wait_for_quiet(quiet_wait)
    switch = start_register_switch(config, workdir, transport)
    try:
        time.sleep(0.5)  # let start-up work (GC freeze, store open) settle
        window = common.CpuWindow(switch.process)
        totals, exit_code = run_sipp(
            target, registrations, switch.port, users_csv, workdir, transport=transport
        )
        usage = window.close()
    finally:
        common.stop(switch.process)
    run = Run(
        target=target,
        registrations=registrations,
        achieved=round(totals.call_rate, 1),
        successful=totals.successful,
        failed=totals.failed,
        retransmissions=totals.retransmissions,
        sipp_exit=exit_code,
        switch_cpu_s=usage.sut_cpu_s,
        sipp_cpu_s=usage.sipp_cpu_s,
        switch_cpu_share=usage.sut_cpu_share,
        other_busy_s=usage.other_busy_s,
        other_on_switch_core_s=usage.other_on_sut_core_s,
        busy_before=busy_before,
        wall_s=usage.wall_s,
        bindings_stored=count_bindings(switch.data_dir),
        failure_kinds=totals.failure_kinds,
        switch_log=common.log_head(switch.log, 5),
    )
    judge(run, usage.sut_exit)
    return run


# -- the campaign


def median_run(runs: list[Run]) -> dict[str, Any]:
    """Median of each figure over a rate's runs; it passes when most of its runs pass."""
    return {
        "target": runs[0].target,
        "runs": len(runs),
        "passed_runs": sum(r.passed for r in runs),
        "passed": common.majority(runs),
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
        "faults": common.fault_counts(runs),
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


def table(summary: list[dict[str, Any]]) -> list[str]:
    lines = common.table_head(
        "target (reg/s)", "achieved (reg/s)", "REGISTER tx/s", "failed", "SIPp retrans",
        "switch CPU (s)", "switch CPU / wall", "CPU per registration (ms)", "runs passed",
        "result",
    )  # fmt: skip
    for s in summary:
        lines.append(
            f"| {s['target']} | {s['achieved']:.0f} | {s['achieved'] * 2:.0f} | {s['failed']:.0f} "
            f"| {s['retransmissions']:.0f} | {s['switch_cpu_s']:.2f} | {s['switch_cpu_share']:.0%} "
            f"| {s['cpu_ms_per_registration']:.3f} | {s['passed_runs']}/{s['runs']} "
            f"| {common.result_cell(s)} |"
        )
    return lines


def parse_args() -> argparse.Namespace:
    parser = common.argument_parser(__doc__)
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


def build_result(
    runs: dict[int, list[Run]], args: argparse.Namespace, users: int, load_before: list[float]
) -> dict[str, Any]:
    summary = [median_run(runs[rate]) for rate in sorted(runs)]
    passing = [s for s in summary if s["passed"]]
    best = max(passing, key=lambda s: s["target"]) if passing else None
    return common.result_head("register") | {
        "sipp": common.sipp_version(),
        "scenario": str(SCENARIO.relative_to(common.ROOT)),
        "transport": args.transport,
        "users": users,
        "registrations_per_run": f"rate * {SECONDS_PER_RUN}",
        "pinning": {"sipp_core": SIPP_CORE, "switch_core": SWITCH_CORE},
        "pass_rule": "every registration succeeds, achieved >= 97% of target, "
        "SIPp retransmissions < 1% of REGISTERs sent; a rate passes when most of its runs "
        "pass, its figures are the medians",
        "quiet_rule": f"before each run, up to --quiet-wait s for < {common.QUIET_CORES} core busy",
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
    common.check_tools((common.SWITCH, "venv"), cores="SIPp on core 0, the switch on core 1")
    users = make_users(QUICK_USERS if args.quick else args.users)
    load_before = common.load_average()
    started = time.monotonic()
    with common.work_directory("bench-register-", keep=args.keep) as workdir:
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
    result = build_result(runs, args, len(users), load_before)
    result["duration_s"] = round(time.monotonic() - started, 1)
    if not args.quick:
        common.write_result("register", result)
    report(result)
    # A smoke run fails when its one low rate does not pass; a campaign reports.
    return 1 if args.quick and result["highest_passing_rate"] is None else 0


if __name__ == "__main__":
    common.run_main(main, "bench_register")
