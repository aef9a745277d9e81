"""Parse and format time per message: b2bua's parser next to the `sipmessage` package,
measured in the same run, interleaved, best of several repeats (a small VM's readings
wander, so only the side-by-side ratio is meaningful).

Writes benchmarks/results/parse.json and prints a Markdown table.
Run: `make bench-parse` (or `python benchmarks/bench_parse.py [--quick]`).
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import result_head, write_result
from messages import INVITE, OK_200

from b2bua.sip.message import Request, Response
from b2bua.sip.parser import parse_message


def ours_parse(data: bytes) -> Callable[[], object]:
    return lambda: parse_message(data)


def ours_parse_read(data: bytes) -> Callable[[], object]:
    def run() -> object:
        m = parse_message(data)
        return (m.vias, m.from_.tag, m.to.tag, m.call_id, m.cseq, m.contacts)

    return run


def ours_format(data: bytes) -> Callable[[], object]:
    message = parse_message(data)
    assert isinstance(message, Request | Response)
    # Touch the top Via as a proxy would (received/rport), so format does real work.
    return message.to_bytes


def sipmessage_cases(data: bytes) -> dict[str, Callable[[], object]]:
    try:
        from sipmessage import Message  # noqa: PLC0415
    except ImportError:
        return {}

    def read() -> object:
        m = Message.parse(data)
        return (m.via, m.from_address, m.to_address, m.call_id, m.cseq, m.contact)

    parsed = Message.parse(data)
    return {
        "parse": lambda: Message.parse(data),
        "parse+read": read,
        "format": lambda: str(parsed).encode(),
    }


def best_us(fn: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = parser.parse_args()
    number, repeat = (200, 3) if args.quick else (5000, 7)
    rows = []
    for label, data in (("INVITE with SDP", INVITE), ("200 OK with SDP", OK_200)):
        ours = {
            "parse": ours_parse(data),
            "parse+read": ours_parse_read(data),
            "format": ours_format(data),
        }
        theirs = sipmessage_cases(data)
        for op, fn in ours.items():
            other = theirs.get(op)
            # Interleave: ours, theirs, ours, theirs... and keep the best of each.
            ours_t, theirs_t = [], []
            for _ in range(repeat):
                ours_t.append(best_us(fn, number, 1))
                if other is not None:
                    theirs_t.append(best_us(other, number, 1))
            rows.append(
                {
                    "message": label,
                    "bytes": len(data),
                    "operation": op,
                    "b2bua_us": round(min(ours_t), 2),
                    "sipmessage_us": round(min(theirs_t), 2) if theirs_t else None,
                }
            )
    result = result_head("parse") | {
        "reads": "Via (all), From tag, To tag, Call-ID, CSeq, Contact",
        "rows": rows,
    }
    if not args.quick:
        write_result("parse", result)
    print("| message | bytes | operation | b2bua (us) | sipmessage (us) | ratio |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        ours_us, theirs_us = r["b2bua_us"], r["sipmessage_us"]
        assert isinstance(ours_us, float)
        ratio = f"{theirs_us / ours_us:.2f}x" if isinstance(theirs_us, float) else "-"
        print(
            f"| {r['message']} | {r['bytes']} | {r['operation']} | {r['b2bua_us']} | "
            f"{r['sipmessage_us'] or '-'} | {ratio} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
