"""CPU readings from /proc (Linux): a process's user+system time, all its threads
included, and per-core busy time, so that a run can say how busy each core was and how
much of that was someone else's work."""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (fields 14 and 15 of /proc/PID/stat; for a thread-group
    leader they cover every thread of the process)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def core_busy_seconds() -> dict[int, float]:
    """Busy (non-idle, non-iowait) seconds of each core since boot, from /proc/stat."""
    busy: dict[int, float] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        ticks = [int(v) for v in values]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
        busy[int(name[3:])] = (sum(ticks[:8]) - idle) / CLOCK_TICKS
    return busy
