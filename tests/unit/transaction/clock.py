"""A virtual clock for the transaction tests: it keeps the timers the machines ask for in
a heap and fires them in deadline order (ties in the order they were started), as the
switch's TimerQueue will."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar

from b2bua.transaction.actions import (
    CancelTimer,
    SendMessage,
    StartTimer,
    TransactionAction,
)
from b2bua.transaction.events import CancelTransactionTimer, LayerEvent, StartTransactionTimer
from b2bua.transaction.keys import TransactionKey
from b2bua.transaction.layer import TransactionLayer
from b2bua.transaction.timers import TimerName

K = TypeVar("K", bound=Hashable)


class TimerHeap(Generic[K]):
    """Timers by key with lazy cancellation; starting a running key replaces it."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._live: dict[K, int] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._live)

    def start(self, key: K, at: float) -> None:
        self._seq += 1
        self._live[key] = self._seq
        heapq.heappush(self._heap, (at, self._seq, key))

    def cancel(self, key: K) -> None:
        assert key in self._live, f"cancelled a timer that is not running: {key}"
        del self._live[key]

    def next_deadline(self) -> float | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, until: float) -> tuple[float, K] | None:
        self._drop_stale()
        if not self._heap or self._heap[0][0] > until:
            return None
        at, _, key = heapq.heappop(self._heap)
        del self._live[key]
        return at, key

    def _drop_stale(self) -> None:
        while self._heap and self._live.get(self._heap[0][2]) != self._heap[0][1]:
            heapq.heappop(self._heap)


class Timed(Protocol):
    def on_timer(self, name: TimerName, now: float) -> list[TransactionAction]: ...


M = TypeVar("M", bound=Timed)


class MachineClock(Generic[M]):
    """Drives one machine: records every action with the time it was returned."""

    def __init__(self, machine: M) -> None:
        self.machine = machine
        self.timers: TimerHeap[TimerName] = TimerHeap()
        self.log: list[tuple[float, TransactionAction]] = []
        self.now = 0.0

    def at(
        self, t: float, step: Callable[[float], list[TransactionAction]]
    ) -> list[TransactionAction]:
        """Fire the timers due up to ``t``, then run ``step(t)``."""
        self.run_until(t)
        self.now = t
        return self.feed(step(t), t)

    def feed(self, actions: list[TransactionAction], now: float) -> list[TransactionAction]:
        for action in actions:
            self.log.append((now, action))
            if isinstance(action, StartTimer):
                assert action.at >= now
                self.timers.start(action.name, action.at)
            elif isinstance(action, CancelTimer):
                self.timers.cancel(action.name)
        return actions

    def run_until(self, t: float) -> None:
        while (due := self.timers.pop_due(t)) is not None:
            at, name = due
            self.now = at
            self.feed(self.machine.on_timer(name, at), at)
        self.now = max(self.now, t)

    def run(self) -> None:
        """Fire every timer until none is left."""
        while (deadline := self.timers.next_deadline()) is not None:
            self.run_until(deadline)

    def send_times(self) -> list[float]:
        return [t for t, a in self.log if isinstance(a, SendMessage)]

    def sent(self) -> list[tuple[float, SendMessage]]:
        return [(t, a) for t, a in self.log if isinstance(a, SendMessage)]

    def of_type(self, kind: type[TransactionAction]) -> list[tuple[float, TransactionAction]]:
        return [(t, a) for t, a in self.log if isinstance(a, kind)]


class LayerClock:
    """Drives a TransactionLayer: one heap for the timers of every transaction."""

    def __init__(self, layer: TransactionLayer) -> None:
        self.layer = layer
        self.timers: TimerHeap[tuple[TransactionKey, TimerName]] = TimerHeap()
        self.log: list[tuple[float, LayerEvent]] = []
        self.now = 0.0

    def at(self, t: float, step: Callable[[float], list[LayerEvent]]) -> list[LayerEvent]:
        self.run_until(t)
        self.now = t
        return self.feed(step(t), t)

    def feed(self, events: list[LayerEvent], now: float) -> list[LayerEvent]:
        for event in events:
            self.log.append((now, event))
            if isinstance(event, StartTransactionTimer):
                assert event.at >= now
                self.timers.start((event.key, event.name), event.at)
            elif isinstance(event, CancelTransactionTimer):
                self.timers.cancel((event.key, event.name))
        return events

    def run_until(self, t: float) -> None:
        while (due := self.timers.pop_due(t)) is not None:
            at, (key, name) = due
            self.now = at
            self.feed(self.layer.on_timer(key, name, at), at)
        self.now = max(self.now, t)

    def run(self) -> None:
        while (deadline := self.timers.next_deadline()) is not None:
            self.run_until(deadline)

    def send_times(self) -> list[float]:
        return [t for t, e in self.log if isinstance(e, SendMessage)]
