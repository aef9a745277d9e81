"""Hunt: one per call to a hunt group. Pure: every input takes ``now`` and returns the
actions for the call layer (ARCHITECTURE.md, "Hunt semantics").

The call layer turns :class:`RingMember` into callee legs to every registered device of
that member, :class:`StopMember` into CANCEL (or ACK + BYE when the member's 2xx crosses
it), :class:`ConnectMember` into the bridge, and :class:`Overflow` into the destination.
Every :class:`RingMember` is followed by exactly one of: :class:`StopMember`,
:class:`ConnectMember`, or the member's own failure (:meth:`Hunt.member_failed`).

The switch files :class:`StartTimer` in its timer queue and feeds :meth:`Hunt.timer_fired`
back. It records every ring, stop and connect in the :class:`MemberBook` before feeding any
other hunt, and feeds :meth:`Hunt.member_available` / :meth:`Hunt.member_changed` to the
hunts whose :attr:`Hunt.waiting_on` holds a member that changed, oldest first.
:mod:`b2bua.hunt.simulation` does all of this the same way, without a network.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Final, TypeAlias

from b2bua.hunt import timing
from b2bua.hunt.availability import MemberBook, MemberState
from b2bua.hunt.model import Destination, HuntGroup, OverflowReason
from b2bua.hunt.strategies import Progress, Step, next_step
from b2bua.sip.status import StatusCode

#: A member answering with one of these is busy for this call only (it counts towards
#: "all busy"). RFC 3261 §16.7's "a 6xx stops new branches" binds proxies, not a B2BUA's hunt.
BUSY_STATUSES: Final = frozenset(
    {StatusCode.BUSY_HERE, StatusCode.BUSY_EVERYWHERE, StatusCode.DECLINE}
)


class HuntTimer(Enum):
    GROUP_TIMEOUT = "group timeout"  # the hard cap, from the caller's INVITE
    NEXT_STEP = "next step"  # a ring end, a start delay or a wave: ask the strategy again


class HuntState(Enum):
    READY = "ready"
    HUNTING = "hunting"
    CONNECTED = "connected"
    OVERFLOWED = "overflowed"
    ABANDONED = "abandoned"  # the caller hung up


# -- actions (hunt -> call layer)


@dataclass(frozen=True, slots=True)
class RingMember:
    """Ring every registered device of ``number``, as one member."""

    number: str


@dataclass(frozen=True, slots=True)
class StopMember:
    """Stop ringing ``number`` (CANCEL; ACK + BYE if its answer crosses the CANCEL)."""

    number: str


@dataclass(frozen=True, slots=True)
class ConnectMember:
    """``number`` answered first: bridge the caller to it."""

    number: str


@dataclass(frozen=True, slots=True)
class Overflow:
    """Nobody took the call: send the caller to ``destination``."""

    destination: Destination
    reason: OverflowReason


@dataclass(frozen=True, slots=True)
class StartTimer:
    name: HuntTimer
    at: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    name: HuntTimer


HuntAction: TypeAlias = (
    RingMember | StopMember | ConnectMember | Overflow | StartTimer | CancelTimer
)


# -- the trace


class Outcome(StrEnum):
    RUNG = "rung"  # INVITEs sent
    ALERTING = "alerting"  # 180 from the member
    SKIPPED = "skipped"  # passed over without an INVITE (``reason``: its state)
    ANSWERED = "answered"
    FAILED = "failed"  # ``status``: its final response
    CANCELLED = "cancelled"  # stopped by us (``reason``: why)
    ANSWERED_LATE = "answered late"  # answered after it was stopped: the call layer ends it
    CONFIRMING = "confirming"  # answered; its person must press 1 before it wins


class StopCause(StrEnum):
    RING_TIME = "ring time over"
    ANSWERED_ELSEWHERE = "answered elsewhere"
    GROUP_TIMEOUT = "group timeout"
    CALLER_GONE = "caller gone"


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceEntry:
    """One member's outcome at ``at`` (the switch's clock), in round ``round`` (0 first)."""

    at: float
    member: str
    outcome: Outcome
    round: int = 0
    reason: MemberState | StopCause | None = None
    status: int | None = None

    def as_dict(self, started_at: float) -> dict[str, object]:
        """For the call's log and record: ``t`` is seconds since the caller's INVITE."""
        out: dict[str, object] = {
            "t": round(self.at - started_at, 3),
            "member": self.member,
            "outcome": self.outcome.value,
            "round": self.round,
        }
        if self.reason is not None:
            out["reason"] = self.reason.value
        if self.status is not None:
            out["status"] = self.status
        return out


class Hunt:
    """The hunt of one call to ``group``. Inputs: :meth:`start`, :meth:`member_ringing`,
    :meth:`member_answered`, :meth:`member_failed`, :meth:`member_available`,
    :meth:`member_changed`, :meth:`caller_gone`, :meth:`timer_fired`. Each returns
    :data:`HuntAction` s. ``now`` at construction is the caller's INVITE: the group
    timeout counts from it. ``seed`` seeds the hunt's own random generator (random
    strategy), so ``b2bua simulate --seed`` replays the call; it is in :meth:`record`."""

    def __init__(self, group: HuntGroup, book: MemberBook, *, seed: int, now: float) -> None:
        self.group = group
        self.seed = seed
        self.started_at = now
        self.deadline = timing.group_deadline(group, now)
        self.state = HuntState.READY
        self.trace: list[TraceEntry] = []
        self.connected: str | None = None
        self.overflow: Overflow | None = None
        self.waiting_on: frozenset[str] = frozenset()  # members whose change matters now
        self._book = book
        self._rng = random.Random(seed)
        self._progress = Progress(started_at=now, round_started_at=now)
        self._armed: dict[HuntTimer, float] = {}
        self._last_skip: dict[str, tuple[int, MemberState]] = {}

    @property
    def is_hunting(self) -> bool:
        return self.state is HuntState.HUNTING

    @property
    def ringing(self) -> frozenset[str]:
        """Members ringing for this call now."""
        return frozenset(self._progress.ringing)

    def may_answer(self, number: str, now: float) -> bool:
        """Whether an answer from ``number`` now wins the call: the call layer asks before
        it bridges. No when the member was stopped (its answer crossed our CANCEL) or the
        group timeout has come (it wins over an answer at the same instant)."""
        return (
            self.is_hunting
            and number in self._progress.ringing
            and not timing.is_timed_out(self.group, self.started_at, now)
        )

    # -- inputs

    def start(self, now: float) -> list[HuntAction]:
        """Begin: over the channel limit, overflow at once; else ring whoever the strategy
        picks and arm the group timeout."""
        if self.state is not HuntState.READY:
            return []
        limit = self.group.channel_limit
        if limit is not None and self._book.channels(self.group.name) >= limit:
            return self._overflow(OverflowReason.OVER_LIMIT)
        self.state = HuntState.HUNTING
        if timing.is_timed_out(self.group, self.started_at, now):
            return self._end(StopCause.GROUP_TIMEOUT, OverflowReason.TIMEOUT, now)
        return [*self._arm(HuntTimer.GROUP_TIMEOUT, self.deadline), *self._advance(now)]

    def member_ringing(self, number: str, now: float) -> list[HuntAction]:
        """A 180 from one of ``number``'s devices."""
        if self.is_hunting and number in self._progress.ringing:
            self._note(now, number, Outcome.ALERTING)
        return []

    def member_answered(self, number: str, now: float) -> list[HuntAction]:
        """A 2xx from ``number``: the first one wins, the others are stopped."""
        if self.is_hunting and timing.is_timed_out(self.group, self.started_at, now):
            return self._end(StopCause.GROUP_TIMEOUT, OverflowReason.TIMEOUT, now)
        if not self.is_hunting or number not in self._progress.ringing:
            self._note(now, number, Outcome.ANSWERED_LATE)
            return []
        del self._progress.ringing[number]
        self._note(now, number, Outcome.ANSWERED)
        self.state = HuntState.CONNECTED
        self.connected = number
        self.waiting_on = frozenset()
        stops = self._stop_all(StopCause.ANSWERED_ELSEWHERE, now)
        return [ConnectMember(number), *stops, *self._disarm_all()]

    def member_confirming(self, number: str, until: float, now: float) -> list[HuntAction]:
        """A 2xx from ``number`` whose person must confirm (press 1) by ``until``: its ring
        is held open until then, so its own ring time does not cut the confirmation short
        (the group timeout still does). The answer that follows a confirmation comes as
        :meth:`member_answered`; a refusal as :meth:`member_failed`."""
        progress = self._progress
        if not self.is_hunting or number not in progress.ringing:
            return []
        progress.ringing[number] = max(progress.ringing[number], until)
        self._note(now, number, Outcome.CONFIRMING)
        return self._advance(now)

    def member_answered_late(self, number: str, now: float) -> list[HuntAction]:
        """A 2xx from ``number`` that the call layer released (it crossed our stop, or
        another member won): for the trace only."""
        self._note(now, number, Outcome.ANSWERED_LATE)
        return []

    def member_failed(self, number: str, status: int, now: float) -> list[HuntAction]:
        """A final non-2xx from ``number`` (every device of it failed). 486, 600 and 603
        mark it busy for this call; the hunt goes on."""
        if not self.is_hunting or number not in self._progress.ringing:
            return []  # e.g. the 487 to our CANCEL
        del self._progress.ringing[number]
        self._note(now, number, Outcome.FAILED, status=status)
        if status in BUSY_STATUSES:
            self._progress.busy.add(number)
        if timing.is_timed_out(self.group, self.started_at, now):
            return self._end(StopCause.GROUP_TIMEOUT, OverflowReason.TIMEOUT, now)
        return self._advance(now)

    def member_available(self, number: str, now: float) -> list[HuntAction]:
        """``number`` freed up (a call of it ended, its phone registered, DND off): the
        switch feeds this to the hunts in whose :attr:`waiting_on` it is, oldest first."""
        return self.member_changed(number, now)

    def member_changed(self, number: str, now: float) -> list[HuntAction]:
        """``number`` changed in the book in another way (say it answered another caller
        and is talking now): a caller waiting for it may now be all busy."""
        if not self.is_hunting:
            return []
        if timing.is_timed_out(self.group, self.started_at, now):
            return self._end(StopCause.GROUP_TIMEOUT, OverflowReason.TIMEOUT, now)
        return self._advance(now)

    def caller_gone(self, now: float) -> list[HuntAction]:
        """The caller hung up (CANCEL) or its leg failed: stop every member."""
        if self.state is HuntState.READY:
            self.state = HuntState.ABANDONED
        if not self.is_hunting:
            return []
        self.state = HuntState.ABANDONED
        self.waiting_on = frozenset()
        return [*self._stop_all(StopCause.CALLER_GONE, now), *self._disarm_all()]

    def timer_fired(self, name: HuntTimer, now: float) -> list[HuntAction]:
        if self._armed.pop(name, None) is None or not self.is_hunting:
            return []
        if name is HuntTimer.GROUP_TIMEOUT or timing.is_timed_out(self.group, self.started_at, now):
            return self._end(StopCause.GROUP_TIMEOUT, OverflowReason.TIMEOUT, now)
        return self._advance(now)

    # -- the record

    def record(self) -> dict[str, object]:
        """The hunt for the call's structured log and its call record."""
        return {
            "group": self.group.name,
            "strategy": self.group.strategy.value,
            "seed": self.seed,
            "result": self.state.value,
            "connected": self.connected,
            "overflow": None if self.overflow is None else self.overflow.reason.value,
            "members": [entry.as_dict(self.started_at) for entry in self.trace],
        }

    # -- inside

    def _advance(self, now: float) -> list[HuntAction]:
        step = next_step(self.group, self._book, self._progress, self._rng, now)
        return self._apply(step, now)

    def _apply(self, step: Step, now: float) -> list[HuntAction]:
        progress = self._progress
        progress.steps += 1
        actions: list[HuntAction] = []
        for number in step.stop:
            del progress.ringing[number]
            actions.append(StopMember(number))
            self._note(now, number, Outcome.CANCELLED, reason=StopCause.RING_TIME)
        if step.new_round:
            progress.round += 1
            progress.round_started_at = now
            progress.rung_in_round.clear()
            progress.skipped_in_round.clear()
        for number, state in step.skipped:
            self._note_skip(now, number, state)
        progress.skipped_in_round.update(step.done)
        for number, ring_end in step.ring:
            progress.ringing[number] = ring_end
            progress.rung_in_round.add(number)
            progress.rung.add(number)
            actions.append(RingMember(number))
            self._note(now, number, Outcome.RUNG)
        self.waiting_on = step.waiting_on
        if step.exhausted is not None:
            return actions + self._end(StopCause.RING_TIME, step.exhausted, now)
        return actions + self._arm(HuntTimer.NEXT_STEP, step.wake_at)

    def _end(self, cause: StopCause, reason: OverflowReason, now: float) -> list[HuntAction]:
        actions = self._stop_all(cause, now)
        return actions + self._disarm_all() + self._overflow(reason)

    def _overflow(self, reason: OverflowReason) -> list[HuntAction]:
        self.state = HuntState.OVERFLOWED
        self.waiting_on = frozenset()
        self.overflow = Overflow(self.group.destination(reason), reason)
        return [self.overflow]

    def _stop_all(self, cause: StopCause, now: float) -> list[HuntAction]:
        stopped = list(self._progress.ringing)
        self._progress.ringing.clear()
        for number in stopped:
            self._note(now, number, Outcome.CANCELLED, reason=cause)
        return [StopMember(number) for number in stopped]

    def _arm(self, name: HuntTimer, at: float | None) -> list[HuntAction]:
        if at is None:
            return [CancelTimer(name)] if self._armed.pop(name, None) is not None else []
        if self._armed.get(name) == at:
            return []
        self._armed[name] = at
        return [StartTimer(name, at)]

    def _disarm_all(self) -> list[HuntAction]:
        names = list(self._armed)
        self._armed.clear()
        return [CancelTimer(name) for name in names]

    def _note(
        self,
        now: float,
        number: str,
        outcome: Outcome,
        *,
        reason: MemberState | StopCause | None = None,
        status: int | None = None,
    ) -> None:
        entry = TraceEntry(
            at=now,
            member=number,
            outcome=outcome,
            round=self._progress.round,
            reason=reason,
            status=status,
        )
        self.trace.append(entry)

    def _note_skip(self, now: float, number: str, state: MemberState) -> None:
        """A member passed over again for the same reason in the same round is noted once."""
        key = (self._progress.round, state)
        if self._last_skip.get(number) != key:
            self._last_skip[number] = key
            self._note(now, number, Outcome.SKIPPED, reason=state)
