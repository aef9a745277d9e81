"""The one place that decides how a hunt's timers interact (ARCHITECTURE.md, "Hunt
semantics"). In order of precedence:

1. The **group timeout** counts from the caller's INVITE and always wins: no member is
   rung at or after it, no step is scheduled at or after it, and a member ring end, a
   start delay, a wave or a new round falling on the same instant loses to it.
2. A member rings from its own start until its **ring end**: its own ``ring_time`` when it
   has one; else the group's ``ring_time`` when the strategy rings one member at a time
   (linear, first_available, random, round_robin, longest_idle, fewest_calls); else (ring
   all, staggered, memory hunt) until the group timeout. Never past the group timeout.
3. **Start delays** (staggered) and **waves** (memory hunt: wave k at k times
   ``wave_interval``) count from the start of the round; the first round starts at the
   caller's INVITE.
4. A **new round** starts when the previous one has nothing ringing, nothing scheduled
   and nobody to wait for, if ``rounds`` allows another.

All arithmetic is on the switch's clock (``now`` floats); a time computed here is the
exact float a timer is armed with, so comparisons against it are exact.
"""

from __future__ import annotations

from collections.abc import Iterable

from b2bua.hunt.model import HuntGroup, Member


def group_deadline(group: HuntGroup, started_at: float) -> float:
    """When the group timeout fires, for a hunt whose caller's INVITE came at ``started_at``."""
    return started_at + group.group_timeout


def is_timed_out(group: HuntGroup, started_at: float, now: float) -> bool:
    return now >= group_deadline(group, started_at)


def ring_limit(group: HuntGroup, member: Member) -> float | None:
    """How long ``member`` rings once started; None: until the group timeout."""
    if member.ring_time is not None:
        return member.ring_time
    return group.ring_time if group.strategy.is_serial else None


def ring_end(group: HuntGroup, member: Member, rung_at: float, started_at: float) -> float:
    """When ``member``, rung at ``rung_at``, stops ringing (the group timeout at the latest)."""
    deadline = group_deadline(group, started_at)
    limit = ring_limit(group, member)
    return deadline if limit is None else min(rung_at + limit, deadline)


def start_at(member: Member, round_started_at: float) -> float:
    """When a staggered member starts ringing in a round that started at ``round_started_at``."""
    return round_started_at + member.start_delay


def wave_at(group: HuntGroup, round_started_at: float, wave: int) -> float:
    """When wave ``wave`` (0 first) of a memory hunt begins."""
    return round_started_at + wave * group.wave_interval


def waves_begun(group: HuntGroup, round_started_at: float, now: float) -> int:
    """How many waves of a memory hunt have begun by ``now`` (at least 1): how many
    members it should have started. Counted by comparing against :func:`wave_at`, so a
    timer armed at a wave's time sees that wave begun."""
    waves = 1
    while wave_at(group, round_started_at, waves) <= now and waves < len(group.members):
        waves += 1
    return waves


def next_wake(
    candidates: Iterable[float | None], group: HuntGroup, started_at: float
) -> float | None:
    """The time to ask the strategy again: the earliest candidate before the group timeout.
    None when there is none, or the group timeout comes first (it always wins)."""
    deadline = group_deadline(group, started_at)
    times = [at for at in candidates if at is not None and at < deadline]
    return min(times, default=None)


def may_start_round(group: HuntGroup, rounds_done: int) -> bool:
    """Whether another pass over the members may begin after ``rounds_done`` passes."""
    return rounds_done < group.rounds
