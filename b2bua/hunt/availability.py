"""MemberBook: the switch's live truth about each extension, as hunts need it
(ARCHITECTURE.md, "Hunt semantics"). The switch writes it as things happen (a phone
registers, a leg starts ringing, a call is answered or ends); strategies only read it.

A member at its maximum concurrent calls is never offered another call, and ringing for
another call counts against that maximum too. Pure bookkeeping: no clock, times come in
as ``now``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class MemberState(StrEnum):
    """What a member is doing, as "Hunt semantics" names the states."""

    IDLE = "idle"
    RINGING = "ringing"  # for another call
    TALKING = "talking"
    DND = "dnd"
    UNREGISTERED = "unregistered"
    UNREACHABLE = "unreachable"  # registered, but its phones stopped answering OPTIONS


@dataclass(slots=True)
class _Line:
    max_calls: int = 1
    registered: bool = False
    reachable: bool = True
    dnd: bool = False
    ringing: int = 0
    talking: int = 0
    idle_since: float = -math.inf  # when its last call ended; never: the longest idle
    answered: int = 0  # calls answered, for fewest_calls
    last_answered: float | None = None


class MemberBook:
    """Per extension: registered, reachable, DND, calls ringing and talking (against
    ``max_calls``), when its last call ended and how many it answered; per group: the
    member who last answered (round robin) and the calls on the group's numbers (the
    channel limit). A number the book was never told about reads as unregistered.

    The switch must record a hunt's :class:`~b2bua.hunt.engine.RingMember` here
    (:meth:`ringing_started`) before it feeds any other hunt, so that two callers are
    never offered the same member at once.
    """

    def __init__(self) -> None:
        self._lines: dict[str, _Line] = {}
        self._last_answerer: dict[str, str] = {}
        self._channels: dict[str, int] = {}

    # -- written by the switch

    def add(
        self, number: str, *, max_calls: int = 1, dnd: bool = False, registered: bool = False
    ) -> None:
        """Know extension ``number`` (from the config); keeps its calls on a reload."""
        line = self._lines.setdefault(number, _Line())
        line.max_calls = max_calls
        line.dnd = dnd
        line.registered = line.registered or registered

    def set_registered(self, number: str, registered: bool) -> None:
        """``registered``: it has at least one binding (all of its devices ring as one)."""
        self._line(number).registered = registered

    def set_reachable(self, number: str, reachable: bool) -> None:
        self._line(number).reachable = reachable

    def set_dnd(self, number: str, dnd: bool) -> None:
        self._line(number).dnd = dnd

    def ringing_started(self, number: str) -> None:
        self._line(number).ringing += 1

    def ringing_stopped(self, number: str) -> None:
        line = self._line(number)
        line.ringing = max(0, line.ringing - 1)

    def call_answered(self, number: str, now: float, group: str | None = None) -> None:
        """One of its ringing calls was answered (``group``: through that hunt group)."""
        line = self._line(number)
        line.ringing = max(0, line.ringing - 1)
        line.talking += 1
        line.answered += 1
        line.last_answered = now
        if group is not None:
            self._last_answerer[group] = number

    def call_started(self, number: str) -> None:
        """A call without ringing (the member dialled out)."""
        self._line(number).talking += 1

    def call_ended(self, number: str, now: float) -> None:
        line = self._line(number)
        line.talking = max(0, line.talking - 1)
        line.idle_since = now

    def channel_opened(self, group: str) -> None:
        self._channels[group] = self._channels.get(group, 0) + 1

    def channel_closed(self, group: str) -> None:
        self._channels[group] = max(0, self._channels.get(group, 0) - 1)

    def knows(self, number: str) -> bool:
        """Whether ``number`` was added (or touched by a call) already."""
        return number in self._lines

    def _line(self, number: str) -> _Line:
        return self._lines.setdefault(number, _Line())

    # -- read by strategies and hunts

    def state(self, number: str) -> MemberState:
        """What the member is doing (for the trace and /status)."""
        line = self._lines.get(number)
        if line is None or not line.registered:
            return MemberState.UNREGISTERED
        if not line.reachable:
            return MemberState.UNREACHABLE
        if line.dnd:
            return MemberState.DND
        if line.talking:
            return MemberState.TALKING
        if line.ringing:
            return MemberState.RINGING
        return MemberState.IDLE

    def blocker(self, number: str) -> MemberState | None:
        """Why the member cannot be offered a call now, or None when it can. RINGING means
        it is at its maximum with a call still ringing (it may free up soon: a caller
        waits for it); TALKING means it is at its maximum with calls in progress."""
        line = self._lines.get(number)
        if line is None or not line.registered:
            return MemberState.UNREGISTERED
        if not line.reachable:
            return MemberState.UNREACHABLE
        if line.dnd:
            return MemberState.DND
        if line.ringing + line.talking < line.max_calls:
            return None
        return MemberState.RINGING if line.ringing else MemberState.TALKING

    def at_max_calls(self, number: str) -> bool:
        """Calls ringing and in progress have reached its ``max_calls`` (registered or not:
        a plain call to it is then refused busy)."""
        line = self._lines.get(number)
        return line is not None and line.ringing + line.talking >= line.max_calls

    def is_dnd(self, number: str) -> bool:
        line = self._lines.get(number)
        return line is not None and line.dnd

    def is_free(self, number: str) -> bool:
        return self.blocker(number) is None

    def idle_since(self, number: str) -> float:
        """When its last call ended (minus infinity: never had one)."""
        line = self._lines.get(number)
        return -math.inf if line is None else line.idle_since

    def answered_count(self, number: str) -> int:
        line = self._lines.get(number)
        return 0 if line is None else line.answered

    def last_answered(self, number: str) -> float | None:
        line = self._lines.get(number)
        return None if line is None else line.last_answered

    def last_answerer(self, group: str) -> str | None:
        return self._last_answerer.get(group)

    def channels(self, group: str) -> int:
        """Calls on the group's numbers right now (the channel limit)."""
        return self._channels.get(group, 0)
