"""AuthGuard: brute-force protection, on the switch's clock.

Failed authentications are counted per source address within a sliding window. When a
source reaches the limit it is blocked for the block time. A source that also holds valid
registrations (an office with many phones behind one NAT address) is never blocked as a
whole: only the failing username from that address is (ARCHITECTURE.md, "Brute-force
blocking without locking out an office").
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from b2bua.registrar.settings import SecuritySettings

#: Bound on the sources tracked at once, so a scan from many addresses cannot grow
#: memory without limit; the oldest entries go first.
MAX_TRACKED: Final = 65536


@dataclass(frozen=True, slots=True)
class Block:
    """A block in force: the whole ``source``, or only ``username`` from it."""

    source: str
    username: str | None
    until: float
    failures: int


class AuthGuard:
    """Inputs: :meth:`record_failure`, :meth:`record_success`; question: :meth:`is_blocked`.

    ``has_registrations(source)`` tells whether a source address holds valid bindings."""

    def __init__(
        self, settings: SecuritySettings, has_registrations: Callable[[str], bool]
    ) -> None:
        self.settings = settings
        self._has_registrations = has_registrations
        self._failures: dict[tuple[str, str | None], deque[float]] = {}
        self._blocks: dict[tuple[str, str | None], Block] = {}
        self.failures_total = 0  # every failure ever recorded (the metrics read it)

    def is_blocked(self, source: str, username: str | None, now: float) -> bool:
        for key in ((source, None), (source, username)):
            block = self._blocks.get(key)
            if block is None:
                continue
            if now < block.until:
                return True
            del self._blocks[key]
        return False

    def record_failure(self, source: str, username: str | None, now: float) -> Block | None:
        """Count one failed authentication; return the new block when this one sets it."""
        self.failures_total += 1
        limit = self.settings.max_failures
        window_start = now - self.settings.failure_window
        # A source with live registrations is an office: count per username there.
        scoped = username if self._has_registrations(source) else None
        key = (source, scoped)
        times = self._failures.get(key)
        if times is None:
            if len(self._failures) >= MAX_TRACKED:
                del self._failures[next(iter(self._failures))]
            times = self._failures[key] = deque(maxlen=limit)
        times.append(now)
        while times and times[0] <= window_start:
            times.popleft()
        if len(times) < limit:
            return None
        del self._failures[key]
        block = Block(source, scoped, now + self.settings.block_time, limit)
        if len(self._blocks) >= MAX_TRACKED:
            del self._blocks[next(iter(self._blocks))]
        self._blocks[key] = block
        return block

    def record_success(self, source: str, username: str) -> None:
        """A good authentication forgives that username's earlier failures."""
        self._failures.pop((source, username), None)

    def blocks(self, now: float) -> list[Block]:
        """The blocks in force at ``now`` (expired ones are dropped)."""
        for key in [k for k, b in self._blocks.items() if b.until <= now]:
            del self._blocks[key]
        return list(self._blocks.values())
