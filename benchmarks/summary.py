"""The "Where we stand" table: every headline figure of benchmarks/results/*.json next to
its reference, as a ratio, with the date and the command of the run it comes from.

Reads the result files only (nothing is measured) and rewrites the table in
benchmarks/README.md between the markers ``<!-- where-we-stand:start -->`` and
``<!-- where-we-stand:end -->`` (a missing pair is added before the first section). A
result file that is missing or lacks a field gives a row that says which command makes it.

Run: ``make bench-summary`` (the last step of ``make bench``), or
``python benchmarks/summary.py [--print]`` (``--print``: the table on stdout, README.md
untouched).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

BENCH: Final = Path(__file__).resolve().parent
RESULTS: Final = BENCH / "results"
README: Final = BENCH / "README.md"
START: Final = "<!-- where-we-stand:start -->"
END: Final = "<!-- where-we-stand:end -->"

# The command that writes each result file (a result file may name its own: "command").
COMMANDS: Final = {
    "parse": "make bench-parse",
    "register": "make bench-register",
    "cps": "make bench-cps",
    "proxy": "make bench-proxy",
    "relay": "make bench-relay",
    "memory": "make bench-memory",
    "hunt": "make bench-hunt",
    "voicemail": "make bench-voicemail",
    "soak": "make soak",
}

Result = dict[str, Any]


@dataclass(frozen=True)
class Row:
    figure: str
    ours: str
    reference: str
    ratio: str
    target: str
    sources: tuple[str, ...]  # result files (benchmark names) the row reads


def load(name: str) -> Result | None:
    path = RESULTS / f"{name}.json"
    try:
        data: Result = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def dig(data: Any, *keys: str | int) -> Any:
    """``data[k1][k2]...``, None where a key is missing."""
    for key in keys:
        if isinstance(data, dict) and isinstance(key, str):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and -len(data) <= key < len(data):
            data = data[key]
        else:
            return None
    return data


def num(value: Any, digits: int = 0, unit: str = "") -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    text = f"{value:,.{digits}f}"
    return f"{text} {unit}".rstrip()


def times(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}x"


def share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def div(a: Any, b: Any) -> float | None:
    if not isinstance(a, int | float) or not isinstance(b, int | float) or not b:
        return None
    return float(a) / float(b)


def met(flag: Any) -> str:
    return {True: "met", False: "**not met**"}.get(flag, "") if isinstance(flag, bool) else ""


def missing(figure: str, name: str) -> Row:
    return Row(figure, "not run", "-", "-", "-", (name,))


# -- one builder per result file; each returns the rows it can fill


def parse_rows(r: Result) -> list[Row]:
    rows = []
    for operation in ("parse+read", "parse"):
        found = [
            x
            for x in r.get("rows", [])
            if x.get("operation") == operation and str(x.get("message", "")).startswith("INVITE")
        ]
        if not found:
            continue
        x = found[0]
        ratio = div(x.get("sipmessage_us"), x.get("b2bua_us"))
        rows.append(
            Row(
                f"{operation} a {x.get('bytes', '?')}-byte INVITE (time per message)",
                num(x.get("b2bua_us"), 1, "us"),
                f"sipmessage {num(x.get('sipmessage_us'), 1, 'us')}",
                "-"
                if ratio is None
                else f"{times(ratio)} faster"
                if ratio >= 1
                else f"{times(1 / ratio)} slower",
                "parse+read <= 20 us: " + met(x.get("b2bua_us", 99) <= 20)
                if operation == "parse+read"
                else "",
                ("parse",),
            )
        )
    return rows


def register_rows(r: Result) -> list[Row]:
    rate = r.get("highest_passing_rate")
    tx = r.get("highest_passing_transactions_per_s")
    target = r.get("target_transactions_per_s")
    ratio = div(tx, target)
    return [
        Row(
            "REGISTER with digest, one core (highest rate, no failure)",
            f"{num(rate)} reg/s ({num(tx)} REGISTER tx/s), "
            f"{num(r.get('cpu_ms_per_registration_at_best'), 2, 'ms')} CPU each",
            f"target {num(target)} tx/s (Kamailio's registrar: about 5,980/s in PEERS.md, "
            "not run side by side)",
            f"{times(ratio)} the target",
            met(ratio is not None and ratio >= 1),
            ("register",),
        )
    ]


def cps_rows(cps: Result | None, proxy: Result | None) -> list[Row]:
    rows = []
    ours = dig(cps, "best", "b2bua", "highest_passing_rate")
    if cps is None:
        rows.append(missing("Calls/s next to sippy", "cps"))
    else:
        sippy = dig(cps, "best", "sippy", "highest_passing_rate")
        cpu_ratio = cps.get("ratio_cpu_per_call_sippy_over_b2bua")
        rows.append(
            Row(
                "Calls/s, one core, no failed call (vs the sippy B2BUA)",
                f"{num(ours)} calls/s, "
                f"{num(dig(cps, 'best', 'b2bua', 'cpu_ms_per_call'), 2, 'ms')} CPU per call",
                f"sippy {num(sippy)} calls/s, "
                f"{num(dig(cps, 'best', 'sippy', 'cpu_ms_per_call'), 2, 'ms')}",
                f"{times(cps.get('ratio_rate_b2bua_over_sippy'))} the rate; sippy uses "
                f"{times(cpu_ratio)} our CPU per call",
                f">= {num(cps.get('target_ratio'), 0)}x sippy: {met(cps.get('target_met'))}",
                ("cps",),
            )
        )
    if proxy is None:
        rows.append(missing("Calls/s next to Kamailio (stateful proxy)", "proxy"))
        return rows
    kam = dig(proxy, "best", "kamailio", "highest_passing_rate")
    bound = dig(proxy, "best", "kamailio", "generator_bound")
    reached = dig(proxy, "best", "kamailio", "ceiling_reached")
    kam_text = f"Kamailio {num(kam)} calls/s (bench-proxy: a separate run)"
    if bound or reached is False:
        kam_text += " (SIPp's ceiling: a lower bound)"
    rows.append(
        Row(
            "Calls/s, one core (vs Kamailio as a stateful proxy, the signalling ceiling)",
            f"{num(ours)} calls/s (bench-cps)",
            kam_text,
            f"{share(div(ours, kam))} of the ceiling",
            "",
            ("cps", "proxy"),
        )
    )
    same = proxy.get("same_rate") or {}
    if same:
        rows.append(
            Row(
                f"CPU per call at {same.get('rate')} calls/s, side by side (vs Kamailio)",
                num(dig(same, "b2bua", "cpu_ms_per_call"), 2, "ms"),
                f"Kamailio {num(dig(same, 'kamailio', 'cpu_ms_per_call'), 3, 'ms')}",
                f"we use {times(same.get('ratio_cpu_per_call_b2bua_over_kamailio'), 1)} "
                "Kamailio's CPU",
                "",
                ("proxy",),
            )
        )
    return rows


def relay_rows(r: Result) -> list[Row]:
    ours = dig(r, "best", "b2bua")
    ref = dig(r, "best", "uvloop")
    return [
        Row(
            "RTP relay, concurrent G.711 calls on one core (loss < 0.1%, p99 < 10 ms)",
            f"{num(dig(ours, 'max_calls'))} calls, "
            f"{num(dig(ours, 'cpu_us_per_packet'), 1, 'us')} CPU per packet",
            f"uvloop forwarder {num(dig(ref, 'max_calls'))} calls, "
            f"{num(dig(ref, 'cpu_us_per_packet'), 1, 'us')}",
            f"{share(r.get('share_of_uvloop_ceiling'))} of the ceiling",
            f">= {share(r.get('target_share'))}: {met(r.get('target_met'))}",
            ("relay",),
        )
    ]


def memory_rows(r: Result) -> list[Row]:
    by_system = {m.get("system"): m for m in r.get("measurements", [])}
    ours = dig(by_system, "b2bua", "kib_per_call")
    sippy = dig(by_system, "sippy", "kib_per_call")
    calls = dig(by_system, "b2bua", "calls")
    return [
        Row(
            f"Memory per established call (RSS, {num(calls)} calls)",
            num(ours, 1, "KiB"),
            f"sippy {num(sippy, 1, 'KiB')} (no media sockets)",
            f"{times(div(ours, sippy))} sippy's",
            f"<= {num(r.get('target_kib_per_call'), 0)} KiB: {met(r.get('target_met'))}",
            ("memory",),
        )
    ]


def hunt_rows(r: Result) -> list[Row]:
    late = r.get("lateness") or {}
    hunt_p99 = dig(late, "hunt", "all", "p99")
    plain_p99 = dig(late, "plain", "all", "p99")
    rows = [
        Row(
            "Hunt member INVITE lateness, 200 calls hunting at once (p99)",
            num(hunt_p99, 1, "ms"),
            f"plain calls' INVITE latency {num(plain_p99, 1, 'ms')}",
            f"{times(div(hunt_p99, plain_p99), 1)} the floor",
            f"p99 <= {num(late.get('target_p99_ms'), 0)} ms: {met(late.get('target_met'))}",
            ("hunt",),
        )
    ]
    cps = r.get("cps") or {}
    if cps.get("best"):
        rows.append(
            Row(
                "Calls/s through a linear hunt, first two members busy",
                f"{num(dig(cps, 'best', 'hunt', 'highest_passing_rate'))} calls/s",
                f"plain calls {num(dig(cps, 'best', 'plain', 'highest_passing_rate'))} calls/s",
                f"{times(cps.get('ratio_rate_hunt_over_plain'))} the rate",
                "",
                ("hunt",),
            )
        )
    return rows


def voicemail_rows(r: Result) -> list[Row]:
    best = r.get("highest_passing_calls")
    at_best = [s for s in r.get("summary", []) if s.get("calls") == best]
    ratio = dig(at_best, 0, "steady_ratio_voicemail_over_relay")
    return [
        Row(
            "Voicemail: concurrent recordings with no gap, one core",
            f"{num(best)} calls ({r.get('runs_passed', '?')} runs)",
            f"the same calls relayed: CPU {num(dig(at_best, 0, 'relay_cpu_ms_per_call'), 1)} "
            f"ms per call, ours {num(dig(at_best, 0, 'voicemail_cpu_ms_per_call'), 1)} ms",
            f"{times(ratio)} the relay's CPU",
            f">= {num(r.get('target'))} calls: {met(r.get('target_met'))}",
            ("voicemail",),
        )
    ]


def soak_rows(r: Result) -> list[Row]:
    rss = r.get("rss_mib") or {}
    return [
        Row(
            f"Soak: {num(dig(r, 'duration_s'), 0)} s at {num(r.get('rate'), 0)} calls/s, "
            f"RTP on 1 call in {r.get('rtp_every', '?')}",
            f"{num(r.get('calls_ok'))} of {num(r.get('calls'))} calls ok; RSS "
            f"{num(rss.get('after_warmup'), 1)} -> {num(rss.get('end'), 1)} MiB",
            "flat: no failed call, RSS, files, ports, tasks not growing",
            f"RSS end / after warm-up: {times(div(rss.get('end'), rss.get('after_warmup')), 3)}",
            f"{'passed' if r.get('passed') else '**failed**: ' + ', '.join(r.get('faults', []))}",
            ("soak",),
        )
    ]


Builder = Callable[[Result], list[Row]]
SINGLE: Final[list[tuple[str, str, Builder]]] = [
    ("parse", "Parse an INVITE", parse_rows),
    ("register", "REGISTER with digest", register_rows),
]
AFTER_CPS: Final[list[tuple[str, str, Builder]]] = [
    ("relay", "RTP relay", relay_rows),
    ("memory", "Memory per call", memory_rows),
    ("hunt", "Hunting", hunt_rows),
    ("voicemail", "Voicemail", voicemail_rows),
    ("soak", "Soak", soak_rows),
]


def when(r: Result | None) -> str:
    date = dig(r, "date")
    if not isinstance(date, str):
        return "-"
    try:
        return datetime.fromisoformat(date).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return date


def build(results: dict[str, Result | None]) -> list[str]:
    rows: list[Row] = []
    for name, figure, builder in SINGLE:
        found = results.get(name)
        rows += builder(found) if found is not None else [missing(figure, name)]
    rows += cps_rows(results.get("cps"), results.get("proxy"))
    for name, figure, builder in AFTER_CPS:
        found = results.get(name)
        rows += builder(found) if found is not None else [missing(figure, name)]
    lines = [
        "| figure | b2bua | reference | ratio | target | run (UTC) | command |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        dates = "; ".join(when(results.get(s)) for s in row.sources)
        commands = "; ".join(
            f"`{dig(results.get(s), 'command') or COMMANDS.get(s, '?')}`" for s in row.sources
        )
        cells = [row.figure, row.ours, row.reference, row.ratio, row.target, dates, commands]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return lines


def block(lines: list[str]) -> str:
    return "\n".join(
        [
            START,
            "Written by `benchmarks/summary.py` (`make bench-summary`, the last step of `make "
            "bench`) from `benchmarks/results/*.json`: do not edit by hand. Each ratio was "
            "measured side by side in one run (SIPp on core 0, the system under test on "
            "core 1), except where the reference says otherwise; the sections below give "
            "the method and the full tables.",
            "",
            *lines,
            END,
        ]
    )


def rewrite(readme: str, text: str) -> str:
    if START in readme and END in readme:
        head, rest = readme.split(START, 1)
        _, tail = rest.split(END, 1)
        return head + text + tail
    # No markers yet: a section of its own before the first section.
    index = readme.find("\n## ")
    section = f"\n## Where we stand\n\n{text}\n"
    if index < 0:
        return readme.rstrip("\n") + "\n" + section
    return readme[:index] + "\n" + section + readme[index:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--print", action="store_true", help="print only; README untouched")
    args = parser.parse_args()
    results = {name: load(name) for name in COMMANDS}
    lines = build(results)
    if args.print:
        print("\n".join(lines))
        return 0
    README.write_text(rewrite(README.read_text(), block(lines)))
    found = sorted(n for n, r in results.items() if r is not None)
    print(f"{README}: table of {len(lines) - 2} rows from {', '.join(found)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
