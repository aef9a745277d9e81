"""SIPp's ``-trace_stat`` file: semicolon-separated, a header line then one line per
``-fd`` period and a last one written at exit. Only the cumulative ``(C)`` columns of the
last line are used."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common import failure_kinds, last_stats


@dataclass(frozen=True, slots=True)
class SippTotals:
    successful: int
    failed: int
    retransmissions: int
    created: int
    call_rate: float  # SIPp's cumulative "CallRate(C)": calls created per second
    elapsed_s: float  # "ElapsedTime(C)"
    failure_kinds: dict[str, int]  # the non-zero "Failed...(C)" counters


def _elapsed_seconds(text: str) -> float:
    """``HH:MM:SS`` or ``HH:MM:SS:uuuuuu`` (SIPp writes either, depending on the column)."""
    parts = text.strip().split(":")
    hours, minutes, seconds = (int(p) for p in parts[:3])
    micros = int(parts[3]) if len(parts) > 3 and parts[3] else 0
    return hours * 3600 + minutes * 60 + seconds + micros / 1e6


def read_totals(path: Path) -> SippTotals:
    """The totals of the statistics file's last line."""
    values = last_stats(path)
    if not values:
        raise ValueError(f"{path}: no statistics line")

    def count(name: str) -> int:
        return int(values.get(f"{name}(C)", "0") or 0)

    return SippTotals(
        successful=count("SuccessfulCall"),
        failed=count("FailedCall"),
        retransmissions=count("Retransmissions"),
        created=count("OutgoingCall"),
        call_rate=float(values.get("CallRate(C)", "0") or 0),
        elapsed_s=_elapsed_seconds(values.get("ElapsedTime(C)", "0:0:0")),
        failure_kinds=failure_kinds(values),
    )
