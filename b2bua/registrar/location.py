"""Location: the registered contacts of each extension, in memory (like Kamailio's
usrloc, kept apart from REGISTER handling). The durable copy is in SQLite, written by
the shell from the switch's Persist outputs; this is what routing reads.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from b2bua.registrar.binding import Binding
from b2bua.sip.address import Peer
from b2bua.sip.errors import SipError
from b2bua.sip.uri import Uri, parse_uri, uri_equivalent


@dataclass(slots=True)
class Registration:
    """A binding and how to reach it: ``peer`` is where its REGISTER came from (the TCP
    connection too, while it lasts). ``reachable`` is False once qualify stops hearing."""

    binding: Binding
    peer: Peer
    reachable: bool = True
    answered_at: float | None = None  # switch clock of the last answer to a qualify ping
    uri: Uri | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.uri = _parsed(self.binding.contact)


class Location:
    """Registrations by extension number, each extension's in registration order."""

    def __init__(self) -> None:
        self._by_aor: dict[str, list[Registration]] = {}
        self._sources: Counter[str] = Counter()

    def __len__(self) -> int:
        return sum(len(regs) for regs in self._by_aor.values())

    def registrations(self, aor: str) -> list[Registration]:
        return list(self._by_aor.get(aor, ()))

    def aors(self) -> list[str]:
        return sorted(self._by_aor)

    def find(self, aor: str, contact: str) -> Registration | None:
        """The registration of ``aor`` whose contact is equivalent to ``contact``
        (RFC 3261 section 10.3 item 8 compares contacts by section 19.1.4)."""
        regs = self._by_aor.get(aor)
        if not regs:
            return None
        uri = _parsed(contact)
        for reg in regs:
            if _same_contact(reg, contact, uri):
                return reg
        return None

    def put(self, registration: Registration) -> None:
        binding = registration.binding
        regs = self._by_aor.setdefault(binding.aor, [])
        for i, reg in enumerate(regs):
            if _same_contact(reg, binding.contact, registration.uri):
                self._sources[reg.peer.host] -= 1
                regs[i] = registration
                break
        else:
            regs.append(registration)
        self._sources[registration.peer.host] += 1

    def remove(self, aor: str, contact: str) -> Registration | None:
        regs = self._by_aor.get(aor, [])
        uri = _parsed(contact)
        for i, reg in enumerate(regs):
            if _same_contact(reg, contact, uri):
                del regs[i]
                self._release(reg)
                if not regs:
                    del self._by_aor[aor]
                return reg
        return None

    def remove_all(self, aor: str) -> list[Registration]:
        regs = self._by_aor.pop(aor, [])
        for reg in regs:
            self._release(reg)
        return regs

    def has_source(self, host: str) -> bool:
        """Whether any live registration came from this address."""
        return self._sources[host] > 0

    def _release(self, reg: Registration) -> None:
        self._sources[reg.peer.host] -= 1
        if self._sources[reg.peer.host] <= 0:
            del self._sources[reg.peer.host]


def _parsed(contact: str) -> Uri | None:
    try:
        return parse_uri(contact)
    except SipError:
        return None


def _same_contact(reg: Registration, contact: str, uri: Uri | None) -> bool:
    if reg.binding.contact == contact:
        return True
    return reg.uri is not None and uri is not None and uri_equivalent(reg.uri, uri)
