"""RegistrarService: authentication, REGISTER processing, the location and brute-force
protection put together for the switch. Pure: monotonic ``now`` for nonces and blocks,
``wall_now`` for bindings (they outlive the process)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from structlog.typing import FilteringBoundLogger

from b2bua.registrar.auth import Authenticated, Authenticator, AuthResult, Ignored, Refused
from b2bua.registrar.binding import Binding
from b2bua.registrar.guard import AuthGuard
from b2bua.registrar.location import Location, Registration
from b2bua.registrar.registrar import Registrar
from b2bua.registrar.settings import Extension, RegistrarSettings, SecuritySettings
from b2bua.sip.address import Peer, Transport
from b2bua.sip.digest import Algorithm, NonceKeeper
from b2bua.sip.errors import SipError
from b2bua.sip.message import Request
from b2bua.sip.status import StatusCode
from b2bua.sip.uri import SipUri


@dataclass(slots=True)
class Reply:
    """How to answer a REGISTER; ``saved``/``removed`` are the bindings that changed."""

    status: int
    reason: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    saved: list[Registration] = field(default_factory=list)
    removed: list[Registration] = field(default_factory=list)


#: Nonces whose nonce-count history is kept (one per successful authentication within
#: the nonce lifetime; about 250 bytes each, 25 MB in all). A nonce pushed out of the
#: table is refused rather than forgotten (no replay window), so it must hold a busy
#: registration storm: at 10,000 a 2,000/s storm re-challenged 0.6% of phones.
NONCES_TRACKED: Final = 100_000


class RegistrarService:
    def __init__(
        self,
        *,
        realm: str,
        extensions: Mapping[str, Extension],
        settings: RegistrarSettings,
        security: SecuritySettings,
        secret: bytes,
        log: FilteringBoundLogger,
    ) -> None:
        self.extensions = extensions
        self.location = Location()
        self.guard = AuthGuard(security, self.location.has_source)
        self.registrar = Registrar(settings, self.location)
        self._log = log
        self.authenticator = Authenticator(
            realm=realm,
            extensions=extensions,
            algorithms=[Algorithm(a) for a in settings.algorithms],
            security=security,
            guard=self.guard,
            nonces=NonceKeeper(
                secret[:32], lifetime=settings.nonce_lifetime, max_tracked=NONCES_TRACKED
            ),
            decoy_key=secret[32:] or secret,
            log=log,
        )

    def set_extensions(self, extensions: Mapping[str, Extension]) -> list[Registration]:
        """Take the extensions of a reloaded config. The bindings of an extension that is
        gone are removed (returned: the switch deletes them from the store)."""
        removed = [
            reg
            for aor in self.location.aors()
            if aor not in extensions
            for reg in self.location.remove_all(aor)
        ]
        self.extensions = extensions
        self.authenticator.set_extensions(extensions)
        for reg in removed:
            self._log.info(
                "unregistered", aor=reg.binding.aor, contact=reg.binding.contact, why="removed"
            )
        return removed

    def authenticate(self, request: Request, peer: Peer, now: float) -> AuthResult:
        return self.authenticator.authenticate(request, peer.host, now)

    def on_register(
        self, request: Request, peer: Peer, now: float, wall_now: float
    ) -> Reply | None:
        """Answer an (authenticated or not) REGISTER; None means drop it (blocked)."""
        result = self.authenticate(request, peer, now)
        match result:
            case Ignored():
                return None
            case Refused(status=status, reason=reason, headers=headers):
                return Reply(status, reason, headers)
            case Authenticated(username=username, algorithm=algorithm):
                pass
        # Section 10.3 item 3: the authenticated user may change the bindings of its
        # own address of record only (the To header's user).
        to_uri = request.to.uri
        aor = to_uri.user if isinstance(to_uri, SipUri) else None
        if aor != username:
            return Reply(StatusCode.FORBIDDEN, "Not Your Address Of Record")
        if "contact" not in request.headers:
            query = self.registrar.query(aor, wall_now)
            return Reply(query.status, query.reason, query.headers)
        outcome = self.registrar.register(request, aor, peer, wall_now)
        for reg in outcome.saved:
            self._log.info(
                "registered",
                aor=aor,
                algorithm=str(algorithm),
                contact=reg.binding.contact,
                source=reg.binding.source,
                expires=round(reg.binding.expires_at - wall_now),
            )
        for reg in outcome.removed:
            self._log.info("unregistered", aor=aor, contact=reg.binding.contact)
        return Reply(
            outcome.status, outcome.reason, outcome.headers, outcome.saved, outcome.removed
        )

    def restore(self, bindings: tuple[Binding, ...], wall_now: float) -> list[Registration]:
        """Bindings from the store at start: the ones of known extensions still valid."""
        restored = []
        for binding in bindings:
            if binding.aor not in self.extensions or binding.expires_at <= wall_now:
                continue
            registration = Registration(binding, peer_of(binding.source))
            self.location.put(registration)
            restored.append(registration)
        if restored:
            self._log.info("registrations_restored", count=len(restored))
        return restored

    def expire(self, aor: str, contact: str, wall_now: float) -> Registration | None:
        """The binding's expiry time came: remove it unless it was refreshed."""
        reg = self.location.find(aor, contact)
        if reg is None or reg.binding.expires_at > wall_now + 0.5:
            return None
        self.location.remove(aor, contact)
        self._log.info("registration_expired", aor=aor, contact=contact)
        return reg

    def snapshot(self, now: float, wall_now: float) -> dict[str, Any]:
        registrations: dict[str, list[dict[str, Any]]] = {}
        for aor in self.location.aors():
            registrations[aor] = [
                {
                    "contact": reg.binding.contact,
                    "source": reg.binding.source,
                    "expires_in": max(0, round(reg.binding.expires_at - wall_now)),
                    "expires_at": reg.binding.expires_at,
                    "q": reg.binding.q,
                    "user_agent": reg.binding.user_agent,
                    "reachable": reg.reachable,
                    "qualified_seconds_ago": None
                    if reg.answered_at is None
                    else round(now - reg.answered_at, 1),
                }
                for reg in self.location.registrations(aor)
            ]
        return {
            "extensions": {
                number: {
                    "name": ext.name,
                    "registered": bool(registrations.get(number)),
                    "dnd": ext.dnd,
                }
                for number, ext in sorted(self.extensions.items())
            },
            "registrations": registrations,
            "blocked_sources": [
                {
                    "source": block.source,
                    "username": block.username,
                    "seconds_left": round(block.until - now, 1),
                }
                for block in self.guard.blocks(now)
            ],
        }


def peer_of(source: str) -> Peer:
    """``udp:HOST:PORT`` (as :class:`Peer` prints itself) back to a Peer."""
    transport, _, rest = source.partition(":")
    host, _, port = rest.rpartition(":")
    try:
        return Peer(Transport(transport.upper()), host.strip("[]"), int(port))
    except ValueError as exc:
        raise SipError(f"bad binding source {source!r}") from exc
