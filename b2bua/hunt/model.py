"""The runtime model of a hunt group: what :mod:`b2bua.hunt.settings` builds from the config
file and what the strategies and the engine read. Frozen, plain data.

Strategy names are the ones FreePBX admins know (ARCHITECTURE.md, "Hunt semantics").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, TypeAlias

from b2bua.sip.status import StatusCode


class Strategy(StrEnum):
    """How a hunt group offers a call to its members."""

    RING_ALL = "ring_all"  # every free member at once
    LINEAR = "linear"  # in order, one at a time, each for its ring time
    STAGGERED = "staggered"  # ring all, each member from its own start delay
    MEMORY_HUNT = "memory_hunt"  # progressive: 1, then 1+2, then 1+2+3 ...
    FIRST_AVAILABLE = "first_available"  # the first free member in list order, one at a time
    RANDOM = "random"  # any free member, picked at random (seeded), one at a time
    ROUND_ROBIN = "round_robin"  # linear, starting after the last member who answered
    LONGEST_IDLE = "longest_idle"  # the free member idle the longest, one at a time
    FEWEST_CALLS = "fewest_calls"  # the free member who answered the fewest calls

    @property
    def is_serial(self) -> bool:
        """True when members ring one at a time, each for its ring time, then the hunt
        moves on; False when started members keep ringing until the group timeout
        unless a member has its own ring time."""
        return self not in _PARALLEL


_PARALLEL: Final = frozenset({Strategy.RING_ALL, Strategy.STAGGERED, Strategy.MEMORY_HUNT})


class OverflowReason(StrEnum):
    """Why a hunt ended without a member: which destination of the group runs."""

    NO_ANSWER = "no_answer"  # members rang, nobody answered
    ALL_BUSY = "all_busy"  # every member talking, DND, unregistered, unreachable or busy
    TIMEOUT = "timeout"  # the group timeout passed
    OVER_LIMIT = "over_limit"  # the group's numbers already carry channel_limit calls


# -- destinations: where a call goes when the hunt overflows


@dataclass(frozen=True, slots=True)
class ToVoicemail:
    """Leave a message in the mailbox of extension ``mailbox``."""

    mailbox: str


@dataclass(frozen=True, slots=True)
class Hangup:
    """Refuse the call with ``status`` (480 for ``hangup``, 486 for ``busy``)."""

    status: int


@dataclass(frozen=True, slots=True)
class ToGroup:
    """Hunt again in group ``name`` (a new hunt with its own timers)."""

    name: str


@dataclass(frozen=True, slots=True)
class ToExtension:
    """Ring extension ``number`` as a plain call."""

    number: str


@dataclass(frozen=True, slots=True)
class ToExternal:
    """Forward the call out through a carrier trunk to ``number`` (a contact centre, a
    mobile): it rings as a member named ``external:<number>`` would."""

    number: str

    @property
    def member(self) -> str:
        return f"{EXTERNAL}{self.number}"


Destination: TypeAlias = ToVoicemail | Hangup | ToGroup | ToExtension | ToExternal

DESTINATION_FORMS: Final = (
    '"voicemail:<mailbox>", "hangup" (480), "busy" (486), "group:<name>", '
    '"extension:<number>" or "external:<number>"'
)
#: How an external member (a number reached through a trunk) is named among members.
EXTERNAL: Final = "external:"
_EXTERNAL_RE: Final = re.compile(r"^\+?[0-9]{1,20}$")


def external_number(member: str) -> str | None:
    """The number an ``external:<number>`` member dials, or None for an extension."""
    return member.removeprefix(EXTERNAL) if member.startswith(EXTERNAL) else None


def parse_destination(text: str) -> Destination:
    """``voicemail:101`` -> ToVoicemail("101") and so on; ValueError names the forms."""
    kind, sep, target = text.partition(":")
    if not sep:
        if text == "hangup":
            return Hangup(StatusCode.TEMPORARILY_UNAVAILABLE)
        if text == "busy":
            return Hangup(StatusCode.BUSY_HERE)
    elif target and ":" not in target:
        if kind == "voicemail":
            return ToVoicemail(target)
        if kind == "group":
            return ToGroup(target)
        if kind == "extension":
            return ToExtension(target)
        if kind == "external" and _EXTERNAL_RE.match(target):
            return ToExternal(target)
    raise ValueError(f"expected {DESTINATION_FORMS}")


def default_destinations(first_member: str, has_mailbox: bool) -> dict[OverflowReason, Destination]:
    """ "Hunt semantics": no answer, all busy and timeout go to the first member's mailbox
    when it has one (the flower shop), else 480 (486 when all are busy); over the channel
    limit gets 486."""
    if has_mailbox:
        mailbox = ToVoicemail(first_member)
        no_answer: Destination = mailbox
        all_busy: Destination = mailbox
    else:
        no_answer = Hangup(StatusCode.TEMPORARILY_UNAVAILABLE)
        all_busy = Hangup(StatusCode.BUSY_HERE)
    return {
        OverflowReason.NO_ANSWER: no_answer,
        OverflowReason.ALL_BUSY: all_busy,
        OverflowReason.TIMEOUT: no_answer,
        OverflowReason.OVER_LIMIT: Hangup(StatusCode.BUSY_HERE),
    }


# -- the group


@dataclass(frozen=True, slots=True)
class Member:
    """One member: an extension (all its registered devices ring together, as one
    member), or ``external:<number>`` rung through a trunk (``confirm``: the person who
    answers must press 1 before the caller is bridged). ``start_delay`` counts from the
    start of the round (staggered only); ``ring_time`` None means the group's rule (see
    :mod:`b2bua.hunt.timing`)."""

    number: str
    start_delay: float = 0.0
    ring_time: float | None = None
    confirm: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class HuntGroup:
    """A hunt group. ``numbers`` may be dialled by authenticated extensions,
    ``public_numbers`` by anyone. ``group_timeout`` counts from the caller's INVITE and
    always wins; ``rounds`` is how many passes over the members a hunt makes;
    ``wave_interval`` is the memory hunt's step; ``channel_limit`` caps the calls on the
    group's numbers at once (None: no cap)."""

    name: str
    members: tuple[Member, ...]
    strategy: Strategy = Strategy.RING_ALL
    description: str = ""
    numbers: tuple[str, ...] = ()
    public_numbers: tuple[str, ...] = ()
    ring_time: float = 20.0
    group_timeout: float = 60.0
    rounds: int = 1
    wave_interval: float = 20.0
    primary_first: bool = False
    channel_limit: int | None = None
    no_answer: Destination = Hangup(StatusCode.TEMPORARILY_UNAVAILABLE)
    all_busy: Destination = Hangup(StatusCode.BUSY_HERE)
    timeout: Destination = Hangup(StatusCode.TEMPORARILY_UNAVAILABLE)
    over_limit: Destination = Hangup(StatusCode.BUSY_HERE)

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("a hunt group needs at least one member")

    @property
    def primary(self) -> Member:
        """The first member: the one ``primary_first`` and the default mailbox refer to."""
        return self.members[0]

    def member(self, number: str) -> Member | None:
        return next((m for m in self.members if m.number == number), None)

    def destination(self, reason: OverflowReason) -> Destination:
        match reason:
            case OverflowReason.NO_ANSWER:
                return self.no_answer
            case OverflowReason.ALL_BUSY:
                return self.all_busy
            case OverflowReason.TIMEOUT:
                return self.timeout
            case OverflowReason.OVER_LIMIT:
                return self.over_limit
