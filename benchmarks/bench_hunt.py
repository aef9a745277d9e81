"""Hunting under load: how late member INVITEs leave against the hunt's plan with 200
calls hunting at once, and calls per second through a linear hunt whose first two
members are busy; each next to plain calls to an extension in the same run.

1. Lateness. Four staggered groups, each of three members starting at 0, 0.5 and 1.0 s,
   a group timeout of 3 s, then ``hangup`` (480). The members are registered extensions
   (``max_calls = 100``) played by one SIPp process whose out-of-call scenario
   (``scenarios/hunt_uas_ring.xml``) rings (180) and never answers, then takes the
   CANCEL (200, 487, ACK). One SIPp caller (``scenarios/hunt_uac_480.xml``) places 200
   calls at 200 calls/s to the groups' public numbers in turn (no authentication), so
   all 200 hunt at once from 1 s to 3 s, and expects 480. Its From display name is the
   call number, which the switch copies into the member INVITEs. Plan of a member INVITE
   = the time the caller sent its INVITE + the member's start delay; lateness = the time
   the member's INVITE arrived - plan. Times: SIPp's -trace_msg logs of the caller and
   the members (one clock, one machine, microseconds; each taken by SIPp as it writes
   the message out or reads it in). The floor: the same 200 calls to the same members'
   own public numbers (a plain call, offset 0, no hunt; ``[calls] ring_timeout`` = the
   group timeout, so it also ends in CANCEL and 480). Hunt and plain runs alternate,
   three each; the figures pool their INVITEs. A run during which other processes took
   more than 0.15 of a core (this VM is shared) is run again, up to 3 times, and not
   counted. Target: p99 <= 20 ms.
2. Calls per second. 50 linear groups of three members: the two busy members (shared,
   ``max_calls = 1``), each on one long call through the switch for the whole run (a
   SIPp caller holds a call to each, answered by a SIPp phone registered as both; the
   switch's /status must show both ``talking`` before the run and after it), then the
   group's own third member, which answers as in bench_cps.py. The caller dials the
   groups' public numbers in turn with bench_cps.py's call and pass rule; the plain
   reference is bench_cps.py's own b2bua measurement (``bench_cps.measure``). The busy
   phones' -trace_msg log must show no INVITE but their own call's: a busy member is
   skipped without an INVITE. Each variant climbs by 25 calls/s until a rate fails,
   plain and hunt interleaved; then each one's highest passing rate runs twice more
   (stepping down while it fails most of its runs); the best is the highest rate passing
   most of three runs. The ratio is hunt / plain.

The switch runs pinned to core 1, every SIPp to core 0. Writes benchmarks/results/hunt.json
and prints Markdown tables. Run: ``make bench-hunt`` (or ``python benchmarks/bench_hunt.py
[--quick]``); about 5 minutes.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_cps
import common
from calls import procs
from calls.setup import (
    FIRST_CALLEE,
    FIRST_NUMBER,
    Inputs,
    extension_lines,
    group_lines,
    public_number_lines,
    switch_lines,
    write_callees_csv,
    write_inputs,
    write_numbers_csv,
)

Kind = Literal["hunt", "plain"]

FIRST_GROUP_NUMBER: Final = 5560000
HANGUP: Final = ('no_answer = "hangup"', 'timeout = "hangup"')

# -- 1. lateness
OFFSETS: Final = (0.0, 0.5, 1.0)  # the staggered members' start delays (s)
GROUP_TIMEOUT: Final = 3.0
LATENESS_GROUPS: Final = 4  # 50 calls each: each member rings for at most 50 at once
LATENESS_CALLS: Final = 200
LATENESS_RATE: Final = 200  # calls/s: 200 calls in 1 s, all hunting from 1 s to 3 s
LATENESS_REPEATS: Final = 3
TARGET_P99_MS: Final = 20.0
DISTURBED_CORES: Final = 0.15  # other processes' CPU / wall above this: run again
RERUNS: Final = 3

# -- 2. calls per second
BUSY_MEMBERS: Final = 2
CPS_START: Final = 150
CPS_STEP: Final = 25
CPS_MIN: Final = 25
CPS_MAX: Final = 1000
CPS_REPEATS: Final = 3
MAX_STEPS_DOWN: Final = 3
QUICK_RATE: Final = 25  # --quick: 250 calls per variant (SIPp writes -trace_rtt every 200)
BUSY_TIMEOUT: Final = 15.0

SEPARATOR: Final = "-" * 47 + " "  # before each message of a -trace_msg log
FROM_DISPLAY: Final = re.compile(r'^(?:From|f)\s*:\s*"(\d+)"', re.I | re.M)
TO_USER: Final = re.compile(r"^(?:To|t)\s*:[^<\n]*<sip:([^@>;]+)@", re.I | re.M)
REQUEST_USER: Final = re.compile(r"^INVITE sip:([^@;> ]+)@")


# -- inputs


@dataclass(frozen=True)
class LatenessInputs:
    """The lateness config and, per kind, the caller's numbers; the member extensions'
    planned offsets and, per number dialled, the members its call must ring."""

    inputs: dict[Kind, Inputs]
    offsets: dict[Kind, dict[str, float]]  # member extension -> start delay (s)
    rings: dict[str, list[str]]  # number dialled -> the extensions it rings


def write_lateness_inputs(directory: Path, groups: int) -> LatenessInputs:
    """Member extensions (max_calls 100) with their own public numbers (the floor) and
    ``groups`` staggered groups of len(OFFSETS) members each (the hunt)."""
    directory.mkdir(parents=True, exist_ok=True)
    members = [FIRST_CALLEE + i for i in range(groups * len(OFFSETS))]
    lines = switch_lines(directory / "data", ring_timeout=GROUP_TIMEOUT)
    for number in members:
        lines += extension_lines(number)
    for index, number in enumerate(members):
        lines += public_number_lines(FIRST_NUMBER + index, number)
    rings: dict[str, list[str]] = {
        str(FIRST_NUMBER + index): [str(n)] for index, n in enumerate(members)
    }
    hunt_offsets: dict[str, float] = {}
    for group in range(groups):
        own = members[group * len(OFFSETS) : (group + 1) * len(OFFSETS)]
        lines += group_lines(
            f"stagger{group}", FIRST_GROUP_NUMBER + group, list(zip(own, OFFSETS, strict=True)),
            strategy="staggered", group_timeout=GROUP_TIMEOUT, destinations=HANGUP,
        )  # fmt: skip
        rings[str(FIRST_GROUP_NUMBER + group)] = [str(n) for n in own]
        hunt_offsets |= {str(n): offset for n, offset in zip(own, OFFSETS, strict=True)}
    config = directory / "switch.toml"
    config.write_text("\n".join(lines) + "\n")
    callees = write_callees_csv(directory / "callees.csv", members)
    numbers: dict[Kind, Path] = {
        "hunt": write_numbers_csv(
            directory / "groups.csv", range(FIRST_GROUP_NUMBER, FIRST_GROUP_NUMBER + groups)
        ),
        "plain": write_numbers_csv(
            directory / "numbers.csv", range(FIRST_NUMBER, FIRST_NUMBER + len(members))
        ),
    }
    return LatenessInputs(
        inputs={k: Inputs(config, callees, v, len(members)) for k, v in numbers.items()},
        offsets={"hunt": hunt_offsets, "plain": dict.fromkeys(map(str, members), 0.0)},
        rings=rings,
    )


@dataclass(frozen=True)
class HuntCpsInputs:
    """The hunt cps config: ``thirds`` (one group each, its third member) takes the
    measured calls; ``busy`` registers the two busy members and places their calls."""

    thirds: Inputs  # callees: the third members; numbers: the groups'
    busy: Inputs  # callees: the busy members; numbers: their own public numbers
    busy_numbers: list[str]  # the busy members' extensions


def write_hunt_cps_inputs(directory: Path, groups: int) -> HuntCpsInputs:
    """``groups`` linear groups [busy 1, busy 2, third member of the group]."""
    directory.mkdir(parents=True, exist_ok=True)
    thirds = [FIRST_CALLEE + i for i in range(groups)]
    busy = [FIRST_CALLEE + groups + i for i in range(BUSY_MEMBERS)]
    busy_public = [FIRST_NUMBER + groups + i for i in range(BUSY_MEMBERS)]
    lines = switch_lines(directory / "data")
    for number in thirds:
        lines += extension_lines(number)
    for number in busy:
        lines += extension_lines(number, max_calls=1)
    for public, number in zip(busy_public, busy, strict=True):
        lines += public_number_lines(public, number)
    for group, third in enumerate(thirds):
        members: list[tuple[int, float | None]] = [(n, None) for n in [*busy, third]]
        lines += group_lines(
            f"linear{group}", FIRST_GROUP_NUMBER + group, members, strategy="linear"
        )
    config = directory / "switch.toml"
    config.write_text("\n".join(lines) + "\n")
    group_numbers = range(FIRST_GROUP_NUMBER, FIRST_GROUP_NUMBER + groups)
    return HuntCpsInputs(
        thirds=Inputs(
            config,
            write_callees_csv(directory / "callees.csv", thirds),
            write_numbers_csv(directory / "groups.csv", group_numbers),
            len(thirds),
        ),
        busy=Inputs(
            config,
            write_callees_csv(directory / "busy-callees.csv", busy),
            write_numbers_csv(directory / "busy-numbers.csv", busy_public),
            len(busy),
        ),
        busy_numbers=[str(n) for n in busy],
    )


# -- SIPp's -trace_msg logs


@dataclass(frozen=True, slots=True)
class Traced:
    at: float  # seconds (the log's local time read as UTC: only differences count)
    sent: bool
    text: str


def traced_messages(path: Path | None) -> Iterator[Traced]:
    """The messages of a SIPp -trace_msg log: each after a line of dashes and the time
    (microseconds), then "UDP message sent (...)" or "... received [...]"."""
    if path is None or not path.exists():
        return
    for chunk in path.read_text(errors="replace").split(SEPARATOR)[1:]:
        stamp, _, rest = chunk.partition("\n")
        what, _, message = rest.partition("\n")
        at = datetime.strptime(stamp.strip(), "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
        yield Traced(at.timestamp(), "message sent" in what, message.lstrip("\r\n"))


def invites(path: Path | None, *, sent: bool) -> Iterator[tuple[float, str]]:
    """(time, text) of each INVITE the log sent (``sent``) or received."""
    for message in traced_messages(path):
        if message.sent == sent and message.text.startswith("INVITE "):
            yield message.at, message.text


def header(pattern: re.Pattern[str], text: str) -> str | None:
    found = pattern.search(text)
    return found.group(1) if found else None


@dataclass
class Timings:
    """Member INVITEs tied to their callers' INVITEs."""

    lateness_ms: dict[str, list[float]]  # "0", "0.5", "1" (the offset) -> ms late
    from_first_ms: list[float]  # delayed INVITEs: late against the call's offset-0 INVITE
    member_invites: int
    missing: int  # member INVITEs planned but not seen
    unplanned: int  # member INVITEs of no known call or member
    retransmitted: int  # member INVITEs seen again (the switch retransmitted)
    caller_invites: int


def timings(
    caller_log: Path | None, members_log: Path | None, offsets: dict[str, float],
    rings: dict[str, list[str]],
) -> Timings:  # fmt: skip
    """Lateness of each member INVITE: arrival - (its caller's INVITE sent + offset)."""
    sent: dict[str, tuple[float, str]] = {}  # call number -> first INVITE sent, number
    for at, text in invites(caller_log, sent=True):
        call, number = header(FROM_DISPLAY, text), header(REQUEST_USER, text)
        if call is not None and number is not None:
            sent.setdefault(call, (at, number))
    arrived: dict[tuple[str, str], float] = {}  # (call, member) -> first arrival
    seen = unplanned = 0
    for at, text in invites(members_log, sent=False):
        call, member = header(FROM_DISPLAY, text), header(TO_USER, text)
        seen += 1
        if call is None or member is None or call not in sent or member not in offsets:
            unplanned += 1
            continue
        arrived.setdefault((call, member), at)
    lateness: dict[str, list[float]] = {}
    from_first: list[float] = []
    missing = 0
    for call, (at, number) in sent.items():
        first: float | None = None
        for member in rings.get(number, []):
            came = arrived.get((call, member))
            if came is None:
                missing += 1
                continue
            offset = offsets[member]
            lateness.setdefault(f"{offset:g}", []).append((came - at - offset) * 1000)
            if offset == 0:
                first = came
            elif first is not None:
                from_first.append((came - first - offset) * 1000)
    return Timings(
        lateness_ms=lateness,
        from_first_ms=from_first,
        member_invites=len(arrived),
        missing=missing,
        unplanned=unplanned,
        retransmitted=seen - unplanned - len(arrived),
        caller_invites=len(sent),
    )


def figures(values: Sequence[float]) -> dict[str, float]:
    """p50, p99, max, min (ms, 2 decimals) and count."""
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    return {
        "p50": round(common.percentile(ordered, 0.5), 2),
        "p99": round(common.percentile(ordered, 0.99), 2),
        "max": round(ordered[-1], 2),
        "min": round(ordered[0], 2),
        "count": len(ordered),
    }


def grouped(lateness: dict[str, list[float]], from_first: list[float]) -> dict[str, list[float]]:
    """The samples by what they say: all INVITEs, the offset-0 ones (signalling), the
    delayed ones (timers) and each offset."""
    delayed = [v for k, vs in lateness.items() if k != "0" for v in vs]
    groups = {"all": [v for vs in lateness.values() for v in vs], "offset 0": lateness.get("0", [])}
    if delayed:
        groups["delayed"] = delayed
        groups |= {f"offset {k}": vs for k, vs in sorted(lateness.items()) if k != "0"}
        groups["delayed, from the offset-0 INVITE"] = from_first
    return groups


# -- 1. lateness runs


def steal_seconds() -> float:
    """Time the hypervisor gave neither core to this VM (steal, /proc/stat), since boot."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / common.CLOCK_TICKS if len(fields) > 8 else 0.0


@dataclass
class LatenessRun:
    kind: Kind
    calls: int
    rate: int
    successful: int
    failed: int
    sipp_exit: int | None
    figures: dict[str, dict[str, float]]
    member_invites: int
    missing: int
    unplanned: int
    retransmitted: int
    sut_cpu_share: float
    wall_s: float
    sipp_cpu_s: float  # the caller and the members
    other_busy_s: float  # busy seconds on both cores that were neither SIPp nor the switch
    steal_s: float  # both cores' time taken by the hypervisor during the run
    busy_before: float
    failure_kinds: dict[str, int] = field(default_factory=dict)
    sut_log: list[str] = field(default_factory=list)
    caller_errors: list[str] = field(default_factory=list)
    callee_errors: list[str] = field(default_factory=list)
    samples: dict[str, list[float]] = field(default_factory=dict, repr=False)
    disturbed: bool = False  # other processes took more than DISTURBED_CORES
    counted: bool = True  # in the pooled figures (a disturbed run that was run again: not)
    passed: bool = False
    faults: list[str] = field(default_factory=list)
    why_not: str = ""

    def record(self) -> dict[str, Any]:
        """What the result file keeps (not the samples)."""
        return {k: v for k, v in asdict(self).items() if k != "samples"}


def measure_lateness(
    kind: Kind, setup: LatenessInputs, workdir: Path, *, calls: int, rate: int,
    quiet_wait: float, index: int,
) -> LatenessRun:  # fmt: skip
    busy_before = common.wait_for_quiet(quiet_wait)
    inputs = setup.inputs[kind]
    placing = calls / rate
    stay = placing + GROUP_TIMEOUT + 30
    rundir = common.fresh_directory(workdir / f"lateness-{kind}-{index}")
    sut = procs.start_sut("b2bua", inputs, rundir)
    callee: procs.Sipp | None = None
    caller: procs.Sipp | None = None
    try:
        callee = procs.start_callee(
            sut, inputs, rundir, stay, answer="hunt_uas_ring.xml", extra=["-trace_msg"]
        )
        procs.wait_registered(sut, callee, inputs.callees)
        time.sleep(0.3)
        window = common.CpuWindow(sut.process, [callee.process])
        steal = steal_seconds()
        command = procs.caller_command(
            sut, inputs, rate=rate, calls=calls, limit=calls, hold_ms=0,
            timeout_s=placing + GROUP_TIMEOUT + 20, scenario="hunt_uac_480.xml",
            extra=["-trace_msg"],
        )  # fmt: skip
        caller = procs.start_sipp("caller", rundir, command, placing + GROUP_TIMEOUT + 20)
        sipp_exit = procs.wait_sipp(caller)
        usage = window.close()
        steal = steal_seconds() - steal
        time.sleep(0.5)  # the members' 487 and ACK
    finally:
        procs.stop_all(sut, caller, callee)
    totals = procs.caller_totals(caller)
    timed = timings(
        caller.file("messages.log"), callee.file("messages.log"), setup.offsets[kind],
        setup.rings,
    )  # fmt: skip
    samples = grouped(timed.lateness_ms, timed.from_first_ms)
    run = LatenessRun(
        kind=kind,
        calls=calls,
        rate=rate,
        successful=totals.successful,
        failed=totals.failed,
        sipp_exit=sipp_exit,
        figures={name: figures(values) for name, values in samples.items()},
        member_invites=timed.member_invites,
        missing=timed.missing,
        unplanned=timed.unplanned,
        retransmitted=timed.retransmitted,
        sut_cpu_share=usage.sut_cpu_share,
        wall_s=usage.wall_s,
        sipp_cpu_s=usage.sipp_cpu_s,
        other_busy_s=usage.other_busy_s,
        steal_s=round(steal, 2),
        busy_before=busy_before,
        failure_kinds=totals.failure_kinds,
        sut_log=sut.log_lines(),
        caller_errors=procs.error_lines(caller),
        callee_errors=procs.error_lines(callee),
        samples=samples,
    )
    failed = calls - totals.successful
    checks: list[common.Check] = [
        (
            usage.sut_exit is not None,
            "SUT exited",
            f"the switch exited ({usage.sut_exit}) during the run",
        ),
        (bool(failed), "failed calls", f"{failed} of {calls} calls did not end in 480"),
        (
            timed.caller_invites != calls,
            "caller INVITEs",
            f"{timed.caller_invites} caller INVITEs in its log, {calls} calls",
        ),
        (bool(timed.missing), "missing INVITEs", f"{timed.missing} member INVITEs never came"),
        (bool(timed.unplanned), "unplanned INVITEs", f"{timed.unplanned} unplanned INVITEs"),
    ]
    common.judge_checks(run, checks, sipp_exit)
    return run


def print_lateness(run: LatenessRun) -> None:
    verdict = "pass" if run.passed else f"FAIL ({run.why_not})"
    cells = ", ".join(
        f"{name} {f.get('p50', '-')}/{f.get('p99', '-')}/{f.get('max', '-')} ms (n={f['count']})"
        for name, f in run.figures.items()
        if name in ("offset 0", "delayed")
    )
    print(
        f"  lateness {run.kind}: {run.successful}/{run.calls} calls ended in 480, "
        f"{run.member_invites} member INVITEs ({run.retransmitted} retransmitted); "
        f"p50/p99/max {cells}; switch {run.sut_cpu_share:.0%} of its core, others "
        f"{run.other_busy_s} s, steal {run.steal_s} s: {verdict}",
        file=sys.stderr,
        flush=True,
    )
    for line in run.sut_log[:3] + run.caller_errors[:2] + run.callee_errors[:2]:
        print(f"    {line[:300]}", file=sys.stderr)


def lateness_campaign(
    setup: LatenessInputs, workdir: Path, *, calls: int, rate: int, repeats: int,
    quiet_wait: float,
) -> list[LatenessRun]:  # fmt: skip
    """Hunt and plain runs alternating, ``repeats`` of each. A run during which other
    processes took more than DISTURBED_CORES of the machine is run again (up to
    RERUNS times): tails are what this measures, and this VM is shared."""
    runs: list[LatenessRun] = []
    print(f"lateness: {calls} calls at {rate}/s, {repeats} runs each:", file=sys.stderr)
    for _ in range(repeats):
        for kind in ("hunt", "plain"):
            for attempt in range(RERUNS + 1):
                run = measure_lateness(
                    kind, setup, workdir, calls=calls, rate=rate, quiet_wait=quiet_wait,
                    index=sum(r.kind == kind for r in runs),
                )  # fmt: skip
                run.disturbed = run.other_busy_s > DISTURBED_CORES * run.wall_s
                run.counted = not run.disturbed or attempt == RERUNS
                print_lateness(run)
                runs.append(run)
                if run.counted:
                    break
                print(
                    f"    other processes took {run.other_busy_s} s of CPU in {run.wall_s} s: "
                    "not counted, run again",
                    file=sys.stderr,
                )
    return runs


def pooled(runs: Sequence[LatenessRun], kind: Kind) -> dict[str, dict[str, float]]:
    """The figures of every counted run of ``kind`` together."""
    samples: dict[str, list[float]] = {}
    for run in runs:
        if run.kind == kind and run.counted:
            for name, values in run.samples.items():
                samples.setdefault(name, []).extend(values)
    return {name: figures(values) for name, values in samples.items()}


# -- 2. calls per second


@dataclass
class CpsRun:
    """A bench_cps.py run (its figures and verdict) of one variant; for the hunt, what
    the busy members did."""

    variant: Kind
    run: bench_cps.Run
    busy: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        return {"variant": self.variant} | asdict(self.run) | {
            "cpu_ms_per_call": round(self.run.cpu_ms_per_call, 3),
            "busy": self.busy,
        }  # fmt: skip


def member_states(sut: procs.Sut, numbers: Sequence[str]) -> dict[str, list[str]]:
    """The states /status gives ``numbers`` in the groups, each group's answer in turn."""
    states: dict[str, list[str]] = {n: [] for n in numbers}
    for group in sut.get_status()["groups"].values():
        for member in group["members"]:
            if member["extension"] in states:
                states[member["extension"]].append(member["state"])
    return states


def all_talking(states: dict[str, list[str]]) -> bool:
    return all(s and set(s) == {"talking"} for s in states.values())


def wait_busy(sut: procs.Sut, busy_caller: procs.Sipp, numbers: Sequence[str]) -> None:
    """Wait until /status shows every busy member talking in every group."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        states = member_states(sut, numbers)
        if all_talking(states):
            return
        if busy_caller.process.poll() is not None or time.monotonic() > deadline:
            summary = {n: sorted(set(s)) for n, s in states.items()}
            raise common.BenchError(
                f"the busy members are not talking after {BUSY_TIMEOUT:g} s: {summary}; "
                f"busy caller errors: {procs.error_lines(busy_caller)}; "
                f"switch: {sut.log_lines()}"
            )
        time.sleep(0.2)


def add_fault(run: bench_cps.Run, name: str, text: str) -> None:
    """One more fault on a judged run."""
    faults = dict(zip(run.faults, run.why_not.split("; ") if run.why_not else [], strict=False))
    common.set_verdict(run, faults | {name: text})


def measure_hunt_cps(rate: int, setup: HuntCpsInputs, workdir: Path, quiet_wait: float) -> CpsRun:
    """bench_cps.py's b2bua measurement, the calls going to the linear groups, with the
    busy members' calls up from before the run to after it."""
    busy_before = common.wait_for_quiet(quiet_wait)
    inputs = setup.thirds
    calls = rate * bench_cps.SECONDS_PER_RUN
    nominal = calls / rate + bench_cps.HOLD_MS / 1000
    stay = nominal + 40
    rundir = workdir / f"b2bua-{rate}"
    sut = procs.start_sut("b2bua", inputs, rundir)
    sipps: dict[str, procs.Sipp] = {}
    try:
        sipps["busy-callee"] = procs.start_callee(
            sut, setup.busy, rundir, stay, name="busy-callee", extra=["-trace_msg"]
        )
        sipps["callee"] = procs.start_callee(sut, inputs, rundir, stay_s=stay)
        procs.wait_registered(sut, sipps["callee"], inputs.callees + setup.busy.callees)
        command = procs.caller_command(
            sut, setup.busy, rate=10, calls=BUSY_MEMBERS, limit=BUSY_MEMBERS,
            hold_ms=int(stay * 1000), timeout_s=stay + 10,
        )  # fmt: skip
        sipps["busy-caller"] = procs.start_sipp("busy-caller", rundir, command, stay + 10)
        wait_busy(sut, sipps["busy-caller"], setup.busy_numbers)
        time.sleep(0.3)
        window = common.CpuWindow(sut.process, [s.process for s in sipps.values()])
        command = procs.caller_command(
            sut, inputs, rate=rate, calls=calls,
            limit=min(bench_cps.MAX_LIMIT, max(4 * rate, 200)), hold_ms=bench_cps.HOLD_MS,
            timeout_s=nominal + 30,
        )  # fmt: skip
        sipps["caller"] = procs.start_sipp("caller", rundir, command, nominal + 30)
        sipp_exit = procs.wait_sipp(sipps["caller"])
        usage = window.close()
        after = member_states(sut, setup.busy_numbers) if usage.sut_exit is None else {}
    finally:
        procs.stop_all(sut, *sipps.values())
    caller, callee = sipps["caller"], sipps["callee"]
    totals = procs.caller_totals(caller)
    busy_invites = sum(1 for _ in invites(sipps["busy-callee"].file("messages.log"), sent=False))
    run = bench_cps.Run(
        system="b2bua",
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
        callee_errors=procs.error_lines(callee) + procs.error_lines(sipps["busy-callee"]),
    )
    bench_cps.judge(run, usage.sut_exit)
    if busy_invites != BUSY_MEMBERS:
        add_fault(
            run, "busy member rung",
            f"the busy members got {busy_invites} INVITEs, {BUSY_MEMBERS} expected (their calls)",
        )  # fmt: skip
    if after and not all_talking(after):
        add_fault(run, "busy call ended", f"busy members after the run: {after}")
    busy = {
        "members": setup.busy_numbers,
        "invites_received": busy_invites,
        "states_after": {n: sorted(set(s)) for n, s in after.items()},
    }
    return CpsRun("hunt", run, busy)


def measure_cps(
    variant: Kind, rate: int, *, plain: Inputs, hunt: HuntCpsInputs, workdir: Path,
    quiet_wait: float,
) -> CpsRun:  # fmt: skip
    if variant == "plain":
        return CpsRun(
            "plain", bench_cps.measure("b2bua", rate, plain, workdir / "plain", quiet_wait)
        )
    return measure_hunt_cps(rate, hunt, workdir / "hunt", quiet_wait)


def print_cps(run: CpsRun) -> None:
    print(f"  [{run.variant}]", end="", file=sys.stderr)
    bench_cps.print_run(run.run)


def cps_campaign(
    measure: Callable[[Kind, int], CpsRun], *, start: int, step: int, repeats: int
) -> dict[Kind, dict[int, list[CpsRun]]]:
    """Climb both variants by ``step`` (interleaved) until a rate fails; then each one's
    highest passing rate ``repeats - 1`` times more, stepping down while it fails most
    of its runs."""
    variants: list[Kind] = ["plain", "hunt"]
    runs: dict[Kind, dict[int, list[CpsRun]]] = {v: {} for v in variants}

    def once(variant: Kind, rate: int) -> CpsRun:
        run = measure(variant, rate)
        runs[variant].setdefault(rate, []).append(run)
        print_cps(run)
        return run

    print(f"calls per second, from {start}/s by {step}:", file=sys.stderr)
    rate = dict.fromkeys(variants, start)
    climbing = set(variants)
    while climbing:
        for variant in variants:
            if variant not in climbing:
                continue
            passed = once(variant, rate[variant]).run.passed
            below = rate[variant] - step
            if passed and rate[variant] + step <= CPS_MAX:
                rate[variant] += step
            elif not passed and not any(r.run.passed for rs in runs[variant].values() for r in rs):
                # Nothing passed yet: go down instead.
                if below < CPS_MIN:
                    climbing.discard(variant)
                rate[variant] = below
            else:
                climbing.discard(variant)
    if repeats <= 1:
        return runs
    top: dict[Kind, int] = {}
    for variant in variants:
        # A rate run twice in the sweep (going down, then up again) counts by its last run.
        passing = [r for r, rs in runs[variant].items() if rs[-1].run.passed]
        if passing:
            top[variant] = max(passing)
    for _ in range(MAX_STEPS_DOWN + 1):
        print(f"repeats of {top}:", file=sys.stderr)
        for _ in range(repeats - 1):
            for variant, rate_ in top.items():
                if len(runs[variant][rate_]) < repeats:
                    once(variant, rate_)
        failing = {
            v: r - step
            for v, r in top.items()
            if not common.majority([x.run for x in runs[v][r]]) and r - step in runs[v]
        }
        if not failing:
            break
        top = failing
    return runs


def cps_summary(runs: dict[Kind, dict[int, list[CpsRun]]]) -> list[dict[str, Any]]:
    return [
        bench_cps.median_run([r.run for r in rs]) | {"system": f"b2bua {variant}"}
        for variant, by_rate in runs.items()
        for _, rs in sorted(by_rate.items())
    ]


def cps_best(summary: list[dict[str, Any]], variant: Kind) -> dict[str, Any]:
    """The highest rate passing most of its runs, among those run most often (the
    repeats); the sweep's single runs only when none was repeated."""
    mine = [s for s in summary if s["system"] == f"b2bua {variant}"]
    most = max((s["runs"] for s in mine), default=0)
    passing = [s for s in mine if s["runs"] == most and s["passed"]] or [
        s for s in mine if s["passed"]
    ]
    top = max(passing, key=lambda s: s["target"]) if passing else None
    return {
        "highest_passing_rate": top["target"] if top else None,
        "runs_passed": f"{top['passed_runs']}/{top['runs']}" if top else None,
        "cpu_ms_per_call": top["cpu_ms_per_call"] if top else None,
        "cpu_share": top["sut_cpu_share"] if top else None,
    }


# -- the result


def lateness_table(runs: Sequence[LatenessRun]) -> list[str]:
    lines = common.table_head(
        "calls", "member INVITEs", "runs", "count", "p50 (ms)", "p99 (ms)", "max (ms)"
    )
    for kind in ("hunt", "plain"):
        mine = [r for r in runs if r.kind == kind and r.counted]
        if not mine:
            continue
        label = "plain call to an extension (floor)" if kind == "plain" else "staggered hunt"
        for name, f in pooled(runs, kind).items():
            if f["count"] == 0:
                continue
            lines.append(
                f"| {label} | {name} | {len(mine)} | {f['count']} | {f['p50']:.2f} "
                f"| {f['p99']:.2f} | {f['max']:.2f} |"
            )
    return lines


def lateness_runs_table(runs: Sequence[LatenessRun]) -> list[str]:
    """One line per run, in the order they ran."""
    lines = common.table_head(
        "run", "calls", "offset 0: p50 / p99 / max (ms)", "delayed: p50 / p99 / max (ms)",
        "switch CPU / wall", "others' CPU (s)", "result",
    )  # fmt: skip

    def cell(f: dict[str, float] | None) -> str:
        return "-" if not f or not f.get("count") else f"{f['p50']} / {f['p99']} / {f['max']}"

    counts: dict[str, int] = {}
    for run in runs:
        counts[run.kind] = counts.get(run.kind, 0) + 1
        lines.append(
            f"| {run.kind} {counts[run.kind]} | {run.successful}/{run.calls} "
            f"| {cell(run.figures.get('offset 0'))} | {cell(run.figures.get('delayed'))} "
            f"| {run.sut_cpu_share:.0%} | {run.other_busy_s} "
            f"| {'pass' if run.passed else 'fail: ' + run.why_not}"
            f"{'' if run.counted else ' (disturbed: not counted)'} |"
        )
    return lines


def same_rate_cpu(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """CPU per call (ms, median of the runs) of both variants at each rate both passed."""
    by: dict[tuple[str, int], dict[str, Any]] = {(s["system"], s["target"]): s for s in summary}
    out = []
    for (system, rate), s in sorted(by.items(), key=lambda x: x[0][1]):
        other = by.get(("b2bua hunt", rate))
        if system == "b2bua plain" and other and s["passed"] and other["passed"]:
            plain, hunt = s["cpu_ms_per_call"], other["cpu_ms_per_call"]
            out.append({"rate": rate, "plain": plain, "hunt": hunt,
                        "ratio": common.ratio(hunt, plain, 2)})  # fmt: skip
    return out


def build_result(
    lateness: Sequence[LatenessRun], cps: dict[Kind, dict[int, list[CpsRun]]],
    args: argparse.Namespace, commands: dict[str, str], load_before: list[float],
) -> dict[str, Any]:  # fmt: skip
    hunt = pooled(lateness, "hunt")
    plain = pooled(lateness, "plain")
    p99 = hunt.get("all", {}).get("p99")
    summary = cps_summary(cps)
    best = {variant: cps_best(summary, variant) for variant in ("plain", "hunt")}
    rate_ratio = common.ratio(
        best["hunt"]["highest_passing_rate"], best["plain"]["highest_passing_rate"], 2
    )
    return procs.calls_result_head("hunt", sippy=False) | {
        "pinning": {"load_core": common.LOAD_CORE, "sut_core": common.SUT_CORE},
        "commands": commands,
        "load_average_before": load_before,
        "lateness": {
            "design": (
                f"{args.calls} calls at {args.rate}/s from one SIPp (hunt_uac_480.xml) to "
                f"{LATENESS_GROUPS} staggered groups (members at "
                f"{', '.join(f'{o:g}' for o in OFFSETS)} s, group timeout {GROUP_TIMEOUT:g} s, "
                "then hangup: 480); members: one SIPp registering 3 extensions per group "
                "(max_calls 100), ringing and never answering (hunt_uas_ring.xml); floor: "
                "the same calls to the members' own public numbers (ring_timeout "
                f"{GROUP_TIMEOUT:g} s)"
            ),
            "plan": "caller INVITE sent + the member's start delay",
            "clock": "SIPp -trace_msg timestamps (caller: its INVITE sent; members: the "
            "member INVITE read), microseconds, one machine",
            "runs_per_kind": args.repeats,
            "rerun_rule": f"a run during which other processes took more than "
            f"{DISTURBED_CORES:g} of a core is run again (up to {RERUNS} times) and not "
            "counted in the pooled figures (its own figures stay in runs)",
            "hunt": hunt,
            "plain": plain,
            "target_p99_ms": TARGET_P99_MS,
            "target_met": p99 is not None and p99 <= TARGET_P99_MS,
            "passed": all(r.passed for r in lateness),
            "runs": [r.record() for r in lateness],
        },
        "cps": {
            "call": "bench_cps.py's: cps_uac.xml, 1 s hold; answered by cps_uas_answer.xml "
            "(20 ms of ringing)",
            "hunt_route": f"{bench_cps.CALLEES} linear groups [busy, busy, own third member] on "
            "public numbers; the two busy members (max_calls 1) each on one call through the "
            "switch (cps_uac.xml held the whole run, answered by cps_uas_answer.xml)",
            "plain_route": "bench_cps.measure: public number -> registered extension "
            f"({bench_cps.CALLEES} callees)",
            "pass_rule": "bench_cps.py's: every call succeeds, achieved >= 97% of target; "
            "hunt: the busy members got no INVITE but their own calls' and were still "
            "talking after the run; a rate passes when most of its runs pass",
            "best": best,
            "ratio_rate_hunt_over_plain": rate_ratio,
            "ratio_cpu_per_call_hunt_over_plain": common.ratio(
                best["hunt"]["cpu_ms_per_call"], best["plain"]["cpu_ms_per_call"], 2
            ),
            "cpu_per_call_at_same_rate": same_rate_cpu(summary),
            "summary": summary,
            "runs": [r.record() for v in cps for rate in sorted(cps[v]) for r in cps[v][rate]],
        },
    }


def parse_args() -> argparse.Namespace:
    parser = common.argument_parser(__doc__)
    parser.add_argument("--quick", action="store_true", help="a few calls each (smoke check)")
    parser.add_argument("--calls", type=int, default=LATENESS_CALLS, help="lateness calls")
    parser.add_argument("--rate", type=int, default=LATENESS_RATE, help="lateness calls/s")
    parser.add_argument("--repeats", type=int, default=LATENESS_REPEATS, help="lateness runs")
    parser.add_argument("--cps-start", type=int, default=CPS_START)
    parser.add_argument("--cps-step", type=int, default=CPS_STEP)
    parser.add_argument("--cps-repeats", type=int, default=CPS_REPEATS)
    parser.add_argument("--skip-cps", action="store_true", help="the lateness only")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--quiet-wait", type=float, default=60.0)
    args = parser.parse_args()
    if args.quick:
        args.calls, args.rate, args.repeats = 10, 10, 1
        args.cps_start, args.cps_repeats = QUICK_RATE, 1
    return args


def command_of(directory: Path) -> str:
    path = directory / "command.txt"
    return path.read_text().strip() if path.exists() else ""


def main() -> int:
    args = parse_args()
    procs.check_tools(sippy=False)
    load_before = common.load_average()
    started = time.monotonic()
    with common.work_directory("bench-hunt-", keep=args.keep) as workdir:
        setup = write_lateness_inputs(workdir / "lateness", LATENESS_GROUPS)
        lateness = lateness_campaign(
            setup, workdir, calls=args.calls, rate=args.rate, repeats=args.repeats,
            quiet_wait=0.0 if args.quick else args.quiet_wait,
        )  # fmt: skip
        cps: dict[Kind, dict[int, list[CpsRun]]] = {"plain": {}, "hunt": {}}
        commands = {
            "lateness_caller": command_of(workdir / "lateness-hunt-0" / "caller"),
            "lateness_members": command_of(workdir / "lateness-hunt-0" / "callee"),
        }
        if not args.skip_cps:
            plain = write_inputs(
                common.fresh_directory(workdir / "plain-inputs"), bench_cps.CALLEES
            )
            hunt = write_hunt_cps_inputs(workdir / "hunt-inputs", bench_cps.CALLEES)
            quiet = 0.0 if args.quick else args.quiet_wait

            def measure(variant: Kind, rate: int) -> CpsRun:
                return measure_cps(
                    variant, rate, plain=plain, hunt=hunt, workdir=workdir, quiet_wait=quiet
                )

            if args.quick:
                for variant in ("plain", "hunt"):
                    run = measure(variant, args.cps_start)
                    print_cps(run)
                    cps[variant] = {args.cps_start: [run]}
            else:
                cps = cps_campaign(
                    measure, start=args.cps_start, step=args.cps_step, repeats=args.cps_repeats
                )
            top = max(cps["hunt"]) if cps["hunt"] else 0
            for name in ("caller", "callee", "busy-caller", "busy-callee"):
                commands[f"cps_hunt_{name}"] = command_of(workdir / "hunt" / f"b2bua-{top}" / name)
        commands["b2bua"] = (
            "taskset -c 1 .venv/bin/b2bua run --config switch.toml --listen udp:127.0.0.1:0 "
            "--status-listen 127.0.0.1:0 (configs: benchmarks/bench_hunt.py, calls/setup.py)"
        )
    result = build_result(lateness, cps, args, commands, load_before)
    result["duration_s"] = round(time.monotonic() - started, 1)
    if not args.quick:
        path = common.write_result("hunt", result)
        print(f"written: {path.relative_to(common.ROOT)}", file=sys.stderr)
    print("\n".join(lateness_table(lateness)))
    print()
    print("\n".join(lateness_runs_table(lateness)))
    late = result["lateness"]
    hunt_all = late["hunt"].get("all", {})
    print(
        f"\nlateness of the hunt's member INVITEs: p50 {hunt_all.get('p50')} ms, p99 "
        f"{hunt_all.get('p99')} ms (target <= {TARGET_P99_MS:g} ms: "
        f"{'met' if late['target_met'] else 'not met'})"
    )
    if not args.skip_cps:
        print()
        print("\n".join(bench_cps.table(result["cps"]["summary"])))
        best = result["cps"]["best"]
        print(
            f"\nhighest passing rate: plain {best['plain']['highest_passing_rate']}, hunt "
            f"{best['hunt']['highest_passing_rate']} calls/s; hunt/plain "
            f"{result['cps']['ratio_rate_hunt_over_plain']}; CPU per call hunt/plain at the "
            f"same rate: {result['cps']['cpu_per_call_at_same_rate']}"
        )
    every = [r.passed for r in lateness] + [
        r.run.passed for rs in cps.values() for v in rs.values() for r in v
    ]
    if args.quick:
        return 0 if all(every) else 1
    return 0 if all(r.passed for r in lateness) else 1


if __name__ == "__main__":
    common.run_main(main, "bench_hunt")
