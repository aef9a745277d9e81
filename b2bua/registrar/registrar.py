"""REGISTER processing after authentication (RFC 3261 section 10.3, steps 5 to 8).

:meth:`Registrar.register` takes an authenticated REGISTER and either refuses it (a
status, a reason and extra headers) or applies it to the :class:`Location` and returns
what changed, so the switch can persist it and re-arm expiry timers. Pure: wall-clock
time comes in as an argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.utils import formatdate

from b2bua.registrar.binding import Binding
from b2bua.registrar.location import Location, Registration
from b2bua.registrar.settings import RegistrarSettings
from b2bua.sip.address import Peer
from b2bua.sip.errors import SipError
from b2bua.sip.headers import NameAddr
from b2bua.sip.message import Request
from b2bua.sip.status import StatusCode


@dataclass(slots=True)
class RegisterOutcome:
    """The answer to a REGISTER: ``status``/``reason``/``headers`` for the response;
    ``saved`` and ``removed`` are the bindings that changed (to persist and re-time)."""

    status: int
    reason: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    saved: list[Registration] = field(default_factory=list)
    removed: list[Registration] = field(default_factory=list)


class Registrar:
    def __init__(self, settings: RegistrarSettings, location: Location) -> None:
        self.settings = settings
        self.location = location
        self._date_cache: tuple[int, str] = (-1, "")

    def register(self, request: Request, aor: str, peer: Peer, wall_now: float) -> RegisterOutcome:
        """Apply an authenticated REGISTER for extension ``aor``."""
        try:
            contacts = request.contacts
        except SipError:
            return RegisterOutcome(StatusCode.BAD_REQUEST, "Malformed Contact")
        header_expires = _expires_header(request)
        if header_expires is False:
            return RegisterOutcome(StatusCode.BAD_REQUEST, "Malformed Expires")
        if any(c.is_wildcard for c in contacts):
            # Section 10.3 item 6: "*" only alone and with Expires: 0.
            if len(contacts) != 1 or header_expires != 0:
                return RegisterOutcome(StatusCode.BAD_REQUEST, "Wildcard Contact Needs Expires 0")
            return self._remove_all(request, aor, wall_now)
        wanted: list[tuple[NameAddr, int]] = []
        for contact in contacts:
            expires = _contact_expires(contact, header_expires, self.settings.default_expires)
            if expires is None:
                return RegisterOutcome(StatusCode.BAD_REQUEST, "Malformed Contact Expires")
            if 0 < expires < self.settings.min_expires:
                # Section 10.3 item 7: 423 with Min-Expires, the whole request refused.
                return RegisterOutcome(
                    StatusCode.INTERVAL_TOO_BRIEF,
                    headers=[("Min-Expires", str(self.settings.min_expires))],
                )
            wanted.append((contact, min(expires, self.settings.max_expires)))
        outcome = RegisterOutcome(StatusCode.OK)
        # Section 10.3 item 8: check every contact before changing anything.
        existing = [self.location.find(aor, contact.uri_text) for contact, _ in wanted]
        for found in existing:
            if found is not None and not _is_newer(found.binding, request):
                return RegisterOutcome(StatusCode.BAD_REQUEST, "CSeq Not Increasing")
        live = len(self.location.registrations(aor))
        added = sum(
            1
            for (_, expires), found in zip(wanted, existing, strict=True)
            if expires > 0 and found is None
        )
        if live + added > self.settings.max_contacts:
            return RegisterOutcome(StatusCode.FORBIDDEN, "Too Many Contacts")
        user_agent = request.headers.get("user-agent")
        for contact, expires in wanted:
            if expires == 0:
                removed = self.location.remove(aor, contact.uri_text)
                if removed is not None:
                    outcome.removed.append(removed)
                continue
            registration = Registration(
                Binding(
                    aor=aor,
                    contact=contact.uri_text,
                    expires_at=wall_now + expires,
                    registered_at=wall_now,
                    call_id=request.call_id,
                    cseq=request.cseq.number,
                    source=str(peer),
                    q=_q_value(contact),
                    user_agent=user_agent,
                    instance=contact.param("+sip.instance"),
                ),
                peer,
            )
            self.location.put(registration)
            outcome.saved.append(registration)
        outcome.headers = self.binding_headers(aor, wall_now)
        return outcome

    def query(self, aor: str, wall_now: float) -> RegisterOutcome:
        """A REGISTER without Contact: list the current bindings (section 10.3 item 8)."""
        return RegisterOutcome(StatusCode.OK, headers=self.binding_headers(aor, wall_now))

    def binding_headers(self, aor: str, wall_now: float) -> list[tuple[str, str]]:
        """Contact (one per binding, with its remaining expires and q) and Date."""
        headers = []
        for reg in self.location.registrations(aor):
            binding = reg.binding
            remaining = max(0, round(binding.expires_at - wall_now))
            q = "" if binding.q is None else f";q={binding.q:g}"
            headers.append(("Contact", f"<{binding.contact}>;expires={remaining}{q}"))
        headers.append(("Date", self._date(wall_now)))
        return headers

    def _date(self, wall_now: float) -> str:
        # One formatting a second is enough (RFC 1123 dates have whole seconds).
        second = int(wall_now)
        if self._date_cache[0] != second:
            self._date_cache = (second, formatdate(second, usegmt=True))
        return self._date_cache[1]

    def _remove_all(self, request: Request, aor: str, wall_now: float) -> RegisterOutcome:
        regs = self.location.registrations(aor)
        if any(
            not _is_newer(r.binding, request) for r in regs if r.binding.call_id == request.call_id
        ):
            return RegisterOutcome(StatusCode.BAD_REQUEST, "CSeq Not Increasing")
        removed = self.location.remove_all(aor)
        return RegisterOutcome(
            StatusCode.OK, headers=self.binding_headers(aor, wall_now), removed=removed
        )


def _is_newer(binding: Binding, request: Request) -> bool:
    """Section 10.3 item 7: a binding from the same Call-ID is changed only by a higher
    CSeq; another Call-ID (the phone restarted) always may."""
    return binding.call_id != request.call_id or request.cseq.number > binding.cseq


def _expires_header(request: Request) -> int | bool | None:
    """The Expires header: None when absent, False when malformed."""
    value = request.headers.get("expires")
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit():
        return False
    return min(int(value), 2**32 - 1)


def _contact_expires(contact: NameAddr, header: int | bool | None, default: int) -> int | None:
    value = contact.param("expires")
    if value is not None:
        return min(int(value), 2**32 - 1) if value.isdigit() else None
    if isinstance(header, int) and not isinstance(header, bool):
        return header
    return default


def _q_value(contact: NameAddr) -> float | None:
    value = contact.param("q")
    if value is None:
        return None
    try:
        q = float(value)
    except ValueError:
        return None
    return q if 0.0 <= q <= 1.0 else None
