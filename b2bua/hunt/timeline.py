"""``b2bua simulate``: one hypothetical call into a hunt group on the virtual clock of
:class:`~b2bua.hunt.simulation.Simulation` (the engine the switch runs, no network), and
its timeline as text or JSON. Pure: the command line builds the book from the config and
prints what these functions return.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from b2bua.hunt.availability import MemberBook
from b2bua.hunt.engine import (
    CancelTimer,
    ConnectMember,
    Hunt,
    HuntAction,
    Overflow,
    RingMember,
    StartTimer,
    StopMember,
)
from b2bua.hunt.model import (
    Destination,
    Hangup,
    HuntGroup,
    ToExtension,
    ToExternal,
    ToGroup,
    ToVoicemail,
    external_number,
)
from b2bua.hunt.simulation import Phone, Simulation


@dataclass(frozen=True, slots=True)
class SimulatedCall:
    """What ``simulate`` produced: the hunt of the call and its actions, (time, line)."""

    hunt: Hunt
    actions: list[tuple[float, str]]
    seed: int


def _is_member(text: str) -> bool:
    """An extension number, or ``external:<number>`` (a member rung through a trunk)."""
    number = external_number(text)
    digits = text if number is None else number.removeprefix("+")
    return digits.isascii() and digits.isdigit()


def parse_answer(text: str) -> tuple[str, float]:
    """``103@12`` -> ("103", 12.0): the member answers 12 s after it starts ringing."""
    member, sep, after = text.partition("@")
    if not sep or not _is_member(member):
        raise ValueError(f"{text!r}: expected MEMBER@SECONDS, e.g. 103@12")
    return member, _seconds(text, after)


def parse_fail(text: str) -> tuple[str, float, int]:
    """``102@3:486`` -> ("102", 3.0, 486): the member answers 486 3 s after ringing."""
    member, sep, rest = text.partition("@")
    after, colon, code = rest.partition(":")
    if not sep or not colon or not _is_member(member) or not code.isdigit():
        raise ValueError(f"{text!r}: expected MEMBER@SECONDS:CODE, e.g. 102@3:486")
    status = int(code)
    if not 300 <= status <= 699:
        raise ValueError(f"{text!r}: expected a final failure status from 300 to 699")
    return member, _seconds(text, after), status


def _seconds(text: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{text!r}: expected a number of seconds after @") from None
    if not 0 <= seconds <= 86400:
        raise ValueError(f"{text!r}: expected seconds from 0 to 86400")
    return seconds


def phones(
    answers: Mapping[str, float], failures: Mapping[str, tuple[float, int]]
) -> dict[str, Phone]:
    """Scripted phones; a member in neither mapping rings until stopped."""
    out: dict[str, Phone] = {}
    for number in sorted({*answers, *failures}):
        fail = failures.get(number)
        out[number] = Phone(
            answers_after=answers.get(number),
            fails_after=None if fail is None else fail[0],
            fail_status=486 if fail is None else fail[1],
        )
    return out


def simulate(
    groups: Mapping[str, HuntGroup],
    book: MemberBook,
    group: str,
    scripted: Mapping[str, Phone],
    seed: int,
) -> SimulatedCall:
    """One call into ``group`` at t=0, run to its end."""
    sim = Simulation(groups, book)
    for number, phone in scripted.items():
        sim.phone(number, phone)
    call = sim.call(group, seed=seed)
    sim.run()
    actions = [
        (at, text) for at, action in sim.actions(call) if (text := action_line(action)) is not None
    ]
    return SimulatedCall(sim.hunts[call], actions, seed)


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
        case ToExternal(number=number):
            return f"external:{number}"


def action_line(action: HuntAction) -> str | None:
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


def text_report(call: SimulatedCall) -> str:
    """The timeline, the per-member trace and the seed, for a terminal."""
    record = call.hunt.record()
    group = call.hunt.group
    out = [f"group {group.name} ({record['strategy']}), call at t=0", "", "timeline:"]
    out += [f"{at:8.3f}  {text}" for at, text in call.actions]
    out += ["", "members:"]
    members = record["members"]
    assert isinstance(members, list)
    for entry in members:
        assert isinstance(entry, dict)
        detail = ""
        if "reason" in entry:
            detail = f" ({entry['reason']})"
        if "status" in entry:
            detail = f" ({entry['status']})"
        out.append(
            f"{entry['t']:8.3f}  {entry['member']:<6} {entry['outcome']}{detail}"
            f"  round {entry['round']}"
        )
    out += ["", f"result: {record['result']}", f"seed: {call.seed}"]
    return "\n".join(out) + "\n"


def json_report(call: SimulatedCall) -> dict[str, object]:
    """:meth:`Hunt.record` plus the actions."""
    return {
        **call.hunt.record(),
        "actions": [{"t": round(at, 3), "action": text} for at, text in call.actions],
    }
