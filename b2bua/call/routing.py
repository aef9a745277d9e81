"""The dial plan: which destination a dialled number reaches, and who may dial it
(ARCHITECTURE.md, "Numbers route through one table").

Every extension's own number is internal: only an authenticated extension may call it.
The number table of the config adds numbers (a DID, a short code) that point at a
destination, each public (anyone may call it, e.g. calls from a carrier) or not. The
public check comes first so that an outside caller is never challenged for a public
number; everything else needs the caller to authenticate before the switch says whether
the number exists (no number enumeration by unauthenticated callers).

Hunt groups bring their own numbers: ``public_numbers`` anyone may dial, ``numbers`` only
authenticated extensions (the config check keeps every number in one place only).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

from b2bua.call.settings import NumberEntry
from b2bua.hunt.model import HuntGroup
from b2bua.registrar.settings import Extension
from b2bua.sip.status import StatusCode
from b2bua.sip.uri import SipUri, TelUri


@dataclass(frozen=True, slots=True)
class ToExtension:
    """Ring every registered contact of extension ``number``."""

    number: str


@dataclass(frozen=True, slots=True)
class ToGroup:
    """Hunt the call through group ``name``."""

    name: str


@dataclass(frozen=True, slots=True)
class Reject:
    status: int
    reason: str | None = None


Destination: TypeAlias = ToExtension | ToGroup | Reject


def dialled_number(uri: object) -> str | None:
    """The number a URI names: a SIP URI's user part (visual separators of a phone number
    removed, RFC 3966 section 5.1.1), or a tel: URI's number."""
    if isinstance(uri, TelUri):
        number = uri.number
    elif isinstance(uri, SipUri):
        number = uri.user or ""
    else:
        return None
    number = number.split(";", 1)[0]
    cleaned = "".join(c for c in number if c not in "-.() ")
    return cleaned or None


class DialPlan:
    def __init__(
        self,
        extensions: Mapping[str, Extension],
        numbers: Mapping[str, NumberEntry],
        groups: Mapping[str, HuntGroup] | None = None,
    ) -> None:
        self._extensions = extensions
        self._numbers = numbers
        self._public_groups: dict[str, ToGroup] = {}
        self._internal_groups: dict[str, ToGroup] = {}
        for name, group in (groups or {}).items():
            for number in group.public_numbers:
                self._public_groups[number] = ToGroup(name)
            for number in group.numbers:
                self._internal_groups[number] = ToGroup(name)

    def public(self, dialled: str | None) -> Destination | None:
        """The destination of a public number, or None when ``dialled`` is not one (then
        the caller must authenticate and :meth:`route` decides)."""
        group = self._public_groups.get(dialled or "")
        if group is not None:
            return group
        entry = self._numbers.get(dialled or "")
        if entry is None or not entry.public:
            return None
        return self._entry(entry)

    def from_trunk(self, did: str | None) -> Destination:
        """Where a call a carrier trunk delivers for ``did`` goes: any number of the table
        and any group number, public or not (the trunk is trusted by its source address,
        and a DID is the provider's to deliver), but never an extension's own internal
        number unless the table maps a DID to it. The DID is tried as sent, then without
        and with a leading +, since providers differ on E.164's +."""
        bare = (did or "").removeprefix("+")
        for number in (did or "", bare, f"+{bare}"):
            group = self._public_groups.get(number) or self._internal_groups.get(number)
            if group is not None:
                return group
            entry = self._numbers.get(number)
            if entry is not None:
                return self._entry(entry)
        return Reject(StatusCode.NOT_FOUND)

    def route(self, dialled: str | None) -> Destination:
        """Where an authenticated caller's call to ``dialled`` goes."""
        number = dialled or ""
        group = self._internal_groups.get(number) or self._public_groups.get(number)
        if group is not None:
            return group
        entry = self._numbers.get(number)
        if entry is not None:
            return self._entry(entry)
        if number in self._extensions:
            return ToExtension(number)
        return Reject(StatusCode.NOT_FOUND)

    def _entry(self, entry: NumberEntry) -> Destination:
        if entry.extension in self._extensions:
            return ToExtension(entry.extension)
        return Reject(StatusCode.NOT_FOUND)  # the config check refuses this; defence in depth
