"""HuntDesk: between the switch, its calls and their hunts (ARCHITECTURE.md, "Hunt
semantics"). Pure: every method takes ``now`` and returns the actions of one call.

It keeps the :class:`~b2bua.hunt.availability.MemberBook`, the switch's truth about who
is ringing or talking, for every call (plain calls to an extension count as much as
hunted ones, and so does the extension that places a call), and one hunt per call to a
group. It turns a hunt's actions into the call's: :class:`RingMember` rings every device
the member has registered (``devices``), :class:`StopMember` CANCELs them,
:class:`ConnectMember` books the member as talking, :class:`Overflow` runs the group's
destination, the hunt's timers become the call's. Every ring, stop and answer is written
in the book as it happens, before any other hunt is fed (so no member is offered two
calls at once); members whose entry changed are in :attr:`HuntDesk.changed`, and the
switch wakes the hunts waiting for them (:meth:`HuntDesk.waiting`, oldest call first).

Destinations: ``hangup``/``busy`` refuse the caller with their status; ``group:<name>``
starts a new hunt in that group on the same call (its own group timeout, from then);
``extension:<number>`` rings that extension alone for ``calls.ring_timeout`` (480 after
it, 486 when it is busy); ``voicemail:<mailbox>`` takes a message there (the switch
answers the caller itself; without a mailbox, 480).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from b2bua.call.actions import (
    CALLER,
    Arm,
    CallAction,
    Disarm,
    MemberAnswered,
    MemberConfirming,
    MemberFailed,
    MemberRinging,
    Target,
)
from b2bua.call.call import Call
from b2bua.call.legs import disposition_of
from b2bua.call.records import Disposition
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
from b2bua.hunt.model import (
    Destination,
    Hangup,
    HuntGroup,
    Member,
    OverflowReason,
    Strategy,
    ToExtension,
    ToExternal,
    ToGroup,
    ToVoicemail,
    external_number,
)
from b2bua.hunt.timeline import describe
from b2bua.registrar.settings import Extension
from b2bua.sip.status import StatusCode

MemberEvent = MemberRinging | MemberConfirming | MemberAnswered | MemberFailed
#: Calls at once to an ``external:`` overflow destination (a contact centre): its
#: provider refuses what it cannot take.
EXTERNAL_CALLS: Final = 10_000
#: The switch's voicemail: take a message on ``call`` for ``mailbox`` (hunted in
#: ``group``), as :meth:`b2bua.call.call.Call.take_message` does.
TakeMessage = Callable[[Call, str, str | None, float], list[CallAction]]
#: Overflow chains longer than this are refused (the config check rejects loops already).
MAX_CHAIN = 8


@dataclass(eq=False)
class _Usage:
    """What one call holds in the book."""

    call: Call
    caller: str | None = None  # the extension that placed it (talking from the start)
    ringing: set[str] = field(default_factory=set)
    talking: set[str] = field(default_factory=set)
    channel: str | None = None  # the group whose channel it holds
    hunts: list[Hunt] = field(default_factory=list)  # the chain, the current one last
    seed: int = 0


class HuntDesk:
    """The member book and the hunts of the switch's calls (see the module docstring)."""

    def __init__(
        self,
        groups: Mapping[str, HuntGroup],
        extensions: Mapping[str, Extension],
        devices: Callable[[str, Call | None], list[Target]],
        *,
        ring_timeout: float,
        take_message: TakeMessage | None = None,
    ) -> None:
        self.book = MemberBook()
        for number, extension in extensions.items():
            self.book.add(number, max_calls=extension.max_calls, dnd=extension.dnd)
        # Members whose book entry changed, in order (an ordered set): the switch wakes
        # the hunts waiting for them.
        self.changed: dict[str, None] = {}
        self._devices = devices
        self._take_message = take_message
        self.groups: Mapping[str, HuntGroup] = {}
        self._ring_timeout = ring_timeout
        self.set_groups(groups, ring_timeout=ring_timeout)
        self._usage: dict[int, _Usage] = {}  # by call ref, oldest first
        self._hunting: dict[int, _Usage] = {}  # the calls whose hunt is on, oldest first

    def set_groups(self, groups: Mapping[str, HuntGroup], *, ring_timeout: float) -> None:
        """The groups new calls hunt in (at start, and at a reload: a hunt in progress
        keeps its own group), and how long an ``extension:`` overflow rings."""
        self.groups = groups
        self._ring_timeout = ring_timeout
        for group in groups.values():
            for member in group.members:
                if external_number(member.number) is not None and not self.book.knows(
                    member.number
                ):
                    # A mobile: always "registered"; one call at a time through us.
                    self.book.add(member.number, registered=True)

    # -- presence (from the registrar)

    def set_presence(self, number: str, *, registered: bool, reachable: bool) -> None:
        before = self.book.state(number)
        self.book.set_registered(number, registered)
        self.book.set_reachable(number, reachable)
        if self.book.state(number) != before:
            self._changed(number)

    # -- a plain call to an extension

    def is_busy(self, number: str) -> bool:
        """A plain call to ``number`` is refused 486: do-not-disturb, or at its maximum of
        calls (ringing and in progress, placed or received)."""
        return self.book.is_dnd(number) or self.book.at_max_calls(number)

    def admit(self, call: Call, caller: str | None) -> None:
        """A new call; ``caller`` is the extension that placed it (it counts as a call of
        that extension from now on)."""
        usage = _Usage(call, caller=caller)
        self._usage[call.ref] = usage
        if caller is not None:
            self.book.call_started(caller)
            self._changed(caller)

    def ringing(self, call: Call, number: str) -> None:
        """A plain call rings extension ``number``."""
        usage = self._usage[call.ref]
        usage.ringing.add(number)
        self.book.ringing_started(number)
        self._changed(number)

    # -- a call to a group

    def start(self, call: Call, group: str, seed: int, now: float) -> list[CallAction]:
        """The call dialled ``group``: its hunt starts (the group timeout counts from
        the caller's INVITE, ``call.started_at``)."""
        usage = self._usage[call.ref]
        usage.seed = seed
        hunt = Hunt(self.groups[group], self.book, seed=seed, now=call.started_at)
        usage.hunts.append(hunt)
        actions = call.start_hunt(hunt)
        hunt_actions = hunt.start(now)
        over_limit = hunt.overflow is not None and hunt.overflow.reason is OverflowReason.OVER_LIMIT
        if not over_limit:  # the call holds a channel of the group until it ends
            self.book.channel_opened(group)
            usage.channel = group
        return actions + self._carry_out(call, usage, hunt_actions, now)

    def waiting(self, number: str) -> list[Call]:
        """Calls whose hunt waits for ``number`` to change, oldest first."""
        out: list[Call] = []
        for usage in self._hunting.values():
            hunt = usage.hunts[-1]
            if hunt.is_hunting and number in hunt.waiting_on:
                out.append(usage.call)
        return out

    def snapshot(self) -> dict[str, object]:
        """The groups as /status shows them: each member's state, the calls on the
        group's numbers and the calls hunting in it now."""
        book = self.book
        hunting: dict[str, int] = {}
        for usage in self._hunting.values():
            name = usage.hunts[-1].group.name
            hunting[name] = hunting.get(name, 0) + 1
        return {
            name: {
                "description": group.description,
                "strategy": group.strategy.value,
                "numbers": list(group.numbers),
                "public_numbers": list(group.public_numbers),
                "channels": book.channels(name),
                "channel_limit": group.channel_limit,
                "hunting": hunting.get(name, 0),
                "members": [
                    {"extension": m.number, "state": book.state(m.number).value}
                    for m in group.members
                ],
            }
            for name, group in self.groups.items()
        }

    # -- inputs

    def on_member_event(self, call: Call, event: MemberEvent, now: float) -> list[CallAction]:
        usage = self._usage.get(call.ref)
        if usage is None:
            return []
        hunt = usage.hunts[-1] if usage.hunts else None
        match event:
            case MemberRinging(extension=number):
                return [] if hunt is None else self._carry_out(
                    call, usage, hunt.member_ringing(number, now), now
                )  # fmt: skip
            case MemberConfirming(extension=number, until=until):
                if hunt is None:
                    return []
                return self._carry_out(call, usage, hunt.member_confirming(number, until, now), now)
            case MemberAnswered(extension=number, late=True):
                if hunt is None:
                    return []
                return self._carry_out(call, usage, hunt.member_answered_late(number, now), now)
            case MemberAnswered(extension=number):
                if hunt is None:  # a plain call: it rang, now it talks
                    if number in usage.ringing:
                        usage.ringing.discard(number)
                        self._answered(usage, number, None, now)
                    return []
                return self._carry_out(call, usage, hunt.member_answered(number, now), now)
            case MemberFailed(extension=number, status=status):
                if hunt is None:
                    return []
                self._stop_ringing(usage, number)
                return self._carry_out(call, usage, hunt.member_failed(number, status, now), now)

    def on_timer(self, call: Call, name: HuntTimer, now: float) -> list[CallAction]:
        usage = self._usage.get(call.ref)
        if usage is None or not usage.hunts:
            return []
        return self._carry_out(call, usage, usage.hunts[-1].timer_fired(name, now), now)

    def wake(self, call: Call, number: str, now: float) -> list[CallAction]:
        """``number`` changed and ``call``'s hunt was waiting for it."""
        usage = self._usage.get(call.ref)
        if usage is None or not usage.hunts:
            return []
        hunt = usage.hunts[-1]
        if not hunt.is_hunting or number not in hunt.waiting_on:
            return []
        if self.book.is_free(number):
            return self._carry_out(call, usage, hunt.member_available(number, now), now)
        return self._carry_out(call, usage, hunt.member_changed(number, now), now)

    def ended(self, call: Call, now: float) -> tuple[list[CallAction], list[dict[str, object]]]:
        """The call is over for its users: its hunt stops (the caller is gone), everything
        it held in the book is given back. Returns the call's last actions and its hunts'
        records (for the call record)."""
        usage = self._usage.get(call.ref)
        if usage is None:
            return [], []
        actions: list[CallAction] = []
        hunt = usage.hunts[-1] if usage.hunts else None
        if hunt is not None and hunt.is_hunting:
            actions += self._carry_out(call, usage, hunt.caller_gone(now), now)
        self.forget(call, now)
        return actions, [h.record() for h in usage.hunts]

    def forget(self, call: Call, now: float) -> None:
        """Give back whatever ``call`` holds in the book (idempotent)."""
        usage = self._usage.pop(call.ref, None)
        self._hunting.pop(call.ref, None)
        if usage is None:
            return
        for number in usage.ringing:
            self.book.ringing_stopped(number)
            self._changed(number)
        for number in usage.talking:
            self.book.call_ended(number, now)
            self._changed(number)
        if usage.caller is not None:
            self.book.call_ended(usage.caller, now)
            self._changed(usage.caller)
        if usage.channel is not None:
            self.book.channel_closed(usage.channel)

    # -- hunt actions -> call actions

    def _changed(self, number: str) -> None:
        self.changed[number] = None

    def _carry_out(
        self, call: Call, usage: _Usage, actions: list[HuntAction], now: float
    ) -> list[CallAction]:
        out = self._carry_out_all(call, usage, actions, now)
        if usage.hunts and usage.hunts[-1].is_hunting and call.ref in self._usage:
            self._hunting[call.ref] = usage
        else:
            self._hunting.pop(call.ref, None)
        return out

    def _carry_out_all(
        self, call: Call, usage: _Usage, actions: list[HuntAction], now: float
    ) -> list[CallAction]:
        out: list[CallAction] = []
        for action in actions:
            match action:
                case RingMember(number=number):
                    usage.ringing.add(number)
                    self.book.ringing_started(number)
                    self._changed(number)
                    out += call.ring_member(number, self._devices(number, call), now)
                case StopMember(number=number):
                    self._stop_ringing(usage, number)
                    out += call.stop_member(number, now)
                case ConnectMember(number=number):
                    usage.ringing.discard(number)
                    group = usage.hunts[-1].group.name if usage.hunts else None
                    self._answered(usage, number, group, now)
                case Overflow(destination=destination, reason=reason):
                    out += self._overflow(call, usage, destination, reason, now)
                case StartTimer(name=name, at=at):
                    out.append(Arm(CALLER, name, at))
                case CancelTimer(name=name):
                    out.append(Disarm(CALLER, name))
        return out

    def _stop_ringing(self, usage: _Usage, number: str) -> None:
        if number in usage.ringing:
            usage.ringing.discard(number)
            self.book.ringing_stopped(number)
            self._changed(number)

    def _answered(self, usage: _Usage, number: str, group: str | None, now: float) -> None:
        self.book.call_answered(number, now, group=group)
        usage.talking.add(number)
        self._changed(number)

    def _overflow(
        self,
        call: Call,
        usage: _Usage,
        destination: Destination,
        reason: OverflowReason,
        now: float,
    ) -> list[CallAction]:
        group = usage.hunts[-1].group.name
        call.log.info(
            "hunt_overflow", group=group, reason=reason.value, destination=describe(destination)
        )
        match destination:
            case Hangup(status=status):
                return call.give_up(status, f"hunt {reason.value}", _disposition(reason), now)
            case ToVoicemail(mailbox=mailbox) if self._take_message is not None:
                return self._take_message(call, mailbox, group, now)
            case ToVoicemail(mailbox=mailbox):
                # No voicemail in this switch: the caller is told nobody is available.
                return call.give_up(
                    StatusCode.TEMPORARILY_UNAVAILABLE,
                    f"hunt {reason.value}: voicemail {mailbox} unavailable",
                    _disposition(reason),
                    now,
                )
            case ToGroup(name=name) if name in self.groups:
                return self._chain(call, usage, self.groups[name], now)
            case ToExtension(number=number):
                return self._chain(call, usage, self._extension_group(number), now)
            case ToExternal() as external:
                busy = reason in (OverflowReason.ALL_BUSY, OverflowReason.OVER_LIMIT)
                call.diversion_reason = "user-busy" if busy else "no-answer"
                # Forwarded through a trunk: a member that is never busy on our side (a
                # contact centre takes many calls; the provider says when it cannot).
                self.book.add(external.member, max_calls=EXTERNAL_CALLS, registered=True)
                return self._chain(call, usage, self._extension_group(external.member), now)
            case ToGroup():
                return call.give_up(
                    StatusCode.TEMPORARILY_UNAVAILABLE,
                    "hunt: no such group",
                    Disposition.FAILED,
                    now,
                )

    def _chain(self, call: Call, usage: _Usage, group: HuntGroup, now: float) -> list[CallAction]:
        if len(usage.hunts) >= MAX_CHAIN:
            return call.give_up(
                StatusCode.TEMPORARILY_UNAVAILABLE, "hunt: overflow chain too long",
                Disposition.FAILED, now,
            )  # fmt: skip
        hunt = Hunt(group, self.book, seed=usage.seed, now=now)
        usage.hunts.append(hunt)
        call.hunt = hunt
        call.log.info("hunt_started", group=group.name, strategy=group.strategy.value)
        return self._carry_out(call, usage, hunt.start(now), now)

    def _extension_group(self, number: str) -> HuntGroup:
        """``extension:<number>`` (or ``external:<number>``) as a destination: that member
        alone, as a plain call rings it (for ``calls.ring_timeout``; 486 when busy, 480
        when nobody answers)."""
        timeout = self._ring_timeout
        no_answer = Hangup(StatusCode.TEMPORARILY_UNAVAILABLE)
        return HuntGroup(
            name=number if external_number(number) is not None else f"extension:{number}",
            members=(Member(number),),
            strategy=Strategy.RING_ALL,
            ring_time=timeout,
            group_timeout=timeout,
            no_answer=no_answer,
            all_busy=Hangup(StatusCode.BUSY_HERE),
            timeout=no_answer,
        )


def _disposition(reason: OverflowReason) -> Disposition:
    if reason in (OverflowReason.ALL_BUSY, OverflowReason.OVER_LIMIT):
        return Disposition.BUSY
    return disposition_of(StatusCode.TEMPORARILY_UNAVAILABLE)
