"""Builders and a readable timeline for the hunt tests."""

from __future__ import annotations

from collections.abc import Iterable

from b2bua.hunt import (
    HuntGroup,
    Member,
    MemberBook,
    Phone,
    Simulation,
)
from b2bua.hunt.engine import HuntAction
from b2bua.hunt.timeline import action_line


def members(*entries: str | Member) -> tuple[Member, ...]:
    """Members given as numbers (no delay, the group's ring time) or as Members."""
    return tuple(m if isinstance(m, Member) else Member(m) for m in entries)


def book(
    *numbers: str,
    talking: Iterable[str] = (),
    dnd: Iterable[str] = (),
    unregistered: Iterable[str] = (),
    unreachable: Iterable[str] = (),
) -> MemberBook:
    """Members registered and idle unless listed otherwise."""
    out = MemberBook()
    for number in numbers:
        out.add(number, registered=number not in set(unregistered), dnd=number in set(dnd))
    for number in talking:
        out.call_started(number)
    for number in unreachable:
        out.set_reachable(number, False)
    return out


def simulation(hunt_group: HuntGroup, members: MemberBook, **phones: Phone) -> Simulation:
    """A simulation of ``hunt_group``; phones by member number as ``m101=Phone(...)``."""
    sim = Simulation({hunt_group.name: hunt_group}, members)
    for key, phone in phones.items():
        sim.phone(key.removeprefix("m"), phone)
    return sim


def timeline(sim: Simulation, call: int = 0) -> list[tuple[float, str]]:
    """What the hunt of ``call`` did, as (time, line), timers left out."""
    out = []
    for at, action in sim.actions(call):
        text = action_line(action)
        if text is not None:
            out.append((at, text))
    return out


def lines(actions: Iterable[HuntAction]) -> list[str]:
    return [text for action in actions if (text := action_line(action)) is not None]
