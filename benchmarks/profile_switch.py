"""Profile the switch under SIPp load: where its CPU goes at a given call rate.

The calls are bench_cps.py's (``scenarios/cps_uac.xml`` to public numbers that reach 50
registered extensions, 1 s hold, 20 ms of ringing), at ``--rate`` calls/s (default: the
highest passing rate of benchmarks/results/cps.json, the switch's maximum), the switch
pinned to core 1, SIPp to core 0. After ``--warmup`` s of load, py-spy (``py-spy record
--nonblocking``, pinned to core 0 with SIPp; built by ``make benchmarks/build/venv-tools``
into its own virtual environment) samples the switch's threads for ``--duration`` s at
``--hz`` samples/s and writes a speedscope profile. Where py-spy cannot attach (it needs
ptrace: ``CAP_SYS_PTRACE`` or ``kernel.yama.ptrace_scope`` 0), or with ``--profiler
cprofile``, the switch runs instead with cProfile inside it (``profile_hook/
sitecustomize.py`` through ``PYTHONPATH``, started by SIGUSR1 after the warm-up and
stopped by SIGUSR2; CPU time, main thread only, several times slower: read its shares,
not its times).

Writes ``benchmarks/results/profile.speedscope.json`` (open it in https://www.speedscope.app
or ``speedscope FILE``) or ``profile.prof`` (``python -m pstats``), and
``benchmarks/results/profile.json`` (the top functions by own time and by total time,
the rate, the calls' outcome, the commands); prints the top ``--top`` (15) by own time.
``--output-dir`` writes elsewhere (a smoke run should).

Run: ``make profile`` (or ``python benchmarks/profile_switch.py [--rate N] [--duration S]``).
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from calls import procs
from calls.setup import Inputs, write_inputs

PY_SPY_BUILD: Final = common.BENCH / "build" / "venv-tools" / "bin" / "py-spy"
HOOK: Final = common.BENCH / "profile_hook"
CALLEES: Final = 50
HOLD_MS: Final = 1000
DURATION: Final = 30.0
WARMUP: Final = 5.0
HZ: Final = 100
TOP: Final = 15


def py_spy() -> str | None:
    if PY_SPY_BUILD.exists():
        return str(PY_SPY_BUILD)
    return shutil.which("py-spy")


# -- reading the profiles


def speedscope_top(path: Path, top: int) -> dict[str, Any]:
    """Own and total samples per function (name and file; lines merged) over every
    thread of py-spy's speedscope file; shares of all samples."""
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    threads: Counter[str] = Counter()  # py-spy's weights: seconds of CPU per sample
    samples = 0.0
    unit = "samples"
    for profile in data["profiles"]:
        unit = str(profile.get("unit", unit))
        weights = profile.get("weights") or [1] * len(profile["samples"])
        for stack, weight in zip(profile["samples"], weights, strict=False):
            if not stack:
                continue
            names = [label(frames[i]) for i in stack]
            own[names[-1]] += weight
            for name in set(names):
                total[name] += weight
            threads[profile.get("name", "?")] += weight
            samples += weight
    if samples == 0:
        raise common.BenchError(f"no samples in {path}")
    return {
        "sampled": f"{samples:.2f} {unit}",
        "threads": {name: round(n / samples, 3) for name, n in threads.most_common()},
        "top_own": [
            {"function": f, "share": round(n / samples, 4)} for f, n in own.most_common(top)
        ],
        "top_total": [
            {"function": f, "share": round(n / samples, 4)} for f, n in total.most_common(top)
        ],
    }


def label(frame: dict[str, Any]) -> str:
    """``function (path)``, the path relative to the checkout or to site-packages."""
    name = str(frame.get("name", "?"))
    file = short_path(str(frame.get("file", "")))
    return f"{name} ({file})" if file else name


def short_path(file: str) -> str:
    for marker in (str(common.ROOT) + "/", "site-packages/", "/lib/python3."):
        if marker in file:
            rest = file.split(marker, 1)[1]
            return "python3." + rest if marker.startswith("/lib/python3.") else rest
    return file


def cprofile_top(path: Path, top: int) -> dict[str, Any]:
    """Own (tottime) and total (cumtime) shares per function from cProfile's file."""
    stats = pstats.Stats(str(path))
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    rows = [
        (f"{func} ({short_path(file)})" if file != "~" else func, tottime, cumtime)
        for (file, _line, func), (_cc, _nc, tottime, cumtime, _callers) in table.items()
    ]
    whole = sum(r[1] for r in rows) or 1.0
    by_own = sorted(rows, key=lambda r: r[1], reverse=True)[:top]
    by_total = sorted(rows, key=lambda r: r[2], reverse=True)[:top]
    return {
        "sampled": f"{whole:.2f} s (cProfile's own times, inflated by its overhead)",
        "threads": {"MainThread": 1.0},
        "top_own": [{"function": f, "share": round(t / whole, 4)} for f, t, _ in by_own],
        "top_total": [{"function": f, "share": round(c / whole, 4)} for f, _, c in by_total],
    }


# -- one profiled run


def profile_window(
    args: argparse.Namespace, pid: int, profiler: str, speedscope: Path, prof_file: Path
) -> tuple[list[str], subprocess.CompletedProcess[str] | None]:
    """Profile the running switch for args.duration: py-spy attached to it, or the
    cProfile hook inside it started and stopped by signals. The profiler's command, and
    py-spy's outcome."""
    if profiler == "py-spy":
        speedscope.unlink(missing_ok=True)
        command = [
            "taskset", "-c", str(common.LOAD_CORE), str(py_spy()), "record",
            "-p", str(pid), "-d", str(int(args.duration)), "-r", str(args.hz),
            "--nonblocking", "-f", "speedscope", "-o", str(speedscope),
        ]  # fmt: skip
        spy = subprocess.run(
            command, capture_output=True, text=True, timeout=args.duration + 60, check=False
        )
        return command, spy
    os.kill(pid, signal.SIGUSR1)  # profile_hook: start
    time.sleep(args.duration)
    os.kill(pid, signal.SIGUSR2)  # stop and write the file
    deadline = time.monotonic() + 30
    while not prof_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)  # written from a signal handler: let it finish
    return [f"PYTHONPATH={HOOK.relative_to(common.ROOT)}", f"B2BUA_CPROFILE={prof_file}"], None


def run(
    args: argparse.Namespace, inputs: Inputs, workdir: Path, profiler: str, out_dir: Path
) -> dict[str, Any]:
    """Load the switch at args.rate, profile it with ``profiler``; the figures."""
    rundir = workdir / profiler
    prof_file = out_dir / "profile.prof"
    env = None
    if profiler == "cprofile":
        paths = [str(HOOK), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths), B2BUA_CPROFILE=str(prof_file))
        prof_file.unlink(missing_ok=True)
    seconds = args.warmup + args.duration + 2
    calls = max(1, round(args.rate * seconds))
    sut = procs.start_sut("b2bua", inputs, rundir, env)
    callee: procs.Sipp | None = None
    caller: procs.Sipp | None = None
    speedscope = out_dir / "profile.speedscope.json"
    try:
        callee = procs.start_callee(sut, inputs, rundir, stay_s=seconds + 40)
        procs.wait_registered(sut, callee, inputs.callees)
        caller_cmd = procs.caller_command(
            sut, inputs, rate=args.rate, calls=calls, limit=max(200, int(4 * args.rate)),
            hold_ms=HOLD_MS, timeout_s=seconds + 30,
        )  # fmt: skip
        caller = procs.start_sipp("caller", rundir, caller_cmd, seconds + 30)
        time.sleep(args.warmup)
        cpu_before = sut.cpu_seconds()
        command, spy = profile_window(args, sut.pid, profiler, speedscope, prof_file)
        cpu_share = (sut.cpu_seconds() - cpu_before) / args.duration
        sipp_exit = procs.wait_sipp(caller)
    finally:
        procs.stop_all(sut, caller, callee)
    if profiler == "py-spy":
        assert spy is not None
        if spy.returncode != 0 or not speedscope.exists():
            raise AttachError(f"py-spy exit {spy.returncode}: {(spy.stderr or '')[-600:]}")
        figures = speedscope_top(speedscope, args.top)
        figures["file"] = str(
            speedscope.relative_to(common.ROOT)
            if speedscope.is_relative_to(common.ROOT)
            else speedscope
        )
    else:
        if not prof_file.exists():
            raise common.BenchError(f"cProfile wrote no {prof_file}: {sut.log_lines()}")
        figures = cprofile_top(prof_file, args.top)
        figures["file"] = str(prof_file)
    totals = procs.caller_totals(caller)
    return figures | {
        "profiler": profiler,
        "switch_cpu_share": round(cpu_share, 3),
        "calls": {
            "planned": calls,
            "successful": totals.successful,
            "failed": totals.failed,
            "achieved": totals.achieved,
            "setup_ms": totals.setup_ms,
            "sipp_exit": sipp_exit,
        },
        "commands": {
            "profiler": " ".join(command),
            "caller": (caller.workdir / "command.txt").read_text().strip(),
        },
    }


class AttachError(common.BenchError):
    """py-spy could not profile the switch."""


def print_top(figures: dict[str, Any]) -> None:
    print(f"\ntop {len(figures['top_own'])} by own time ({figures['profiler']}):")
    print("| own | function |")
    print("|---|---|")
    for row in figures["top_own"]:
        print(f"| {row['share']:.1%} | `{row['function']}` |")
    print("\nby total time (the function and what it calls):")
    for row in figures["top_total"][:10]:
        print(f"  {row['share']:6.1%}  {row['function']}")
    print(f"threads: {figures['threads']}")


def parse_args() -> argparse.Namespace:
    parser = common.argument_parser(__doc__)
    parser.add_argument("--rate", type=float, help="calls/s (default: cps.json's best)")
    parser.add_argument("--duration", type=float, default=DURATION, help="seconds profiled")
    parser.add_argument("--warmup", type=float, default=WARMUP)
    parser.add_argument("--hz", type=int, default=HZ, help="py-spy's samples per second")
    parser.add_argument("--top", type=int, default=TOP)
    parser.add_argument(
        "--profiler", choices=("auto", "py-spy", "cprofile"), default="auto",
        help="auto: py-spy, cProfile when py-spy is missing or cannot attach",
    )  # fmt: skip
    parser.add_argument("--output-dir", type=Path, default=common.RESULTS)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    procs.check_tools(sippy=False)
    if args.rate is None:
        args.rate = float(common.best_cps_rate())
    profiler = args.profiler
    if profiler == "auto":
        profiler = "py-spy" if py_spy() else "cprofile"
    elif profiler == "py-spy" and not py_spy():
        raise common.BenchError("py-spy not found (make benchmarks/build/venv-tools/.installed)")
    out_dir: Path = args.output_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"profile: {args.rate:g} calls/s, {args.duration:g} s after {args.warmup:g} s, {profiler}",
        file=sys.stderr,
        flush=True,
    )
    with common.work_directory("profile-", keep=args.keep) as workdir:
        inputs = write_inputs(workdir, CALLEES)
        try:
            figures = run(args, inputs, workdir, profiler, out_dir)
        except AttachError as exc:
            if args.profiler != "auto":
                raise
            print(f"{exc}; falling back to cProfile", file=sys.stderr)
            figures = run(args, inputs, workdir, "cprofile", out_dir)
    result = (
        common.result_head("profile")
        | common.machine_details()
        | {
            "command": "make profile",
            "rate": args.rate,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "hz": args.hz,
        }
        | figures
    )
    path = out_dir / "profile.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print_top(figures)
    calls = figures["calls"]
    print(
        f"\n{calls['successful']} of {calls['planned']} calls ok at {calls['achieved']}/s; "
        f"switch CPU {figures['switch_cpu_share']:.0%} of its core; written to {path} and "
        f"{figures['file']}"
    )
    return 0


if __name__ == "__main__":
    common.run_main(main, "profile")
