"""Hunt groups as the config file gives them: one ``[groups.NAME]`` table each (the key is
the group's name, used by ``group:NAME`` destinations and in logs). Frozen pydantic models
composed by :mod:`b2bua.config`, which also runs :func:`check_groups` (the checks that need
the extensions, the number table and the other groups) and reports every error with its
location.

Numbers are plain strings here: extension numbers and dialable numbers follow the same
rules as :mod:`b2bua.registrar.settings` and :mod:`b2bua.call.settings`, which this
package may not import (it sits beside the registrar, below the call layer).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from b2bua.hunt.model import (
    EXTERNAL,
    Destination,
    HuntGroup,
    Member,
    OverflowReason,
    Strategy,
    ToExtension,
    ToGroup,
    ToVoicemail,
    default_destinations,
    external_number,
    parse_destination,
)

GROUP_NAME_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
NUMBER_RE: Final = re.compile(r"^\+?[0-9]{1,20}$")  # as b2bua.call.settings.NUMBER_RE
EXTENSION_RE: Final = re.compile(r"^[0-9]{1,15}$")  # as registrar.settings.EXTENSION_NUMBER_RE


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _matching(pattern: re.Pattern[str], expected: str) -> AfterValidator:
    def check(value: str) -> str:
        if pattern.fullmatch(value) is None:
            raise ValueError(f"expected {expected}")
        return value

    return AfterValidator(check)


def _check_destination(text: str) -> str:
    parse_destination(text)
    return text


GroupName = Annotated[
    str, _matching(GROUP_NAME_RE, "a group name: a letter, then letters, digits, _ or -")
]
GroupNumber = Annotated[
    str, _matching(NUMBER_RE, 'a number of 1 to 20 digits with an optional +, e.g. "+15551230000"')
]
ExtensionText = Annotated[str, _matching(EXTENSION_RE, "an extension number of 1 to 15 digits")]
DestinationText = Annotated[str, AfterValidator(_check_destination)]
Seconds = Annotated[float, Field(gt=0, le=86400)]


class MemberSettings(_Model):
    """A member: ``"101"`` or ``{ extension = "101", start_delay = 6, ring_time = 15 }``;
    an external number rung through a trunk (a mobile): ``"external:+447700900123"`` or
    ``{ external = "+447700900123", ... }``. ``start_delay`` (staggered only) counts from
    the caller's INVITE; ``ring_time`` overrides the group's for this member; ``confirm``
    (external members): whoever answers must press 1 before the caller is bridged, so
    that a mobile's own voicemail never takes the group's call."""

    extension: ExtensionText | None = None
    external: GroupNumber | None = None
    start_delay: Annotated[float, Field(ge=0, le=86400)] | None = None
    ring_time: Seconds | None = None
    confirm: bool = False

    @model_validator(mode="before")
    @classmethod
    def _plain_number(cls, data: Any) -> Any:
        if isinstance(data, str):
            if data.startswith(EXTERNAL):
                return {"external": data.removeprefix(EXTERNAL)}
            return {"extension": data}
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> MemberSettings:
        if (self.extension is None) == (self.external is None):
            raise ValueError("give either extension or external (a number rung through a trunk)")
        if self.confirm and self.external is None:
            raise ValueError(
                "confirm applies to external members (a mobile whose voicemail may answer)"
            )
        return self

    @property
    def number(self) -> str:
        """The member's name among members: its extension, or ``external:<number>``."""
        return self.extension if self.extension is not None else f"{EXTERNAL}{self.external}"


class GroupDestinations(_Model):
    """Where the caller goes when the hunt ends without a member; unset: the defaults of
    :func:`b2bua.hunt.model.default_destinations`."""

    no_answer: DestinationText | None = None
    all_busy: DestinationText | None = None
    timeout: DestinationText | None = None
    over_limit: DestinationText | None = None

    def chosen(self) -> Iterator[tuple[OverflowReason, str]]:
        """The destinations set, with their reasons, in field order."""
        for reason in OverflowReason:
            text = getattr(self, reason.value)
            if text is not None:
                yield reason, text


class GroupSettings(_Model):
    """One ``[groups.NAME]`` table. ``numbers`` are internal (only authenticated
    extensions may dial them), ``public_numbers`` may be dialled by anyone (DIDs from a
    carrier); a number is in one list or the other. ``members``: extensions, in hunt
    order. ``ring_time``: how long each member rings when the strategy rings one at a
    time. ``group_timeout``: the hard cap from the caller's INVITE. ``rounds``: passes
    over the members. ``wave_interval`` (memory_hunt; default: ``ring_time``): how often
    one more member joins. ``channel_limit``: calls at once on the group's numbers."""

    description: str = ""
    numbers: list[GroupNumber] = []
    public_numbers: list[GroupNumber] = []
    strategy: Strategy = Strategy.RING_ALL
    primary_first: bool = False
    members: Annotated[list[MemberSettings], Field(min_length=1)]
    ring_time: Seconds = 20.0
    group_timeout: Seconds = 60.0
    rounds: Annotated[int, Field(ge=1, le=100)] = 1
    wave_interval: Seconds | None = None
    channel_limit: Annotated[int, Field(ge=1, le=100_000)] | None = None
    destinations: GroupDestinations = GroupDestinations()

    def to_group(self, name: str, mailboxes: Collection[str]) -> HuntGroup:
        """The runtime model; ``mailboxes``: the extensions that have a mailbox (for the
        default destinations)."""
        first = self.members[0].number
        chosen = default_destinations(first, first in mailboxes)
        chosen.update(
            (reason, parse_destination(text)) for reason, text in self.destinations.chosen()
        )
        return HuntGroup(
            name=name,
            description=self.description,
            numbers=tuple(self.numbers),
            public_numbers=tuple(self.public_numbers),
            strategy=self.strategy,
            members=tuple(
                Member(m.number, m.start_delay or 0.0, m.ring_time, confirm=m.confirm)
                for m in self.members
            ),
            ring_time=self.ring_time,
            group_timeout=self.group_timeout,
            rounds=self.rounds,
            wave_interval=self.wave_interval or self.ring_time,
            primary_first=self.primary_first,
            channel_limit=self.channel_limit,
            no_answer=chosen[OverflowReason.NO_ANSWER],
            all_busy=chosen[OverflowReason.ALL_BUSY],
            timeout=chosen[OverflowReason.TIMEOUT],
            over_limit=chosen[OverflowReason.OVER_LIMIT],
        )


def build_groups(
    groups: Mapping[str, GroupSettings], mailboxes: Collection[str]
) -> dict[str, HuntGroup]:
    return {name: settings.to_group(name, mailboxes) for name, settings in groups.items()}


# -- checks that span the config (run by b2bua.config, every error at once)


def check_groups(
    groups: Mapping[str, GroupSettings],
    mailboxes: Mapping[str, bool],
    table_numbers: Collection[str],
) -> list[tuple[str, str]]:
    """(location, message) for every group combination that cannot work. ``mailboxes``
    maps each extension number to whether it has a mailbox; ``table_numbers`` are the
    numbers of the ``[numbers]`` table."""
    errors: list[tuple[str, str]] = []
    owners: dict[str, str] = {}
    for name, group in groups.items():
        where = f"groups.{name}"
        errors += _member_errors(where, group, mailboxes)
        errors += _timer_errors(where, group)
        listed: set[str] = set()
        for field, number, index in _numbers_of(group):
            at = f"{where}.{field}[{index}]"
            owner = owners.setdefault(number, name)
            if number in listed:
                errors.append((at, f"{number} is listed twice in this group"))
            elif owner != name:
                errors.append((at, f"{number} is already a number of group {owner}"))
            elif number in mailboxes:
                errors.append((at, f"{number} is already an extension's number"))
            elif number in table_numbers:
                errors.append((at, f"{number} is already in [numbers]"))
            listed.add(number)
        errors += _destination_errors(where, name, group, groups, mailboxes)
    return errors


def _numbers_of(group: GroupSettings) -> Iterator[tuple[str, str, int]]:
    for index, number in enumerate(group.numbers):
        yield "numbers", number, index
    for index, number in enumerate(group.public_numbers):
        yield "public_numbers", number, index


def _member_errors(
    where: str, group: GroupSettings, mailboxes: Mapping[str, bool]
) -> list[tuple[str, str]]:
    errors = []
    seen: dict[str, int] = {}
    for index, member in enumerate(group.members):
        at = f"{where}.members[{index}]"
        if member.extension is not None and member.extension not in mailboxes:
            errors.append((f"{at}.extension", f"no extension {member.extension} in [extensions]"))
        number = member.number
        if number in seen:
            first = seen[number]
            errors.append((at, f"{_kind(number)} is already members[{first}]"))
        seen.setdefault(number, index)
    return errors


def _kind(member: str) -> str:
    external = external_number(member)
    return f"extension {member}" if external is None else f"external number {external}"


def _timer_errors(where: str, group: GroupSettings) -> list[tuple[str, str]]:
    """Timers that would never act, or would act as something else than written."""
    errors = []
    for index, member in enumerate(group.members):
        delay = member.start_delay
        at = f"{where}.members[{index}].start_delay"
        if delay is None:
            continue
        if group.strategy is not Strategy.STAGGERED:
            errors.append((at, f"start delays apply to strategy staggered, not {group.strategy}"))
        elif delay >= group.group_timeout:
            errors.append(
                (
                    at,
                    f"{delay:g} s is at or past the group timeout ({group.group_timeout:g} s):"
                    " this member would never ring",
                )
            )
    if group.wave_interval is not None:
        at = f"{where}.wave_interval"
        if group.strategy is not Strategy.MEMORY_HUNT:
            errors.append(
                (at, f"wave_interval applies to strategy memory_hunt, not {group.strategy}")
            )
        elif len(group.members) > 1 and group.wave_interval >= group.group_timeout:
            errors.append(
                (
                    at,
                    f"{group.wave_interval:g} s is at or past the group timeout"
                    f" ({group.group_timeout:g} s): only the first member would ever ring",
                )
            )
    return errors


def _destination_errors(
    where: str,
    name: str,
    group: GroupSettings,
    groups: Mapping[str, GroupSettings],
    mailboxes: Mapping[str, bool],
) -> list[tuple[str, str]]:
    errors = []
    for reason, text in group.destinations.chosen():
        at = f"{where}.destinations.{reason.value}"
        problem = _destination_problem(parse_destination(text), name, groups, mailboxes)
        if problem is not None:
            errors.append((at, problem))
    return errors


def _destination_problem(
    destination: Destination,
    name: str,
    groups: Mapping[str, GroupSettings],
    mailboxes: Mapping[str, bool],
) -> str | None:
    match destination:
        case ToVoicemail(mailbox=mailbox):
            if mailbox not in mailboxes:
                return f"no extension {mailbox} in [extensions]"
            if not mailboxes[mailbox]:
                return f"extension {mailbox} has no mailbox (mailbox = false)"
        case ToExtension(number=number) if number not in mailboxes:
            return f"no extension {number} in [extensions]"
        case ToGroup(name=target):
            if target == name:
                return "a group cannot overflow to itself"
            if target not in groups:
                return f"no group {target} in [groups]"
            loop = _overflow_loop(name, target, groups)
            if loop is not None:
                return "overflow goes round in a loop: " + " -> ".join(loop)
    return None


def _overflow_loop(
    start: str, target: str, groups: Mapping[str, GroupSettings]
) -> list[str] | None:
    """The path back to ``start`` through the groups' group: destinations, if any."""
    stack: list[list[str]] = [[start, target]]
    visited = {start}
    while stack:
        path = stack.pop()
        current = path[-1]
        if current == start:
            return path
        if current in visited or current not in groups:
            continue
        visited.add(current)
        for _, text in groups[current].destinations.chosen():
            destination = parse_destination(text)
            if isinstance(destination, ToGroup):
                stack.append([*path, destination.name])
    return None
