"""The fallback profiler of benchmarks/profile_switch.py: cProfile inside the switch.

Python imports ``sitecustomize`` at start-up from the path; profile_switch.py puts this
directory on the switch's ``PYTHONPATH`` and names a file in ``B2BUA_CPROFILE`` when
py-spy cannot attach (it needs ptrace). Nothing happens without that variable. Then
SIGUSR1 starts the profiler and SIGUSR2 stops it and writes its statistics to the file
(the switch uses neither signal), so that only the loaded window is measured; the
handlers run on the main thread, the one cProfile measures (the SQLite writer thread is
missed). The clock is the process's CPU time, so the event loop's idle waits do not
count. cProfile costs several times the CPU of the code it measures: compare shares,
not absolute times.
"""

from __future__ import annotations

import os


def _install(path: str) -> None:
    import cProfile  # noqa: PLC0415 - only in the switch, only when asked for
    import signal  # noqa: PLC0415
    import time  # noqa: PLC0415
    from types import FrameType  # noqa: PLC0415

    profiler = cProfile.Profile(time.process_time)

    def start(signum: int, frame: FrameType | None) -> None:
        profiler.enable()

    def stop(signum: int, frame: FrameType | None) -> None:
        profiler.disable()
        profiler.dump_stats(path)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)


if _target := os.environ.get("B2BUA_CPROFILE"):
    _install(_target)
