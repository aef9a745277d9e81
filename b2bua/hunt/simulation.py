"""Simulation: hunts on a virtual clock with scripted phones and no network, driven by
the same :class:`~b2bua.hunt.engine.Hunt` the switch runs, doing what the switch does
around it (the :class:`MemberBook`, timers, waking hunts that wait for a member, oldest
first, and the channel count). For ``b2bua simulate`` and the tests. Pure: time only
moves in :meth:`Simulation.run`.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

from b2bua.hunt.availability import MemberBook
from b2bua.hunt.engine import (
    CancelTimer,
    ConnectMember,
    Hunt,
    HuntAction,
    HuntTimer,
    Overflow,
    RingMember,
    StartTimer,
    StopMember,
)
from b2bua.hunt.model import HuntGroup, ToGroup


@dataclass(frozen=True, slots=True, kw_only=True)
class Phone:
    """How a member's phones behave when rung; times count from the ring. Without any
    of ``answers_after`` / ``fails_after`` they ring until stopped. ``talks_for``: after
    answering, the call ends this much later (None: it lasts)."""

    alerts_after: float | None = 0.0
    answers_after: float | None = None
    fails_after: float | None = None
    fail_status: int = 486
    talks_for: float | None = None


@dataclass(frozen=True, slots=True)
class Happened:
    """``action`` of the hunt of call ``call`` at ``at``."""

    at: float
    call: int
    action: HuntAction


class Simulation:
    """Calls into ``groups`` with the members' live state in ``book``."""

    def __init__(self, groups: Mapping[str, HuntGroup], book: MemberBook) -> None:
        self.groups = groups
        self.book = book
        self.now = 0.0
        self.hunts: dict[int, Hunt] = {}  # by call, in the order they started
        self.timeline: list[Happened] = []
        self._phones: dict[str, Phone] = {}
        self._seeds: list[int] = []
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._legs: dict[tuple[int, str], int] = {}  # (call, member) ringing -> token
        self._timers: dict[tuple[int, HuntTimer], int] = {}
        self._channel: dict[int, bool] = {}  # call -> holds a channel of its group

    # -- the script

    def phone(self, number: str, phone: Phone) -> None:
        self._phones[number] = phone

    def call(self, group: str, *, at: float = 0.0, seed: int = 0) -> int:
        """A caller dials ``group`` at ``at``; returns the call's key in :attr:`hunts`."""
        index = len(self._seeds)
        self._seeds.append(seed)
        self._schedule(at, lambda: self._start(index, group, seed))
        return index

    def ends_call(self, number: str, at: float) -> None:
        """A call ``number`` is talking on (outside the simulation) ends at ``at``."""
        self._schedule(at, lambda: self._call_ended(number))

    def hang_up(self, call: int, at: float) -> None:
        self._schedule(at, lambda: self._caller_gone(call))

    def run(self, until: float = math.inf, *, max_events: int = 100_000) -> list[Happened]:
        """Process everything due up to ``until``; returns the actions taken meanwhile."""
        first = len(self.timeline)
        for _ in range(max_events):
            if not self._queue or self._queue[0][0] > until:
                return self.timeline[first:]
            at, _, event = heapq.heappop(self._queue)
            self.now = at
            event()
        raise RuntimeError(f"more than {max_events} events: a hunt is looping")

    def actions(self, call: int = 0) -> list[tuple[float, HuntAction]]:
        """(time, action) of one call, in order."""
        return [(h.at, h.action) for h in self.timeline if h.call == call]

    # -- inside

    def _schedule(self, at: float, event: Callable[[], None]) -> int:
        seq = next(self._seq)
        heapq.heappush(self._queue, (at, seq, event))
        return seq

    def _start(self, index: int, group: str, seed: int) -> None:
        hunt = Hunt(self.groups[group], self.book, seed=seed, now=self.now)
        self.hunts[index] = hunt
        actions = hunt.start(self.now)
        if hunt.is_hunting:
            self.book.channel_opened(group)
            self._channel[index] = True
        self._apply(index, actions)

    def _apply(self, call: int, actions: list[HuntAction]) -> None:
        """Carry out a hunt's actions as the switch does: all of them in the book first,
        then wake the hunts waiting for a member that changed."""
        hunt = self.hunts[call]
        changed: list[str] = []
        for action in actions:
            self.timeline.append(Happened(self.now, call, action))
            match action:
                case RingMember(number=number):
                    self.book.ringing_started(number)
                    self._ring(call, number)
                case StopMember(number=number):
                    if self._legs.pop((call, number), None) is not None:
                        self.book.ringing_stopped(number)
                        changed.append(number)
                case ConnectMember(number=number):
                    self._legs.pop((call, number), None)
                    self.book.call_answered(number, self.now, group=hunt.group.name)
                    changed.append(number)
                    talk = self._phones.get(number, Phone()).talks_for
                    if talk is not None:
                        self._schedule(self.now + talk, partial(self._talk_ended, call, number))
                case Overflow(destination=destination):
                    if isinstance(destination, ToGroup):
                        self.call(destination.name, at=self.now, seed=self._seeds[call])
                case StartTimer(name=name, at=at):
                    token = next(self._seq)
                    self._timers[(call, name)] = token
                    self._schedule(at, partial(self._timer, call, name, token))
                case CancelTimer(name=name):
                    self._timers.pop((call, name), None)
        if not hunt.is_hunting and hunt.connected is None:
            self._close_channel(call)
        for number in changed:
            self._wake(number)

    def _ring(self, call: int, number: str) -> None:
        phone = self._phones.get(number, Phone())
        token = next(self._seq)
        self._legs[(call, number)] = token
        hunt = self.hunts[call]

        def alive() -> bool:
            return self._legs.get((call, number)) == token

        def alert() -> None:
            if alive():
                self._apply(call, hunt.member_ringing(number, self.now))

        def answer() -> None:
            if alive():
                self._apply(call, hunt.member_answered(number, self.now))

        def fail() -> None:
            if alive():
                del self._legs[(call, number)]
                self.book.ringing_stopped(number)
                self._apply(call, hunt.member_failed(number, phone.fail_status, self.now))
                self._wake(number)

        for delay, event in (
            (phone.alerts_after, alert),
            (phone.answers_after, answer),
            (phone.fails_after, fail),
        ):
            if delay is not None:
                self._schedule(self.now + delay, event)

    def _caller_gone(self, call: int) -> None:
        hunt = self.hunts.get(call)
        if hunt is not None:
            self._apply(call, hunt.caller_gone(self.now))

    def _timer(self, call: int, name: HuntTimer, token: int) -> None:
        if self._timers.get((call, name)) == token:
            del self._timers[(call, name)]
            self._apply(call, self.hunts[call].timer_fired(name, self.now))

    def _talk_ended(self, call: int, number: str) -> None:
        self._close_channel(call)
        self._call_ended(number)

    def _call_ended(self, number: str) -> None:
        self.book.call_ended(number, self.now)
        self._wake(number)

    def _close_channel(self, call: int) -> None:
        if self._channel.pop(call, False):
            self.book.channel_closed(self.hunts[call].group.name)

    def _wake(self, number: str) -> None:
        """The switch's rule: hunts waiting for ``number`` hear about it, oldest first."""
        for call, hunt in list(self.hunts.items()):
            if hunt.is_hunting and number in hunt.waiting_on:
                if self.book.is_free(number):
                    self._apply(call, hunt.member_available(number, self.now))
                else:
                    self._apply(call, hunt.member_changed(number, self.now))
