"""Builders and a readable timeline for the hunt tests."""

from __future__ import annotations

from collections.abc import Iterable

from b2bua.hunt import (
    CancelTimer,
    ConnectMember,
    Destination,
    Hangup,
    HuntGroup,
    Member,
    MemberBook,
    Overflow,
    Phone,
    RingMember,
    Simulation,
    StartTimer,
    StopMember,
    ToExtension,
    ToGroup,
    ToVoicemail,
)
from b2bua.hunt.engine import HuntAction


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


def describe(destination: Destination) -> str:
    match destination:
        case ToVoicemail(mailbox=mailbox):
            return f"voicemail:{mailbox}"
        case Hangup(status=status):
            return f"hangup {int(status)}"
        case ToGroup(name=name):
            return f"group:{name}"
        case ToExtension(number=number):
            return f"extension:{number}"


def line(action: HuntAction) -> str | None:
    """One action as a short line; timers are left out (None)."""
    match action:
        case RingMember(number=number):
            return f"ring {number}"
        case StopMember(number=number):
            return f"stop {number}"
        case ConnectMember(number=number):
            return f"connect {number}"
        case Overflow(destination=destination, reason=reason):
            return f"overflow {reason.value} -> {describe(destination)}"
        case StartTimer() | CancelTimer():
            return None


def timeline(sim: Simulation, call: int = 0) -> list[tuple[float, str]]:
    """What the hunt of ``call`` did, as (time, line), timers left out."""
    out = []
    for at, action in sim.actions(call):
        text = line(action)
        if text is not None:
            out.append((at, text))
    return out


def lines(actions: Iterable[HuntAction]) -> list[str]:
    return [text for action in actions if (text := line(action)) is not None]
