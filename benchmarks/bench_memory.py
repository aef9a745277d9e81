"""Memory per active bridged call: the switch's RSS idle and with N established calls
held open, next to the sippy B2BUA in the same run.

The calls are those of bench_cps.py (``scenarios/cps_uac.xml`` to a public number, K
registered extensions answering with ``cps_uas_answer.xml``; sippy: a plain UAS behind
its static route), set up at 200 calls/s and held (``-d``) until all N are established.
For each system and N (1,000 by default), in a fresh process pinned to core 1:

1. idle: the callees registered, no call; VmRSS from /proc/PID/status;
2. cycle 1: N calls up (the caller has ACKed all N, and the switch's /status lists N
   answered calls), 2 s later VmRSS: ``(VmRSS - idle) / N`` is the figure;
3. the calls end (BYE); once their transactions have expired (the switch lists none;
   sippy: 34 s, skipped after its last cycle), VmRSS again, and the switch must list
   no call and no media port;
4. cycle 2: the same again in the same process. RSS that grows again by as much in
   cycle 2 would be a leak: freed memory is not given back to the system, but it is
   reused. The figure is cycle 1's: it includes the call setup's transactions, which
   live up to 32 s (64*T1) after the call is established.

Writes benchmarks/results/memory.json and prints a Markdown table.
Run: ``make bench-memory`` (or ``python benchmarks/bench_memory.py [--calls N]``).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from calls import procs
from calls.procs import System
from calls.setup import Inputs, callees_for, write_inputs

SETUP_RATE: Final = 200
SETTLE_S: Final = 2.0
CYCLES: Final = 2
TRANSACTION_LINGER_S: Final = 34.0
TARGET_KB: Final = 50.0  # the issue: <= 50 KB per active bridged call


@dataclass
class Cycle:
    established: int
    rss_kib: int
    fds: int
    rss_after_kib: int
    calls_failed: int
    status_after: dict[str, Any] = field(default_factory=dict)  # b2bua: calls and ports left


@dataclass
class Measurement:
    system: System
    calls: int
    idle_rss_kib: int
    idle_fds: int
    cycles: list[Cycle]
    log: list[str] = field(default_factory=list)

    @property
    def kib_per_call(self) -> float:
        return (self.cycles[0].rss_kib - self.idle_rss_kib) / self.calls

    @property
    def kib_per_call_last(self) -> float:
        return (self.cycles[-1].rss_kib - self.idle_rss_kib) / self.calls


def b2bua_leftovers(sut: procs.Sut) -> dict[str, Any]:
    state = sut.get_status()
    return {
        "calls_active": state["calls"]["active"],
        "calls_finishing": state["calls"]["finishing"],
        "media_ports_allocated": state["media_ports"]["allocated"],
        "transactions": state["transactions"],
    }


def wait_transactions_gone(sut: procs.Sut) -> None:
    """Between cycles: let the finished calls' transactions expire (Timer J and the
    Accepted state keep them up to 64*T1 = 32 s), so that the next cycle shows whether
    the memory is reused. b2bua says when (/status); sippy gets the same 34 s."""
    deadline = time.monotonic() + TRANSACTION_LINGER_S + 10
    if sut.system != "b2bua":
        time.sleep(TRANSACTION_LINGER_S)
        return
    while sut.get_status()["transactions"] > 0 and time.monotonic() < deadline:
        time.sleep(0.5)


def measure(system: System, calls: int, inputs: Inputs, workdir: Path) -> Measurement:
    rundir = workdir / f"{system}-{calls}"
    setup_s = calls / SETUP_RATE
    hold_s = setup_s + 8  # every call is up before the first one ends
    stay_s = CYCLES * (2 * setup_s + hold_s + TRANSACTION_LINGER_S + 40) + 30
    sut = procs.start_sut(system, inputs, rundir)
    callee: procs.Sipp | None = None
    caller: procs.Sipp | None = None
    cycles: list[Cycle] = []
    try:
        callee = procs.start_callee(sut, inputs, rundir, stay_s=stay_s)
        procs.wait_registered(sut, callee, inputs.callees)
        time.sleep(SETTLE_S)
        idle, idle_fds = common.vm_rss_kib(sut.pid), common.open_fds(sut.pid)
        for cycle in range(CYCLES):
            command = procs.caller_command(
                sut, inputs, rate=SETUP_RATE, calls=calls, limit=calls,
                hold_ms=int(hold_s * 1000), timeout_s=2 * setup_s + hold_s + 30, counts=True,
            )  # fmt: skip
            caller = procs.start_sipp(f"caller-{cycle}", rundir, command, 2 * setup_s + hold_s + 30)
            procs.wait_answered(sut, caller, calls, setup_s + 30)
            established = procs.established_calls(caller)
            time.sleep(SETTLE_S)
            rss, fds = common.vm_rss_kib(sut.pid), common.open_fds(sut.pid)
            procs.wait_sipp(caller)
            time.sleep(SETTLE_S)
            if sut.system == "b2bua" or cycle < CYCLES - 1:
                wait_transactions_gone(sut)
            totals = procs.caller_totals(caller)
            cycles.append(
                Cycle(
                    established=established,
                    rss_kib=rss,
                    fds=fds,
                    rss_after_kib=common.vm_rss_kib(sut.pid),
                    calls_failed=calls - totals.successful,
                    status_after=b2bua_leftovers(sut) if system == "b2bua" else {},
                )
            )
            print(
                f"  {system} {calls} calls, cycle {cycle + 1}: idle {idle} KiB, with calls "
                f"{rss} KiB ({(rss - idle) / calls:.1f} KiB/call, {fds} fds), after "
                f"{cycles[-1].rss_after_kib} KiB, failed {cycles[-1].calls_failed}, "
                f"left {cycles[-1].status_after}",
                file=sys.stderr,
                flush=True,
            )
    finally:
        procs.stop_all(sut, caller, callee)
    return Measurement(system, calls, idle, idle_fds, cycles, sut.log_lines())


def table(measurements: list[Measurement]) -> list[str]:
    lines = common.table_head(
        "system", "calls", "idle RSS (MiB)", "RSS with calls, cycle 1 / 2 (MiB)",
        "per call, cycle 1 / 2 (KiB)", "RSS after hang-up, cycle 1 / 2 (MiB)", "failed calls",
    )  # fmt: skip
    for m in measurements:
        c1, c2 = m.cycles[0], m.cycles[-1]
        lines.append(
            f"| {m.system} | {m.calls} | {m.idle_rss_kib / 1024:.1f} "
            f"| {c1.rss_kib / 1024:.1f} / {c2.rss_kib / 1024:.1f} "
            f"| {m.kib_per_call:.1f} / {m.kib_per_call_last:.1f} "
            f"| {c1.rss_after_kib / 1024:.1f} / {c2.rss_after_kib / 1024:.1f} "
            f"| {sum(c.calls_failed for c in m.cycles)} |"
        )
    return lines


def parse_args() -> argparse.Namespace:
    parser = common.argument_parser(__doc__)
    parser.add_argument(
        "--calls", type=lambda s: [int(x) for x in s.split(",")], default=[1000],
        help="established calls, comma-separated",
    )  # fmt: skip
    parser.add_argument("--systems", default="b2bua,sippy", help="comma-separated")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    systems = procs.systems_to_run(args.systems)
    started = time.monotonic()
    measurements: list[Measurement] = []
    with common.work_directory("bench-memory-", keep=args.keep) as workdir:
        inputs = write_inputs(workdir, callees_for(max(args.calls)))
        for calls in args.calls:
            measurements.extend(measure(system, calls, inputs, workdir) for system in systems)
    ours = [m for m in measurements if m.system == "b2bua"]
    worst = max((m.kib_per_call for m in ours), default=None)
    result = procs.calls_result_head("memory", sippy=True) | {
        "method": "VmRSS of the system under test (pinned to core 1): idle with the callees "
        "registered, then with N established calls (2 s after the last ACK), per call = "
        "(with - idle) / N; two cycles of N calls in the same process",
        "calls_setup": f"SIPp cps_uac.xml at {SETUP_RATE}/s, held with -d; b2bua: public number "
        "-> registered extension (two RTP port pairs per call); sippy: static route, no RTP",
        "target_kib_per_call": TARGET_KB,
        "b2bua_worst_kib_per_call": None if worst is None else round(worst, 1),
        "target_met": worst is not None and worst * 1024 / 1000 <= TARGET_KB,
        "measurements": [
            asdict(m)
            | {
                "kib_per_call": round(m.kib_per_call, 1),
                "kib_per_call_last_cycle": round(m.kib_per_call_last, 1),
            }
            for m in measurements
        ],
        "duration_s": round(time.monotonic() - started, 1),
    }
    common.write_result("memory", result)
    print("\n".join(table(measurements)))
    print(f"\nb2bua: {worst} KiB per call at most (target <= {TARGET_KB:g} KB)")
    return 0


if __name__ == "__main__":
    common.run_main(main, "bench_memory")
