"""Calls per second through the switch, next to the sippy B2BUA in the same run.

A call is SIPp's built-in ``uac`` made to dial a public number
(``scenarios/cps_uac.xml``: INVITE with SDP, 100, 180, 200, ACK, 1 s hold, BYE, 200),
no media. The callee (``scenarios/cps_uas_answer.xml``) rings for 20 ms, answers with
SDP, takes the ACK and the BYE. For b2bua the callees are K registered extensions (one
SIPp process registers them with digest, ``scenarios/cps_uas_register.xml``, then takes
their calls), reached through public numbers, so the caller needs no authentication (a
call from a trunk); the switch allocates two RTP port pairs per call and rewrites the
SDP both ways. For sippy (PyPI ``sippy``, in its own virtual environment) a plain SIPp
UAS sits behind its static route, and the SDP passes through untouched (no RTP proxy).

The system under test runs pinned to core 1, both SIPp processes to core 0. For each
rate the system starts afresh; SIPp runs ``-r RATE -rp 1000 -l 4*RATE -m 10*RATE``. A
run passes when every call succeeds (SIPp's SuccessfulCall = calls, no failure, exit
code 0) and the achieved rate, (calls - 1) / (time from the first 200 OK to the last),
is at least 97% of the target. Each system climbs by its step until a rate fails; then
its highest passing rate and the first failing one run twice more, the two systems
interleaved; where that highest rate fails most of its runs, the rate below runs twice
more, and so on down. A rate passes when most of its runs pass; the best is the highest
rate that passes most of three runs. CPU: utime+stime of
/proc/PID/stat (all threads) around the caller's run.

Writes benchmarks/results/cps.json and prints a Markdown table.
Run: ``make bench-cps`` (or ``python benchmarks/bench_cps.py [--quick]``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from calls import procs
from calls.procs import System
from calls.setup import Inputs, write_inputs

SECONDS_PER_RUN: Final = 10  # -m = rate * this
HOLD_MS: Final = 1000
MIN_RATE_RATIO: Final = 0.97
CALLEES: Final = 50  # 5,000 calls at once; the RTP range holds 5,000 too
MAX_LIMIT: Final = 4000
TARGET_RATIO: Final = 3.0  # the issue: >= 3x sippy

START: Final[dict[System, int]] = {"b2bua": 150, "sippy": 75}
STEP: Final[dict[System, int]] = {"b2bua": 25, "sippy": 25}
MAX_RATE: Final = 3000
MAX_STEPS_DOWN: Final = 4


@dataclass
class Run:
    system: System
    target: int
    calls: int
    achieved: float
    successful: int
    failed: int
    retransmissions: int
    sipp_exit: int | None
    sut_cpu_s: float
    sut_cpu_share: float  # CPU seconds / wall seconds of the run (0-1: one core)
    wall_s: float
    setup_ms: dict[str, float]
    sipp_cpu_s: float
    other_busy_s: float  # busy seconds on both cores that were neither SIPp nor the SUT
    other_on_sut_core_s: float
    busy_before: float
    failure_kinds: dict[str, int] = field(default_factory=dict)
    sut_log: list[str] = field(default_factory=list)
    caller_errors: list[str] = field(default_factory=list)
    callee_errors: list[str] = field(default_factory=list)
    passed: bool = False
    faults: list[str] = field(default_factory=list)
    why_not: str = ""

    @property
    def cpu_ms_per_call(self) -> float:
        return self.sut_cpu_s / max(self.successful, 1) * 1000


def judge(run: Run, sut_exit: int | None) -> None:
    failed = run.calls - run.successful
    checks: list[common.Check] = [
        (
            sut_exit is not None,
            "SUT exited",
            f"the system under test exited ({sut_exit}) during the run",
        ),
        (bool(failed or run.failed), "failed calls", f"{failed} of {run.calls} calls failed"),
        common.rate_check(run.achieved, run.target, MIN_RATE_RATIO),
    ]
    common.judge_checks(run, checks, run.sipp_exit)


def measure(system: System, rate: int, inputs: Inputs, workdir: Path, quiet_wait: float) -> Run:
    busy_before = common.wait_for_quiet(quiet_wait)
    calls = rate * SECONDS_PER_RUN
    nominal = calls / rate + HOLD_MS / 1000
    rundir = workdir / f"{system}-{rate}"
    sut = procs.start_sut(system, inputs, rundir)
    callee: procs.Sipp | None = None
    caller: procs.Sipp | None = None
    try:
        callee = procs.start_callee(sut, inputs, rundir, stay_s=nominal + 40)
        procs.wait_registered(sut, callee, inputs.callees)
        time.sleep(0.3)
        window = common.CpuWindow(sut.process)
        command = procs.caller_command(
            sut, inputs, rate=rate, calls=calls, limit=min(MAX_LIMIT, max(4 * rate, 200)),
            hold_ms=HOLD_MS, timeout_s=nominal + 30,
        )  # fmt: skip
        caller = procs.start_sipp("caller", rundir, command, nominal + 30)
        sipp_exit = procs.wait_sipp(caller)
        usage = window.close()  # SIPp's CPU: the caller only (reaped, the callee not yet)
    finally:
        procs.stop_all(sut, caller, callee)
    totals = procs.caller_totals(caller)
    run = Run(
        system=system,
        target=rate,
        calls=calls,
        achieved=totals.achieved,
        successful=totals.successful,
        failed=totals.failed,
        retransmissions=totals.retransmissions,
        sipp_exit=sipp_exit,
        sut_cpu_s=usage.sut_cpu_s,
        sut_cpu_share=usage.sut_cpu_share,
        wall_s=usage.wall_s,
        setup_ms=totals.setup_ms,
        sipp_cpu_s=usage.sipp_cpu_s,
        other_busy_s=usage.other_busy_s,
        other_on_sut_core_s=usage.other_on_sut_core_s,
        busy_before=busy_before,
        failure_kinds=totals.failure_kinds,
        sut_log=sut.log_lines(),
        caller_errors=procs.error_lines(caller),
        callee_errors=procs.error_lines(callee) if callee is not None else [],
    )
    judge(run, usage.sut_exit)
    return run


def print_run(run: Run) -> None:
    verdict = "pass" if run.passed else f"FAIL ({run.why_not})"
    print(
        f"  {run.system} {run.target}/s: achieved {run.achieved}/s, "
        f"{run.successful}/{run.calls} ok, {run.retransmissions} retrans, setup p50/p99 "
        f"{run.setup_ms.get('p50', '-')}/{run.setup_ms.get('p99', '-')} ms, "
        f"CPU {run.sut_cpu_s} s ({run.cpu_ms_per_call:.2f} ms/call, "
        f"{run.sut_cpu_share:.0%} of its core), others {run.other_busy_s} s "
        f"({run.other_on_sut_core_s} s on its core): {verdict}",
        file=sys.stderr,
        flush=True,
    )
    for line in run.sut_log[:3] + run.caller_errors[:2] + run.callee_errors[:2]:
        print(f"    {line[:300]}", file=sys.stderr)


def campaign(
    systems: list[System], *, start: dict[System, int], step: dict[System, int], repeats: int,
    inputs: Inputs, workdir: Path, quiet_wait: float,
) -> dict[System, dict[int, list[Run]]]:  # fmt: skip
    runs: dict[System, dict[int, list[Run]]] = {s: {} for s in systems}

    def once(system: System, rate: int) -> Run:
        run = measure(system, rate, inputs, workdir, quiet_wait)
        runs[system].setdefault(rate, []).append(run)
        print_run(run)
        return run

    # Climb each system by its step until a rate fails (the two alternate, so that a
    # noisy minute of the machine does not land on one of them only).
    rate = dict(start)
    climbing = set(systems)
    print(f"sweep (load average {os.getloadavg()[0]:.2f}):", file=sys.stderr)
    while climbing:
        for system in systems:
            if system not in climbing:
                continue
            if not once(system, rate[system]).passed or rate[system] + step[system] > MAX_RATE:
                climbing.discard(system)
            else:
                rate[system] += step[system]
    if repeats > 1:
        again: dict[System, list[int]] = {}
        for system in systems:
            passing = [r for r, rs in runs[system].items() if rs[0].passed]
            top = max(passing) if passing else min(runs[system])
            again[system] = sorted({top, top + step[system]} & set(runs[system]) or {top})
        print(f"repeats of {again} (load average {os.getloadavg()[0]:.2f}):", file=sys.stderr)
        for _ in range(repeats - 1):
            for index in range(max(len(v) for v in again.values())):
                for system in systems:
                    if index < len(again[system]):
                        once(system, again[system][index])
        # Where the top fails most of its runs, step down until a rate passes most of its
        # runs (each lower rate already has its sweep run).
        candidate = {system: again[system][0] for system in systems}
        for _ in range(MAX_STEPS_DOWN):
            failing = [
                system
                for system in systems
                if not common.majority(runs[system][candidate[system]])
                and candidate[system] - step[system] in runs[system]
            ]
            if not failing:
                break
            for system in failing:
                candidate[system] -= step[system]
            print(f"stepping down: {candidate}", file=sys.stderr)
            for _ in range(repeats - 1):
                for system in failing:
                    once(system, candidate[system])
    return runs


def median_run(runs: list[Run]) -> dict[str, Any]:
    return {
        "system": runs[0].system,
        "target": runs[0].target,
        "runs": len(runs),
        "passed_runs": sum(r.passed for r in runs),
        "passed": common.majority(runs),
        "achieved": statistics.median(r.achieved for r in runs),
        "failed": statistics.median(r.calls - r.successful for r in runs),
        "retransmissions": statistics.median(r.retransmissions for r in runs),
        "sut_cpu_s": statistics.median(r.sut_cpu_s for r in runs),
        "sut_cpu_share": statistics.median(r.sut_cpu_share for r in runs),
        "cpu_ms_per_call": round(statistics.median(r.cpu_ms_per_call for r in runs), 3),
        "setup_p50_ms": statistics.median(r.setup_ms.get("p50", -1) for r in runs),
        "setup_p99_ms": statistics.median(r.setup_ms.get("p99", -1) for r in runs),
        "other_busy_s": statistics.median(r.other_busy_s for r in runs),
        "faults": common.fault_counts(runs),
    }


def table(summary: list[dict[str, Any]]) -> list[str]:
    lines = common.table_head(
        "system", "target (calls/s)", "achieved", "failed", "SIPp retrans",
        "setup p50 / p99 (ms)", "CPU / wall", "CPU per call (ms)", "runs passed", "result",
    )  # fmt: skip
    for s in summary:
        lines.append(
            f"| {s['system']} | {s['target']} | {s['achieved']:.0f} | {s['failed']:.0f} "
            f"| {s['retransmissions']:.0f} | {s['setup_p50_ms']:.0f} / {s['setup_p99_ms']:.0f} "
            f"| {s['sut_cpu_share']:.0%} | {s['cpu_ms_per_call']:.2f} "
            f"| {s['passed_runs']}/{s['runs']} | {common.result_cell(s)} |"
        )
    return lines


def build_result(
    runs: dict[System, dict[int, list[Run]]], args: argparse.Namespace, inputs: Inputs,
    load_before: list[float], commands: dict[str, str],
) -> dict[str, Any]:  # fmt: skip
    summary = [median_run(runs[s][r]) for s in runs for r in sorted(runs[s])]
    best: dict[str, Any] = {}
    for system in runs:
        # The rates run most often (the repeats) decide; single sweep runs only if none.
        most = max((s["runs"] for s in summary if s["system"] == system), default=0)
        confirmed = [s for s in summary if s["system"] == system and s["runs"] == most]
        passing = [s for s in confirmed if s["passed"]] or [
            s for s in summary if s["system"] == system and s["passed"]
        ]
        top = max(passing, key=lambda s: s["target"]) if passing else None
        best[system] = {
            "highest_passing_rate": top["target"] if top else None,
            "cpu_ms_per_call": top["cpu_ms_per_call"] if top else None,
            "cpu_share": top["sut_cpu_share"] if top else None,
        }
    ours, ref = best.get("b2bua", {}), best.get("sippy", {})
    ratio = common.ratio(ours.get("highest_passing_rate"), ref.get("highest_passing_rate"), 2)
    cpu_ratio = common.ratio(ref.get("cpu_ms_per_call"), ours.get("cpu_ms_per_call"), 2)
    return procs.calls_result_head("cps", sippy=True) | {
        "call": "cps_uac.xml: INVITE+SDP, 100, 180, 200, ACK, 1 s hold, BYE, 200; callee "
        "rings 20 ms (cps_uas_answer.xml)",
        "b2bua_route": f"public number -> registered extension ({inputs.callees} callees, "
        "digest REGISTER), two RTP port pairs and SDP rewrite per call",
        "sippy_route": "static route (-s) to a SIPp UAS; SDP passed through, no RTP proxy",
        "calls_per_run": f"rate * {SECONDS_PER_RUN}",
        "pinning": {"load_core": common.LOAD_CORE, "sut_core": common.SUT_CORE},
        "pass_rule": "every call succeeds, achieved >= 97% of target (first to last 200 OK); "
        "a rate passes when most of its runs pass, its figures are the medians",
        "commands": commands,
        "load_average_before": load_before,
        "best": best,
        "ratio_rate_b2bua_over_sippy": ratio,
        "ratio_cpu_per_call_sippy_over_b2bua": cpu_ratio,
        "target_ratio": TARGET_RATIO,
        "target_met": ratio is not None and ratio >= TARGET_RATIO,
        "summary": summary,
        "runs": [asdict(r) | {"cpu_ms_per_call": round(r.cpu_ms_per_call, 3)}
                 for s in runs for rate in sorted(runs[s]) for r in runs[s][rate]],
    }  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = common.argument_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="one low rate each (smoke check)")
    parser.add_argument("--systems", default="b2bua,sippy", help="comma-separated")
    parser.add_argument("--b2bua-start", type=int, default=START["b2bua"])
    parser.add_argument("--sippy-start", type=int, default=START["sippy"])
    parser.add_argument("--b2bua-step", type=int, default=STEP["b2bua"])
    parser.add_argument("--sippy-step", type=int, default=STEP["sippy"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--quiet-wait", type=float, default=60.0)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    systems = procs.systems_to_run(args.systems)
    load_before = common.load_average()
    started = time.monotonic()
    with common.work_directory("bench-cps-", keep=args.keep) as workdir:
        inputs = write_inputs(workdir, CALLEES)
        if args.quick:
            runs: dict[System, dict[int, list[Run]]] = {}
            for system in systems:
                run = measure(system, 50, inputs, workdir, 0.0)
                print_run(run)
                runs[system] = {50: [run]}
        else:
            start: dict[System, int] = {"b2bua": args.b2bua_start, "sippy": args.sippy_start}
            step: dict[System, int] = {"b2bua": args.b2bua_step, "sippy": args.sippy_step}
            runs = campaign(
                systems, start=start, step=step, repeats=args.repeats, inputs=inputs,
                workdir=workdir, quiet_wait=args.quiet_wait,
            )  # fmt: skip
        commands = {
            f"{s}_{kind}": (workdir / f"{s}-{r}" / kind / "command.txt").read_text().strip()
            for s in systems
            for r in [max(runs[s])]
            for kind in ("caller", "callee")
        }
    commands["sippy"] = (
        "SIPLOG_BEND=none taskset -c 1 benchmarks/build/venv-sippy/bin/b2bua_radius "
        "-f -u -A 0 -l 127.0.0.1 -p PORT -s 127.0.0.1:CALLEE_PORT"
    )
    commands["b2bua"] = (
        "taskset -c 1 .venv/bin/b2bua run --config switch.toml --listen udp:127.0.0.1:0 "
        "--status-listen 127.0.0.1:0 (config: benchmarks/calls/setup.py)"
    )
    result = build_result(runs, args, inputs, load_before, commands)
    result["duration_s"] = round(time.monotonic() - started, 1)
    if not args.quick:
        common.write_result("cps", result)
    print("\n".join(table(result["summary"])))
    print(
        f"\nhighest passing rate: {json.dumps(result['best'])}; ratio b2bua/sippy "
        f"{result['ratio_rate_b2bua_over_sippy']} (target {TARGET_RATIO}x); CPU per call "
        f"sippy/b2bua {result['ratio_cpu_per_call_sippy_over_b2bua']}"
    )
    if args.quick:
        return 0 if all(r.passed for rs in runs.values() for v in rs.values() for r in v) else 1
    return 0


if __name__ == "__main__":
    common.run_main(main, "bench_cps")
