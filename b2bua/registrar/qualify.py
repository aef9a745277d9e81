"""Qualify: OPTIONS to each registered contact of an extension that asks for it, every
``qualify`` seconds (as Asterisk's qualify and Kamailio's nathelper do). Any response
means the phone is there; a transaction that times out (Timer F) or cannot be sent
marks the contact unreachable, so hunting can skip it. The pings also keep NAT
pinholes open. Pure: builds requests, the switch sends them in client transactions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from b2bua.ids import IdSource
from b2bua.registrar.location import Registration
from b2bua.registrar.settings import Extension
from b2bua.sip.message import Headers, Request


@dataclass(frozen=True, slots=True)
class QualifyDue:
    """The timer of the next OPTIONS ping to one contact."""

    aor: str
    contact: str


@dataclass(frozen=True, slots=True)
class LocalIdentity:
    """How the switch names itself in requests it sends."""

    host: str
    ports: Mapping[str, int]  # transport name ("UDP", "TCP") -> our listening port
    user_agent: str


class Qualifier:
    def __init__(
        self, extensions: Mapping[str, Extension], ids: IdSource, local: LocalIdentity
    ) -> None:
        self._extensions = extensions
        self._ids = ids
        self._local = local

    def set_extensions(self, extensions: Mapping[str, Extension]) -> None:
        self._extensions = extensions

    def interval(self, aor: str) -> float:
        """Seconds between pings for this extension's contacts (0: never)."""
        extension = self._extensions.get(aor)
        return 0.0 if extension is None else extension.qualify

    def ping(self, registration: Registration) -> Request:
        """An out-of-dialog OPTIONS to the contact (RFC 3261 section 11.1)."""
        transport = registration.peer.transport.value
        port = self._local.ports.get(transport) or next(iter(self._local.ports.values()), 5060)
        host = self._local.host
        contact = registration.binding.contact
        headers = Headers(
            [
                ("Via", f"SIP/2.0/{transport} {host}:{port};branch={self._ids.new_branch()};rport"),
                ("Max-Forwards", "70"),
                ("From", f"<sip:qualify@{host}>;tag={self._ids.new_tag()}"),
                ("To", f"<{contact}>"),
                ("Call-ID", f"{self._ids.new_call_id()}@{host}"),
                ("CSeq", "1 OPTIONS"),
                ("Accept", "application/sdp"),
                ("User-Agent", self._local.user_agent),
            ]
        )
        return Request("OPTIONS", contact, headers)
