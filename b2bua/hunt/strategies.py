"""The strategies: one small pure function each, and :func:`next_step`, which asks the
group's strategy what to do now (ARCHITECTURE.md, "Hunt semantics").

A hunt asks again every time something changes (a member failed, a timer fired, a member
became free), always against the live :class:`MemberBook`: nothing is planned at call
start. A strategy sees the current :class:`Round` (who rings for this call, who is left)
and returns a :class:`Pick`: members to ring now, members passed over and why, and when it
wants to be asked again. :func:`next_step` does what every strategy shares: stopping
members whose ring time is over, rounds, "primary first", waiting for a member ringing
for another caller, and deciding that the hunt is over (no answer, or all busy).

Two ways to pass over a member who cannot take the call now:

- *skip* (in-order strategies: linear, round robin, memory hunt): the member is done for
  this round, the hunt moves past it;
- *pass over* (the others): the member is asked about again at the next decision, so it
  is offered the call as soon as it frees up.

A member ringing for another caller is never skipped, only passed over: while one is,
a caller keeps waiting (until the group timeout) instead of overflowing as all busy.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, TypeAlias

from b2bua.hunt import timing
from b2bua.hunt.availability import MemberBook, MemberState
from b2bua.hunt.model import HuntGroup, Member, OverflowReason, Strategy

#: primary_first: the first member in these states means nobody else rings.
PRIMARY_BUSY: Final = frozenset({MemberState.TALKING, MemberState.RINGING, MemberState.DND})


@dataclass(slots=True)
class Progress:
    """A hunt's own record of its call, written by the engine, read by :func:`next_step`."""

    started_at: float  # the caller's INVITE
    round: int = 0  # 0 first
    round_started_at: float = 0.0
    ringing: dict[str, float] = field(default_factory=dict)  # ours: number -> ring end
    rung_in_round: set[str] = field(default_factory=set)
    skipped_in_round: set[str] = field(default_factory=set)
    busy: set[str] = field(default_factory=set)  # 486/600/603: busy for this call only
    rung: set[str] = field(default_factory=set)  # rung at least once in this hunt
    steps: int = 0  # decisions taken so far


@dataclass(frozen=True, slots=True)
class Round:
    """What a strategy sees: the current round at the moment of the decision."""

    hunt_started_at: float  # the caller's INVITE
    started_at: float  # this round's start
    ringing: Mapping[str, float]  # still ringing for this call: number -> ring end
    rung: frozenset[str]  # rung in this round, ringing ones included
    untried: tuple[Member, ...]  # group order; not rung or skipped this round, not busy

    @classmethod
    def current(cls, group: HuntGroup, progress: Progress, expired: Sequence[str]) -> Round:
        done = progress.rung_in_round | progress.skipped_in_round | progress.busy
        return cls(
            hunt_started_at=progress.started_at,
            started_at=progress.round_started_at,
            ringing={n: end for n, end in progress.ringing.items() if n not in expired},
            rung=frozenset(progress.rung_in_round),
            untried=tuple(m for m in group.members if m.number not in done),
        )

    @classmethod
    def fresh(cls, group: HuntGroup, progress: Progress, now: float) -> Round:
        return cls(
            hunt_started_at=progress.started_at,
            started_at=now,
            ringing={},
            rung=frozenset(),
            untried=tuple(m for m in group.members if m.number not in progress.busy),
        )


Passed: TypeAlias = tuple[tuple[Member, MemberState], ...]


@dataclass(frozen=True, slots=True)
class Pick:
    """A strategy's answer: ``ring`` now; ``skip`` for the rest of the round; ``pass_over``
    for now; ask again at ``wake_at`` (a start delay, a wave) if nothing happens before."""

    ring: tuple[Member, ...] = ()
    skip: Passed = ()
    pass_over: Passed = ()
    wake_at: float | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """What the hunt does now: ``stop`` members whose ring time is over; start a new
    round; ``ring`` members (number, ring end); note the ``skipped`` ones (number, why;
    ``done`` ones for the rest of the round); ask again at ``wake_at`` or when one of
    ``waiting_on`` changes. ``exhausted``: nobody is left, overflow for that reason."""

    stop: tuple[str, ...] = ()
    new_round: bool = False
    ring: tuple[tuple[str, float], ...] = ()
    skipped: tuple[tuple[str, MemberState], ...] = ()
    done: tuple[str, ...] = ()
    wake_at: float | None = None
    waiting_on: frozenset[str] = frozenset()
    exhausted: OverflowReason | None = None


StrategyFunction: TypeAlias = Callable[[HuntGroup, MemberBook, Round, random.Random, float], Pick]


# -- the strategies


def ring_all(
    group: HuntGroup, book: MemberBook, rnd: Round, rng: random.Random, now: float
) -> Pick:
    """Every free member at once; the others are offered the call when they free up."""
    return _all_free(rnd.untried, book)


def staggered(
    group: HuntGroup, book: MemberBook, rnd: Round, rng: random.Random, now: float
) -> Pick:
    """Ring all, each member from its own start delay; earlier members keep ringing."""
    due = [m for m in rnd.untried if timing.start_at(m, rnd.started_at) <= now]
    later = [timing.start_at(m, rnd.started_at) for m in rnd.untried if m not in due]
    return replace(_all_free(due, book), wake_at=min(later, default=None))


def memory_hunt(
    group: HuntGroup, book: MemberBook, rnd: Round, rng: random.Random, now: float
) -> Pick:
    """Progressive: the first member, then the first two, then three...: one more member
    every wave interval while the earlier ones keep ringing. A busy member is skipped
    and the wave takes the next one."""
    waves = timing.waves_begun(group, rnd.started_at, now)
    pick = _in_order(rnd.untried, book, limit=max(0, waves - len(rnd.rung)))
    if waves == len(group.members) or len(rnd.untried) == len(pick.ring) + len(pick.skip):
        return pick  # every wave has begun, or nobody is left for the next one
    return replace(pick, wake_at=timing.wave_at(group, rnd.started_at, waves))


def linear(group: HuntGroup, book: MemberBook, rnd: Round, rng: random.Random, now: float) -> Pick:
    """In order, one at a time, each member for its ring time. A member who is busy is
    skipped for the rest of the round."""
    if rnd.ringing:
        return Pick()
    return _in_order(rnd.untried, book, limit=1)


def round_robin(
    group: HuntGroup, book: MemberBook, rnd: Round, rng: random.Random, now: float
) -> Pick:
    """Linear, starting after the member who last answered a call of this group."""
    if rnd.ringing:
        return Pick()
    numbers = [m.number for m in group.members]
    last = book.last_answerer(group.name)
    first = numbers.index(last) + 1 if last in numbers else 0
    order = group.members[first:] + group.members[:first]
    return _in_order([m for m in order if m in rnd.untried], book, limit=1)


def first_available(
    group: HuntGroup, book: MemberBook, rnd: Round, rng: random.Random, now: float
) -> Pick:
    """At every step, the first member in list order who is free and not yet rung in this
    round: a member skipped as busy gets the call as soon as it frees up."""
    if rnd.ringing:
        return Pick()
    passed: list[tuple[Member, MemberState]] = []
    for member in rnd.untried:
        state = book.blocker(member.number)
        if state is None:
            return Pick(ring=(member,), pass_over=tuple(passed))
        passed.append((member, state))
    return Pick(pass_over=tuple(passed))


def random_member(
    group: HuntGroup, book: MemberBook, rnd: Round, rng: random.Random, now: float
) -> Pick:
    """Any free member not yet rung in this round, picked at random (the hunt's seeded
    generator, so a call can be replayed), one at a time."""
    return _one_of_the_free(rnd, book, rng.choice)


def longest_idle(
    group: HuntGroup, book: MemberBook, rnd: Round, rng: random.Random, now: float
) -> Pick:
    """The free member whose last call ended longest ago (never: first), one at a time;
    ties go to the earlier member in the list."""
    return _one_of_the_free(rnd, book, lambda free: min(free, key=_by(book.idle_since)))


def fewest_calls(
    group: HuntGroup, book: MemberBook, rnd: Round, rng: random.Random, now: float
) -> Pick:
    """The free member who has answered the fewest calls, one at a time; ties go to the
    earlier member in the list."""
    return _one_of_the_free(rnd, book, lambda free: min(free, key=_by(book.answered_count)))


STRATEGIES: Final[Mapping[Strategy, StrategyFunction]] = {
    Strategy.RING_ALL: ring_all,
    Strategy.LINEAR: linear,
    Strategy.STAGGERED: staggered,
    Strategy.MEMORY_HUNT: memory_hunt,
    Strategy.FIRST_AVAILABLE: first_available,
    Strategy.RANDOM: random_member,
    Strategy.ROUND_ROBIN: round_robin,
    Strategy.LONGEST_IDLE: longest_idle,
    Strategy.FEWEST_CALLS: fewest_calls,
}


# -- what strategies share


def _all_free(members: Sequence[Member], book: MemberBook) -> Pick:
    passed = tuple((m, s) for m in members if (s := book.blocker(m.number)) is not None)
    return Pick(ring=tuple(m for m in members if book.is_free(m.number)), pass_over=passed)


def _in_order(members: Sequence[Member], book: MemberBook, *, limit: int) -> Pick:
    """Walk ``members`` in order until ``limit`` are rung: a member ringing for another
    caller is passed over, any other member who is not free is skipped for the round."""
    ring: list[Member] = []
    skip: list[tuple[Member, MemberState]] = []
    pass_over: list[tuple[Member, MemberState]] = []
    for member in members:
        if len(ring) >= limit:
            break
        state = book.blocker(member.number)
        if state is None:
            ring.append(member)
        elif state is MemberState.RINGING:
            pass_over.append((member, state))
        else:
            skip.append((member, state))
    return Pick(ring=tuple(ring), skip=tuple(skip), pass_over=tuple(pass_over))


def _one_of_the_free(
    rnd: Round, book: MemberBook, choose: Callable[[list[Member]], Member]
) -> Pick:
    if rnd.ringing:
        return Pick()
    free = [m for m in rnd.untried if book.is_free(m.number)]
    passed = tuple((m, s) for m in rnd.untried if (s := book.blocker(m.number)) is not None)
    return Pick(ring=(choose(free),) if free else (), pass_over=passed)


def _by(measure: Callable[[str], float]) -> Callable[[Member], float]:
    return lambda member: measure(member.number)


# -- the decision


def next_step(
    group: HuntGroup, book: MemberBook, progress: Progress, rng: random.Random, now: float
) -> Step:
    """What the hunt of ``group`` does at ``now`` (see the module docstring)."""
    if progress.steps == 0 and group.primary_first:
        state = book.blocker(group.primary.number)
        if state in PRIMARY_BUSY:
            skipped = ((group.primary.number, state),)
            return Step(skipped=skipped, exhausted=OverflowReason.ALL_BUSY)
    strategy = STRATEGIES[group.strategy]
    expired = tuple(n for n, end in progress.ringing.items() if end <= now)
    rnd = Round.current(group, progress, expired)
    pick = strategy(group, book, rnd, rng, now)
    if _goes_on(rnd, pick, book):
        return replace(_step(group, book, rnd, pick, now), stop=expired)
    if timing.may_start_round(group, progress.round + 1) and rnd.rung:
        fresh = Round.fresh(group, progress, now)
        again = strategy(group, book, fresh, rng, now)
        if _goes_on(fresh, again, book):
            return replace(_step(group, book, fresh, again, now), stop=expired, new_round=True)
    reason = OverflowReason.NO_ANSWER if progress.rung - progress.busy else OverflowReason.ALL_BUSY
    done = tuple(m.number for m, _ in pick.skip)
    return Step(stop=expired, skipped=_why(pick), done=done, exhausted=reason)


def _goes_on(rnd: Round, pick: Pick, book: MemberBook) -> bool:
    """Something rings, is scheduled, or a member left is ringing for another caller."""
    if rnd.ringing or pick.ring or pick.wake_at is not None:
        return True
    skipped = {m for m, _ in pick.skip}
    return any(
        book.blocker(m.number) is MemberState.RINGING for m in rnd.untried if m not in skipped
    )


def _step(group: HuntGroup, book: MemberBook, rnd: Round, pick: Pick, now: float) -> Step:
    ring = tuple((m.number, timing.ring_end(group, m, now, rnd.hunt_started_at)) for m in pick.ring)
    ends = [*rnd.ringing.values(), *(end for _, end in ring), pick.wake_at]
    settled = {*pick.ring, *(m for m, _ in pick.skip)}
    waiting_on = frozenset(
        m.number for m in rnd.untried if m not in settled and not book.is_free(m.number)
    )
    return Step(
        ring=ring,
        skipped=_why(pick),
        done=tuple(m.number for m, _ in pick.skip),
        wake_at=timing.next_wake(ends, group, rnd.hunt_started_at),
        waiting_on=waiting_on,
    )


def _why(pick: Pick) -> tuple[tuple[str, MemberState], ...]:
    return tuple((m.number, state) for m, state in (*pick.skip, *pick.pass_over))
