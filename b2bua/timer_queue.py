"""TimerQueue: the one heap of deadlines the pure core keeps.

Owners file timers under a hashable key; scheduling a key again replaces its deadline,
cancelling is lazy (stale heap entries are skipped when they surface). The shell arms a
single ``loop.call_at`` for :meth:`next_deadline` and calls :meth:`pop_due` when it fires.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class TimerQueue(Generic[K]):
    """Deadlines by key. Ties fire in the order they were scheduled."""

    __slots__ = ("_current", "_heap", "_seq", "_stale")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._current: dict[K, tuple[float, int]] = {}
        self._seq = itertools.count()
        self._stale = 0  # heap entries whose key was cancelled or rescheduled

    def __len__(self) -> int:
        return len(self._current)

    def __contains__(self, key: object) -> bool:
        return key in self._current

    def schedule(self, key: K, at: float) -> None:
        seq = next(self._seq)
        if self._current.get(key) is not None:
            self._forgot_one()
        self._current[key] = (at, seq)
        heapq.heappush(self._heap, (at, seq, key))

    def cancel(self, key: K) -> None:
        if self._current.pop(key, None) is not None:
            self._forgot_one()

    def _forgot_one(self) -> None:
        """Lazy cancelling leaves entries behind; a phone refreshing its registration
        every minute with an expiry an hour away would pile them up. When they outnumber
        the live ones, rebuild the heap from the live entries."""
        self._stale += 1
        if self._stale > 2 * len(self._current) + 1024:
            self._heap = [(at, seq, key) for key, (at, seq) in self._current.items()]
            heapq.heapify(self._heap)
            self._stale = 0

    def deadline(self, key: K) -> float | None:
        entry = self._current.get(key)
        return None if entry is None else entry[0]

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap:
            at, seq, key = heap[0]
            if self._current.get(key) == (at, seq):
                return at
            heapq.heappop(heap)
            self._stale = max(0, self._stale - 1)
        return None

    def pop_due(self, now: float) -> list[K]:
        """Remove and return every key whose deadline is at or before ``now``, in order."""
        due: list[K] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, seq, key = heapq.heappop(heap)
            if self._current.get(key) == (at, seq):
                del self._current[key]
                due.append(key)
            else:
                self._stale = max(0, self._stale - 1)
        return due

    @property
    def heap_size(self) -> int:
        """Entries in the heap, stale ones included (for tests and the status page)."""
        return len(self._heap)
