"""Soak: the switch for 10 minutes at half its measured maximum call rate, with RTP on a
share of the calls; nothing may fail and nothing may grow.

The calls are bench_cps.py's (``scenarios/cps_uac.xml``: a public number -> one of K
registered extensions, 1 s hold; the callees' SIPp, ``cps_uas_register.xml`` +
``cps_uas_answer.xml``, 20 ms of ringing). One call in ``--rtp-every`` (10) is placed by a
second SIPp caller with ``scenarios/soak_uac_rtp.xml`` instead: it plays a looped tone
(PCMU, 50 packets/s) for ``--rtp-hold-ms`` (4 s), which the switch relays to the callee,
whose SIPp (``-rtp_echo``) sends it back through the switch. The rate is half of
``best.b2bua.highest_passing_rate`` in benchmarks/results/cps.json (``make bench-cps``),
or ``--rate``. The switch runs pinned to core 1, the SIPp processes to core 0.

Readings: RSS (``VmRSS``) and open files (``/proc/PID/fd``) of the switch, and from its
``GET /status``: asyncio tasks, media sockets and sessions, media ports allocated, calls
and transactions; idle before the load, every ``--sample-interval`` s under load, and
after the load once the calls and transactions are gone ("drained").

Checks (each a named fault; the script exits 1 when one fails):

- **no failed call**: each caller's SIPp statistics: every call successful, none failed,
  exit code 0; the switch still running.
- **RSS flat**: the last reading under load is within max(10%, 5 MiB) of the reading
  after the warm-up (``--warmup``, 60 s; a fifth of a shorter run).
- **files, ports, media sockets, transactions, tasks not growing** under load: the
  median of the last quarter of the samples after the warm-up is within max(20%, 20)
  (tasks: max(20%, 5)) of the median of their first quarter (they follow the calls in
  progress, which wander with the rate; transactions stay 32 s after their call, so
  they level off within the warm-up; with a warm-up under 40 s they are not judged).
- **back to idle** after the drain: no call, no media port allocated, open files within
  5 and tasks within 2 of the idle readings.

Writes benchmarks/results/soak.json (``--output``) and prints a summary.
Run: ``make soak`` (or ``python benchmarks/soak.py [--duration 600] [--rate N]``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from calls import procs
from calls.setup import Inputs, callees_for, write_inputs

DURATION: Final = 600.0
RTP_EVERY: Final = 10
HOLD_MS: Final = 1000
RTP_HOLD_MS: Final = 4000
SAMPLE_INTERVAL: Final = 5.0
WARMUP: Final = 60.0
DRAIN_TIMEOUT: Final = 60.0  # transactions live up to 32 s after a call
TRANSACTIONS_SETTLE: Final = 40.0  # the warm-up after which their number levels off
RSS_SLACK: Final = (0.10, 5 * 1024)  # share, KiB
GROWTH_SLACK: Final = (0.20, 20)  # share, count
TASKS_SLACK: Final = (0.20, 5)
IDLE_FDS_SLACK: Final = 5
IDLE_TASKS_SLACK: Final = 2
TONE: Final = common.ROOT / "sipp-scenarios" / "caller_tone.wav"


@dataclass
class Sample:
    t: float  # seconds since the load started
    rss_kib: int
    fds: int
    tasks: int
    media_sockets: int
    media_sessions: int
    ports_allocated: int
    calls_active: int
    transactions: int
    cpu_s: float


def sample(sut: procs.Sut, started: float) -> Sample:
    status = sut.get_status()
    return Sample(
        t=round(time.monotonic() - started, 1),
        rss_kib=common.vm_rss_kib(sut.pid),
        fds=common.open_fds(sut.pid),
        tasks=int(status.get("tasks", -1)),
        media_sockets=int((status.get("media") or {}).get("sockets", -1)),
        media_sessions=int((status.get("media") or {}).get("sessions", -1)),
        ports_allocated=int((status.get("media_ports") or {}).get("allocated", -1)),
        calls_active=int((status.get("calls") or {}).get("active", -1)),
        transactions=int(status.get("transactions", -1)),
        cpu_s=round(sut.cpu_seconds(), 2),
    )


def caller(
    sut: procs.Sut, inputs: Inputs, workdir: Path, name: str, *, rate: float, calls: int,
    hold_ms: int, scenario: str, timeout_s: float,
) -> procs.Sipp:  # fmt: skip
    limit = max(50, int(rate * (hold_ms / 1000 + 2) * 4))
    command = procs.caller_command(
        sut, inputs, rate=rate, calls=calls, limit=limit, hold_ms=hold_ms,
        timeout_s=timeout_s, scenario=scenario,
    )  # fmt: skip
    files = {"soak_tone.wav": TONE.read_bytes()} if scenario == "soak_uac_rtp.xml" else None
    return procs.start_sipp(name, workdir, command, timeout_s, files)


def quarter_medians(samples: list[Sample], name: str) -> tuple[float, float]:
    values = [getattr(s, name) for s in samples]
    n = max(1, len(values) // 4)
    return statistics.median(values[:n]), statistics.median(values[-n:])


def judge(
    result: dict[str, Any], *, idle: Sample, warm: list[Sample], drained: Sample | None,
    callers: dict[str, dict[str, Any]], switch_exit: int | None, warmup: float,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    checks: dict[str, dict[str, Any]] = {}

    def check(name: str, passed: bool, detail: str) -> None:
        checks[name] = {"passed": passed, "detail": detail}

    for name, c in callers.items():
        ok = c["successful"] == c["calls"] and c["failed"] == 0 and c["sipp_exit"] == 0
        check(
            f"no failed call ({name})",
            ok,
            f"{c['successful']} of {c['calls']} successful, {c['failed']} failed, "
            f"SIPp exit {c['sipp_exit']}, failures {c['failure_kinds']}",
        )
    check("switch running", switch_exit is None, f"exit code {switch_exit}")
    if len(warm) >= 2:
        start, end = warm[0].rss_kib, warm[-1].rss_kib
        allowed = max(start * RSS_SLACK[0], RSS_SLACK[1])
        check(
            "RSS flat",
            end - start <= allowed,
            f"{start / 1024:.1f} MiB after the warm-up, {end / 1024:.1f} MiB at the end "
            f"({(end - start) / 1024:+.1f} MiB; allowed {allowed / 1024:.1f})",
        )
        for field in ("fds", "ports_allocated", "media_sockets", "transactions", "tasks"):
            first, last = quarter_medians(warm, field)
            if field == "transactions" and warmup < TRANSACTIONS_SETTLE:
                checks["transactions not growing"] = {
                    "passed": True,
                    "detail": f"not judged: a warm-up of {warmup:g} s is shorter than the "
                    f"{TRANSACTIONS_SETTLE:g} s finished transactions take to level off "
                    f"(median {first:g}, then {last:g})",
                }
                continue
            share, count = TASKS_SLACK if field == "tasks" else GROWTH_SLACK
            allowed_n = max(first * share, count)
            check(
                f"{field} not growing",
                last - first <= allowed_n,
                f"median {first:g} in the first quarter, {last:g} in the last "
                f"(allowed +{allowed_n:g})",
            )
    else:
        check("samples", False, f"{len(warm)} samples after the warm-up: run longer")
    if drained is None:
        check("drained", False, f"calls or transactions left after {DRAIN_TIMEOUT:g} s")
    else:
        check(
            "back to idle",
            drained.calls_active == 0
            and drained.ports_allocated == 0
            and drained.fds <= idle.fds + IDLE_FDS_SLACK
            and drained.tasks <= idle.tasks + IDLE_TASKS_SLACK,
            f"calls {drained.calls_active}, ports allocated {drained.ports_allocated}, "
            f"files {drained.fds} (idle {idle.fds}), tasks {drained.tasks} (idle {idle.tasks})",
        )
    result["checks"] = checks
    result["faults"] = [name for name, c in checks.items() if not c["passed"]]
    result["passed"] = not result["faults"]
    return checks


def caller_figures(sipp: procs.Sipp, calls: int, sipp_exit: int | None) -> dict[str, Any]:
    totals = procs.caller_totals(sipp)
    return {
        "calls": calls,
        "successful": totals.successful,
        "failed": totals.failed,
        "retransmissions": totals.retransmissions,
        "achieved": totals.achieved,
        "setup_ms": totals.setup_ms,
        "failure_kinds": totals.failure_kinds,
        "sipp_exit": sipp_exit,
        "errors": procs.error_lines(sipp),
        "command": (sipp.workdir / "command.txt").read_text().strip(),
    }


def parse_args() -> argparse.Namespace:
    parser = common.argument_parser(__doc__)
    parser.add_argument("--duration", type=float, default=DURATION, help="seconds of load")
    parser.add_argument("--rate", type=float, help="calls/s (default: half of cps.json's best)")
    parser.add_argument("--rtp-every", type=int, default=RTP_EVERY, help="1 call in N has RTP")
    parser.add_argument("--hold-ms", type=int, default=HOLD_MS)
    parser.add_argument("--rtp-hold-ms", type=int, default=RTP_HOLD_MS)
    parser.add_argument("--warmup", type=float, help="seconds (default: min(60, duration/5))")
    parser.add_argument("--sample-interval", type=float, default=SAMPLE_INTERVAL)
    parser.add_argument("--output", type=Path, default=common.RESULTS / "soak.json")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser.parse_args()


@dataclass
class Load:
    """What one soak saw."""

    idle: Sample
    samples: list[Sample]
    drained: Sample | None
    callers: dict[str, dict[str, Any]]
    switch_exit: int | None
    switch_log: list[str]


def wait_drained(sut: procs.Sut, started: float) -> Sample | None:
    """The reading once no call, transaction or media port is left (None: still some
    after DRAIN_TIMEOUT)."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while time.monotonic() < deadline:
        s = sample(sut, started)
        if s.calls_active == 0 and s.transactions == 0 and s.ports_allocated == 0:
            time.sleep(1.0)
            return sample(sut, started)
        time.sleep(1.0)
    return None


def print_sample(s: Sample) -> None:
    print(
        f"  {s.t:6.0f} s: RSS {s.rss_kib / 1024:.1f} MiB, files {s.fds}, tasks {s.tasks}, "
        f"media sockets {s.media_sockets}, ports {s.ports_allocated}, calls "
        f"{s.calls_active}, transactions {s.transactions}",
        file=sys.stderr,
        flush=True,
    )


def run_load(
    args: argparse.Namespace, inputs: Inputs, rundir: Path, *, plain_rate: float,
    rtp_rate: float,
) -> Load:  # fmt: skip
    """Start the switch and the callees, place the calls, sample until the callers end,
    wait for the drain; every process stopped on the way out."""
    sut = procs.start_sut("b2bua", inputs, rundir)
    callee: procs.Sipp | None = None
    callers: dict[str, procs.Sipp] = {}
    planned: dict[str, int] = {}
    samples: list[Sample] = []
    try:
        stay = args.duration + DRAIN_TIMEOUT + 60
        callee = procs.start_callee(sut, inputs, rundir, stay_s=stay, extra=["-rtp_echo"])
        procs.wait_registered(sut, callee, inputs.callees)
        time.sleep(1.0)
        idle = sample(sut, time.monotonic())
        started = time.monotonic()
        timeout = args.duration + max(args.hold_ms, args.rtp_hold_ms) / 1000 + 60
        planned["plain"] = round(plain_rate * args.duration)
        callers["plain"] = caller(
            sut, inputs, rundir, "caller", rate=plain_rate, calls=planned["plain"],
            hold_ms=args.hold_ms, scenario="cps_uac.xml", timeout_s=timeout,
        )  # fmt: skip
        if rtp_rate > 0:
            planned["rtp"] = max(1, round(rtp_rate * args.duration))
            callers["rtp"] = caller(
                sut, inputs, rundir, "caller-rtp", rate=rtp_rate, calls=planned["rtp"],
                hold_ms=args.rtp_hold_ms, scenario="soak_uac_rtp.xml", timeout_s=timeout,
            )  # fmt: skip
        next_sample = started
        while any(c.process.poll() is None for c in callers.values()):
            if sut.process.poll() is not None:
                break
            if any(time.monotonic() > c.deadline for c in callers.values()):
                break
            if time.monotonic() >= next_sample:
                samples.append(sample(sut, started))
                print_sample(samples[-1])
                next_sample += args.sample_interval
            time.sleep(0.2)
        exits = {name: procs.wait_sipp(sipp) for name, sipp in callers.items()}
        switch_exit = sut.process.poll()
        drained = wait_drained(sut, started) if switch_exit is None else None
    finally:
        procs.stop_all(sut, *callers.values(), callee)
    figures = {
        name: caller_figures(sipp, planned[name], exits.get(name)) for name, sipp in callers.items()
    }
    return Load(idle, samples, drained, figures, switch_exit, sut.log_lines())


def describe(load: Load, result: dict[str, Any], warmup: float) -> None:
    """The figures of ``load`` into ``result``, then the verdict."""
    # The samples from the warm-up on, while the callers were placing calls.
    warm = [s for s in load.samples if s.t >= warmup]
    result["callers"] = load.callers
    result["calls"] = sum(f["calls"] for f in load.callers.values())
    result["calls_ok"] = sum(f["successful"] for f in load.callers.values())
    first, end = (warm[0], warm[-1]) if warm else (None, None)

    def mib(s: Sample | None) -> float | None:
        return round(s.rss_kib / 1024, 1) if s is not None else None

    result["rss_mib"] = {
        "idle": mib(load.idle),
        "after_warmup": mib(first),
        "end": mib(end),
        "after_drain": mib(load.drained),
    }
    if first is not None and end is not None and end.t > first.t:
        span = end.t - first.t
        result["cpu_share_under_load"] = round((end.cpu_s - first.cpu_s) / span, 3)
    result["idle"] = vars(load.idle)
    result["drained"] = vars(load.drained) if load.drained else None
    result["samples"] = [vars(s) for s in load.samples]
    result["switch_log"] = load.switch_log
    judge(
        result, idle=load.idle, warm=warm, drained=load.drained, callers=load.callers,
        switch_exit=load.switch_exit, warmup=warmup,
    )  # fmt: skip


def main() -> int:
    args = parse_args()
    procs.check_tools(sippy=False)
    if not TONE.exists():
        raise common.BenchError(f"{TONE} not found")
    rate = args.rate if args.rate else float(max(1, common.best_cps_rate() // 2))
    rtp_rate = rate / args.rtp_every if args.rtp_every > 0 else 0.0
    plain_rate = rate - rtp_rate
    warmup = args.warmup if args.warmup is not None else min(WARMUP, args.duration / 5)
    concurrent = plain_rate * (args.hold_ms / 1000 + 1) + rtp_rate * (args.rtp_hold_ms / 1000 + 1)
    callees = max(bench_callees(), callees_for(int(concurrent) + 1))
    result: dict[str, Any] = common.result_head("soak") | common.machine_details() | {
        "sipp": common.sipp_version(),
        "command": "make soak",
        "duration_s": args.duration,
        "rate": rate,
        "rate_source": "--rate" if args.rate else f"half of {common.CPS_RESULT.name} best b2bua",
        "rtp_every": args.rtp_every,
        "hold_ms": args.hold_ms,
        "rtp_hold_ms": args.rtp_hold_ms,
        "warmup_s": warmup,
        "callees": callees,
        "pinning": {"load_core": common.LOAD_CORE, "sut_core": common.SUT_CORE},
        "rules": {
            "rss": f"end - after warm-up <= max({RSS_SLACK[0]:.0%}, {RSS_SLACK[1] // 1024} MiB)",
            "growth": f"median of the last quarter - of the first <= max("
            f"{GROWTH_SLACK[0]:.0%}, {GROWTH_SLACK[1]}) (files, ports, sockets, transactions); "
            f"tasks: max({TASKS_SLACK[0]:.0%}, {TASKS_SLACK[1]})",
            "idle": f"after the drain: no call, no port; files <= idle + {IDLE_FDS_SLACK}, "
            f"tasks <= idle + {IDLE_TASKS_SLACK}",
        },
    }  # fmt: skip
    print(
        f"soak: {args.duration:g} s at {rate:g} calls/s ({rtp_rate:g}/s with RTP), "
        f"warm-up {warmup:g} s, {callees} callees",
        file=sys.stderr,
        flush=True,
    )
    started = time.monotonic()
    with common.work_directory("soak-", keep=args.keep) as workdir:
        inputs = write_inputs(workdir, callees)
        load = run_load(args, inputs, workdir / "run", plain_rate=plain_rate, rtp_rate=rtp_rate)
    describe(load, result, warmup)
    result["wall_s"] = round(time.monotonic() - started, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    for name, c in result["checks"].items():
        print(f"{'pass' if c['passed'] else 'FAIL'}: {name}: {c['detail']}")
    rss = result["rss_mib"]
    print(
        f"\nsoak {'passed' if result['passed'] else 'FAILED'}: {result['calls_ok']} of "
        f"{result['calls']} calls ok; RSS idle {rss['idle']} MiB, after warm-up "
        f"{rss['after_warmup']}, end {rss['end']}, after drain {rss['after_drain']}; "
        f"written to {args.output}"
    )
    return 0 if result["passed"] else 1


def bench_callees() -> int:
    """bench_cps.py's number of callees (50)."""
    return 50


if __name__ == "__main__":
    common.run_main(main, "soak")
