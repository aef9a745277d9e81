"""The event-loop lag probe of bench_voicemail.py: how late the switch's timers fire.

Python imports ``sitecustomize`` at start-up from the path; bench_voicemail.py puts this
directory on the switch's ``PYTHONPATH`` and names a file in ``B2BUA_LAG_PROBE``; nothing
happens without that variable. The probe wraps ``uvloop.new_event_loop`` (the loop the
switch runs on) so that the new loop carries one more timer: due every ``PERIOD``, it
records how late it fired (``loop.time()`` against its due time) and arms itself again
from the time it ran. About 100 callbacks a second, a few microseconds each, beside the
switch's tens of thousands of packets. Once a second it appends a line to the file: the
wall-clock time, then each lateness since the last line in tenths of a millisecond.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, Final

PERIOD: Final = 0.01


def _install(path: str) -> None:
    try:
        import uvloop  # noqa: PLC0415 - only in the switch, only when asked for
    except ImportError:
        return
    new_loop: Callable[[], Any] = uvloop.new_event_loop
    out = open(path, "a", buffering=1)  # noqa: SIM115 - open for the process's life

    def new_event_loop() -> Any:
        loop = new_loop()
        lateness: list[int] = []
        due = [loop.time() + PERIOD, time.time() + 1.0]  # next probe, next line

        def probe() -> None:
            now = loop.time()
            lateness.append(max(0, round((now - due[0]) * 10_000)))
            wall = time.time()
            if wall >= due[1]:
                out.write(f"{wall:.3f} {' '.join(map(str, lateness))}\n")
                lateness.clear()
                due[1] = wall + 1.0
            due[0] = now + PERIOD
            loop.call_at(due[0], probe)

        loop.call_at(due[0], probe)
        return loop

    uvloop.new_event_loop = new_event_loop


_PATH = os.environ.get("B2BUA_LAG_PROBE")
if _PATH:
    _install(_PATH)
