"""Concurrent G.711 calls the switch relays on one core, next to a raw uvloop datagram
forwarder (benchmarks/uv_forwarder.py, the ceiling for Python) in the same run.

Signalling (b2bua only): N calls set up with SIPp at 200 calls/s and held, the same
caller and callee scenarios as bench_cps.py (a public number, K registered extensions);
the relay ports of each call come from GET /status (``calls.list[].media_ports``: side
A, the caller's, and side B). The uvloop forwarder binds N such pairs itself.

Media: benchmarks/rtpgen.c (built by make with Debian's gcc) sends 172-byte RTP
packets (12-byte header, 160 bytes of PCMU) at 50 packets/s in each direction of each
call, evenly paced over the 20 ms, a send timestamp in each packet, with sendmmsg; it
receives with recvmmsg and takes the kernel's receive timestamp. The relay latches each
side to the generator's sockets during a 2 s warm-up that is not counted; then DURATION
seconds are counted: loss and one-way latency percentiles, both directions together.

The relay runs pinned to core 1, the generator (and SIPp) to core 0. A run passes when
loss < 0.1% AND p99 one-way latency < 10 ms (PEERS.md: loss alone hides seconds of
standing queue in default socket buffers). N passes on the median of 3 runs of 20 s.

Campaign: a sweep of single 10 s runs, N = 200, 300, ... for each system (alternating)
until one fails; then, for each system, the highest passing N and N + 50 run 3 times
for DURATION (20 s), the systems interleaved; where that N fails on its median, N - 50
runs 3 times, and so on down. The best is the highest N whose median of 3 passes.
CPU: utime+stime of /proc/PID/stat around the generator's run; CPU per packet divides
it by the packets the relay forwarded.

Writes benchmarks/results/relay.json and prints a Markdown table.
Run: ``make bench-relay`` (or ``python benchmarks/bench_relay.py [--quick]``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from calls import procs
from calls.setup import RTP_PORT_MIN, Inputs, callees_for, write_inputs

RTPGEN: Final = common.BENCH / "build" / "rtpgen"
FORWARDER: Final = common.BENCH / "uv_forwarder.py"
Relay = Literal["b2bua", "uvloop"]

MAX_LOSS: Final = 0.001
MAX_P99_US: Final = 10_000.0
WARMUP_S: Final = 2.0
DRAIN_S: Final = 0.5
SETUP_RATE: Final = 200
SWEEP_START: Final = 200
SWEEP_STEP: Final = 100
FINE_STEP: Final = 50
MAX_STEPS_DOWN: Final = 4
MAX_CALLS: Final = 2000
TARGET_SHARE: Final = 0.8  # the issue: >= 80% of the uvloop ceiling


@dataclass
class Run:
    relay: Relay
    calls: int
    duration_s: float
    loss: float
    p50_us: float
    p99_us: float
    p999_us: float
    max_us: float
    sent: int
    received: int
    relayed_packets: int
    relay_cpu_s: float
    relay_cpu_share: float
    generator_cpu_s: float
    send_lateness_p99_us: float
    busy_before: float
    calls_established: int
    generator: dict[str, Any] = field(default_factory=dict)
    relay_log: list[str] = field(default_factory=list)
    passed: bool = False
    why_not: str = ""

    @property
    def cpu_us_per_packet(self) -> float:
        return self.relay_cpu_s / max(self.relayed_packets, 1) * 1e6


def judge(run: Run) -> None:
    faults = []
    if run.calls_established < run.calls:
        faults.append(f"{run.calls_established} of {run.calls} calls set up")
    if run.loss >= MAX_LOSS:
        faults.append(f"loss {run.loss:.3%} >= 0.1%")
    if run.p99_us >= MAX_P99_US:
        faults.append(f"p99 {run.p99_us / 1000:.1f} ms >= 10 ms")
    run.passed = not faults
    run.why_not = "; ".join(faults)


def run_generator(pairs: list[tuple[int, int]], workdir: Path, duration: float) -> dict[str, Any]:
    pairs_file = workdir / "pairs.txt"
    pairs_file.write_text("".join(f"{a} {b}\n" for a, b in pairs))
    command = [
        "taskset", "-c", str(common.LOAD_CORE), str(RTPGEN), str(pairs_file), f"{duration:g}",
        f"{WARMUP_S:g}", f"{DRAIN_S:g}", "50", "172",
    ]  # fmt: skip
    (workdir / "rtpgen-command.txt").write_text(" ".join(command) + "\n")
    try:
        out = subprocess.run(
            command, capture_output=True, text=True, timeout=duration + WARMUP_S + 30, check=False
        )
    except subprocess.TimeoutExpired as exc:  # run() kills it by PID
        raise common.BenchError("rtpgen did not finish in time") from exc
    if out.returncode != 0:
        raise common.BenchError(f"rtpgen failed ({out.returncode}): {out.stderr[-1000:]}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def to_run(
    relay: Relay, calls: int, duration: float, gen: dict[str, Any], *, usage: common.CpuUsage,
    busy_before: float, established: int, log: list[str],
) -> Run:  # fmt: skip
    latency = gen["latency_us"]
    run = Run(
        relay=relay,
        calls=calls,
        duration_s=duration,
        loss=gen["loss"],
        p50_us=latency["p50"],
        p99_us=latency["p99"],
        p999_us=latency["p999"],
        max_us=latency["max"],
        sent=gen["sent"],
        received=gen["received"],
        relayed_packets=gen["total_received"],
        relay_cpu_s=usage.sut_cpu_s,
        relay_cpu_share=usage.sut_cpu_share,
        generator_cpu_s=gen["generator_cpu_s"],
        send_lateness_p99_us=gen["send_lateness_us"]["p99"],
        busy_before=busy_before,
        calls_established=established,
        generator=gen,
        relay_log=log,
    )
    judge(run)
    return run


def measure_b2bua(
    calls: int, duration: float, inputs: Inputs, workdir: Path, quiet_wait: float
) -> Run:
    busy_before = common.wait_for_quiet(quiet_wait)
    rundir = common.fresh_directory(workdir / f"b2bua-{calls}")
    setup_s = calls / SETUP_RATE + 20
    hold_s = setup_s + duration + WARMUP_S + 30
    sut = procs.start_b2bua(inputs, rundir)
    callee: procs.Sipp | None = None
    caller: procs.Sipp | None = None
    try:
        callee = procs.start_callee(sut, inputs, rundir, stay_s=hold_s + 10)
        procs.wait_registered(sut, callee, inputs.callees)
        command = procs.caller_command(
            sut, inputs, rate=SETUP_RATE, calls=calls, limit=calls,
            hold_ms=int(hold_s * 1000), timeout_s=hold_s + 10, counts=True,
        )  # fmt: skip
        caller = procs.start_sipp("caller", rundir, command, hold_s + 10)
        answered = procs.wait_answered(sut, caller, calls, setup_s)
        pairs = [(int(c["media_ports"][0]), int(c["media_ports"][1])) for c in answered]
        window = common.CpuWindow(sut.process)
        gen = run_generator(pairs, rundir, duration)
        usage = window.close()
        if usage.sut_exit is not None:
            raise common.BenchError(f"the switch exited: {sut.log_lines()}")
    finally:
        procs.stop_all(sut, caller, callee)
    return to_run(
        "b2bua", calls, duration, gen, usage=usage, busy_before=busy_before,
        established=len(pairs), log=sut.log_lines(),
    )  # fmt: skip


def measure_uvloop(calls: int, duration: float, workdir: Path, quiet_wait: float) -> Run:
    busy_before = common.wait_for_quiet(quiet_wait)
    rundir = common.fresh_directory(workdir / f"uvloop-{calls}")
    ready = rundir / "ready.json"
    command = [
        "taskset", "-c", str(common.SUT_CORE), str(common.PYTHON), str(FORWARDER),
        "--calls", str(calls), "--base-port", str(RTP_PORT_MIN), "--ready-file", str(ready),
        "--max-seconds", str(int(duration + WARMUP_S + 60)),
    ]  # fmt: skip
    (rundir / "forwarder-command.txt").write_text(" ".join(command) + "\n")
    process = common.popen(command, rundir, rundir / "forwarder.log")
    try:
        deadline = time.monotonic() + procs.READY_TIMEOUT
        while not ready.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise common.BenchError(f"the forwarder did not start: {process.poll()}")
            time.sleep(0.05)
        pairs = [(int(a), int(b)) for a, b in json.loads(ready.read_text())["pairs"]]
        time.sleep(0.3)
        window = common.CpuWindow(process)
        gen = run_generator(pairs, rundir, duration)
        usage = window.close()
    finally:
        common.stop(process)
    log = (rundir / "forwarder.log").read_text(errors="replace").splitlines()[:5]
    return to_run(
        "uvloop", calls, duration, gen, usage=usage, busy_before=busy_before,
        established=calls, log=log,
    )  # fmt: skip


def print_run(run: Run) -> None:
    verdict = "pass" if run.passed else f"FAIL ({run.why_not})"
    print(
        f"  {run.relay} {run.calls} calls, {run.duration_s:g} s: loss {run.loss:.4%}, latency "
        f"p50 {run.p50_us / 1000:.2f} / p99 {run.p99_us / 1000:.2f} / max "
        f"{run.max_us / 1000:.1f} ms, CPU {run.relay_cpu_share:.0%} "
        f"({run.cpu_us_per_packet:.1f} us/packet), generator {run.generator_cpu_s:.1f} s "
        f"(send lateness p99 {run.send_lateness_p99_us / 1000:.2f} ms): {verdict}",
        file=sys.stderr,
        flush=True,
    )
    for line in run.relay_log[:3]:
        print(f"    {line[:300]}", file=sys.stderr)


def summarize(runs: list[Run]) -> dict[str, Any]:
    loss = statistics.median(r.loss for r in runs)
    p99 = statistics.median(r.p99_us for r in runs)
    return {
        "relay": runs[0].relay,
        "calls": runs[0].calls,
        "duration_s": runs[0].duration_s,
        "runs": len(runs),
        "passed_runs": sum(r.passed for r in runs),
        "loss": loss,
        "p50_us": statistics.median(r.p50_us for r in runs),
        "p99_us": p99,
        "max_us": statistics.median(r.max_us for r in runs),
        "cpu_share": statistics.median(r.relay_cpu_share for r in runs),
        "cpu_us_per_packet": round(statistics.median(r.cpu_us_per_packet for r in runs), 2),
        "passed": loss < MAX_LOSS
        and p99 < MAX_P99_US
        and all(r.calls_established >= r.calls for r in runs),
    }


def table(summary: list[dict[str, Any]]) -> list[str]:
    lines = common.table_head(
        "relay", "calls", "run (s)", "runs", "loss (median)", "p50 / p99 latency (ms, median)",
        "relay CPU / wall", "CPU per packet (us)", "runs passed", "result",
    )  # fmt: skip
    for s in summary:
        lines.append(
            f"| {s['relay']} | {s['calls']} | {s['duration_s']:g} | {s['runs']} "
            f"| {s['loss']:.3%} | {s['p50_us'] / 1000:.2f} / {s['p99_us'] / 1000:.2f} "
            f"| {s['cpu_share']:.0%} | {s['cpu_us_per_packet']:.1f} "
            f"| {s['passed_runs']}/{s['runs']} | {'pass' if s['passed'] else 'fail'} |"
        )
    return lines


class Campaign:
    def __init__(self, args: argparse.Namespace, inputs: Inputs, workdir: Path) -> None:
        self.args = args
        self.inputs = inputs
        self.workdir = workdir
        self.runs: dict[tuple[Relay, int, float], list[Run]] = {}

    def once(self, relay: Relay, calls: int, duration: float) -> Run:
        if relay == "b2bua":
            run = measure_b2bua(calls, duration, self.inputs, self.workdir, self.args.quiet_wait)
        else:
            run = measure_uvloop(calls, duration, self.workdir, self.args.quiet_wait)
        self.runs.setdefault((relay, calls, duration), []).append(run)
        print_run(run)
        return run

    def sweep(self, relays: list[Relay]) -> dict[Relay, int | None]:
        """Single short runs climbing by SWEEP_STEP until one fails: the highest pass."""
        calls: dict[Relay, int] = dict.fromkeys(relays, self.args.start)
        top: dict[Relay, int | None] = dict.fromkeys(relays)
        climbing = set(relays)
        while climbing:
            for relay in relays:
                if relay not in climbing:
                    continue
                if self.once(relay, calls[relay], self.args.sweep_duration).passed:
                    top[relay] = calls[relay]
                    calls[relay] += SWEEP_STEP
                    if calls[relay] > MAX_CALLS:
                        climbing.discard(relay)
                else:
                    climbing.discard(relay)
        return top

    def confirm(self, relays: list[Relay], top: dict[Relay, int | None]) -> None:
        """3 runs of DURATION at the sweep's top and 50 above it, interleaved; where the
        top fails on its median, 50 below, and so on (at most MAX_STEPS_DOWN steps)."""
        duration = self.args.duration
        candidates: dict[Relay, int] = {}
        for relay in relays:
            candidates[relay] = top[relay] or self.args.start
        for _ in range(self.args.repeats):
            for offset in (0, FINE_STEP):
                for relay in relays:
                    self.once(relay, candidates[relay] + offset, duration)
        for _ in range(MAX_STEPS_DOWN):
            failing = [
                relay
                for relay in relays
                if not summarize(self.runs[(relay, candidates[relay], duration)])["passed"]
                and candidates[relay] - FINE_STEP >= FINE_STEP
            ]
            if not failing:
                return
            for relay in failing:
                candidates[relay] -= FINE_STEP
            for _ in range(self.args.repeats):
                for relay in failing:
                    self.once(relay, candidates[relay], duration)


def build_result(
    campaign: Campaign, relays: list[Relay], load_before: list[float]
) -> dict[str, Any]:
    summary = [
        summarize(runs)
        for (_relay, _calls, _duration), runs in sorted(
            campaign.runs.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1])
        )
    ]
    duration = campaign.args.duration
    best: dict[str, Any] = {}
    for relay in relays:
        confirmed = [s for s in summary if s["relay"] == relay and s["duration_s"] == duration]
        passing = [s for s in confirmed if s["passed"]]
        if not passing:  # fall back on the sweep's single runs
            passing = [s for s in summary if s["relay"] == relay and s["passed"]]
        top = max(passing, key=lambda s: s["calls"]) if passing else None
        best[relay] = {
            "max_calls": top["calls"] if top else None,
            "from": None if top is None else f"{top['runs']} run(s) of {top['duration_s']:g} s",
            "cpu_us_per_packet": top["cpu_us_per_packet"] if top else None,
            "cpu_share": top["cpu_share"] if top else None,
            "p99_us": top["p99_us"] if top else None,
            "loss": top["loss"] if top else None,
        }
    ours, ceiling = best.get("b2bua", {}), best.get("uvloop", {})
    share = common.ratio(ours.get("max_calls"), ceiling.get("max_calls"), 3)
    return procs.calls_result_head("relay", sippy=False) | {
        "media": "172-byte RTP (PCMU, 20 ms), 50 packets/s each way per call, evenly paced, "
        "send timestamp in each packet; kernel receive timestamps",
        "pinning": {"load_core": common.LOAD_CORE, "relay_core": common.SUT_CORE},
        "pass_rule": "loss < 0.1% and p99 one-way latency < 10 ms, on the median of the runs "
        f"({campaign.args.repeats} runs of {duration:g} s; the sweep: 1 run of "
        f"{campaign.args.sweep_duration:g} s)",
        "warmup_s": WARMUP_S,
        "commands": {
            "rtpgen": "taskset -c 0 benchmarks/build/rtpgen PAIRS_FILE DURATION 2 0.5 50 172",
            "uvloop": "taskset -c 1 .venv/bin/python benchmarks/uv_forwarder.py --calls N "
            f"--base-port {RTP_PORT_MIN} --ready-file F",
            "b2bua": "taskset -c 1 .venv/bin/b2bua run --config switch.toml (benchmarks/calls/"
            "setup.py, rtp_timeout = 0); calls: SIPp cps_uac.xml at "
            f"{SETUP_RATE}/s held, callees cps_uas_register.xml + cps_uas_answer.xml",
        },
        "load_average_before": load_before,
        "best": best,
        "share_of_uvloop_ceiling": share,
        "target_share": TARGET_SHARE,
        "target_met": share is not None and share >= TARGET_SHARE,
        "summary": summary,
        "runs": [
            asdict(r) | {"cpu_us_per_packet": round(r.cpu_us_per_packet, 2)}
            for runs in campaign.runs.values()
            for r in runs
        ],
    }


def parse_args() -> argparse.Namespace:
    parser = common.argument_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="100 calls, 5 s, each relay")
    parser.add_argument("--relays", default="b2bua,uvloop", help="comma-separated")
    parser.add_argument("--start", type=int, default=SWEEP_START)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per counted run")
    parser.add_argument("--sweep-duration", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calls", type=int, default=None, help="only this N (no sweep)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--quiet-wait", type=float, default=60.0)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    relays: list[Relay] = [r for r in ("b2bua", "uvloop") if r in args.relays.split(",")]
    procs.check_tools(sippy=False)
    if not RTPGEN.exists():
        raise common.BenchError(f"{RTPGEN} not found (make bench-relay builds it)")
    load_before = common.load_average()
    started = time.monotonic()
    with common.work_directory("bench-relay-", keep=args.keep) as workdir:
        inputs = write_inputs(workdir, callees_for(MAX_CALLS + FINE_STEP))
        campaign = Campaign(args, inputs, workdir)
        if args.quick:
            for relay in relays:
                campaign.once(relay, 100, 5.0)
        elif args.calls is not None:
            for _ in range(args.repeats):
                for relay in relays:
                    campaign.once(relay, args.calls, args.duration)
        else:
            campaign.confirm(relays, campaign.sweep(relays))
    result = build_result(campaign, relays, load_before)
    result["duration_s"] = round(time.monotonic() - started, 1)
    if not args.quick and args.calls is None:
        common.write_result("relay", result)
    print("\n".join(table(result["summary"])))
    print(
        f"\nbest: {json.dumps(result['best'])}\nb2bua / uvloop ceiling: "
        f"{result['share_of_uvloop_ceiling']} (target {TARGET_SHARE})"
    )
    if args.quick:
        return 0 if all(r.passed for runs in campaign.runs.values() for r in runs) else 1
    return 0


if __name__ == "__main__":
    common.run_main(main, "bench_relay")
