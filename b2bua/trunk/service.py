"""The switch's carrier trunks: which trunk an inbound request belongs to, the DID it
dials, the trunks' registrations and how many calls each carries.

Pure, like the rest of the core: the switch feeds it requests and the results of the
REGISTER transactions, and carries out the registration clients' actions.

**Which trunk.** A request belongs to a trunk only when its source address is on the
trunk's allow-list (section "Trunks" of docs/trunks.md). When several trunks allow the
address (two accounts at one provider), the registration trunk whose contact the
Request-URI names wins, then the first trunk in the config's order.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from b2bua.call.routing import dialled_number
from b2bua.ids import IdSource
from b2bua.registrar.qualify import LocalIdentity
from b2bua.sip.address import ConnectionId, Peer, Transport
from b2bua.sip.errors import SipError
from b2bua.sip.message import Request
from b2bua.sip.uri import SipUri
from b2bua.transaction.keys import TransactionKey
from b2bua.trunk.registration import RegistrationClient, RegistrationSettings
from b2bua.trunk.settings import Trunk


def registration_settings(trunk: Trunk) -> RegistrationSettings:
    """What the REGISTER client of ``trunk`` needs from its config."""
    settings = trunk.settings
    assert settings.username is not None  # the config check demands it for register = true
    host = settings.host
    bracketed = f"[{host}]" if ":" in host else host
    registrar = f"sip:{bracketed}" if settings.port == 5060 else f"sip:{bracketed}:{settings.port}"
    domain = settings.domain or host
    return RegistrationSettings(
        trunk=trunk.name,
        registrar=registrar,
        aor=f"sip:{settings.username}@{domain}",
        contact_user=trunk.contact_user or settings.username,
        username=settings.username,
        password=settings.password,
        ha1_md5=settings.ha1_md5,
        ha1_sha256=settings.ha1_sha256,
        realm=settings.realm,
        expires=settings.expires,
        retry_min=settings.retry_min,
        retry_max=settings.retry_max,
        keepalive=settings.keepalive,
        transport=trunk.peer.transport,
    )


class TrunkService:
    def __init__(
        self,
        trunks: Mapping[str, Trunk],
        local: LocalIdentity,
        ids: IdSource,
        rng: random.Random,
    ) -> None:
        self.trunks = dict(trunks)
        self.clients: dict[str, RegistrationClient] = {
            name: RegistrationClient(registration_settings(trunk), local, ids, rng)
            for name, trunk in trunks.items()
            if trunk.settings.registration
        }
        #: REGISTER transactions in progress -> the trunk that sent them.
        self.registering: dict[TransactionKey, tuple[str, int]] = {}  # (trunk, CSeq)
        #: Calls each trunk carries now (by the switch's call reference).
        self._calls: dict[str, set[int]] = {name: set() for name in trunks}
        self._trunk_of_call: dict[int, str] = {}
        # Trunks over TCP by their provider's address, and the connection each was last
        # heard on (the connection its registration's flow lives on).
        self._stream_trunks: dict[tuple[str, int], str] = {
            trunk.peer.address: name
            for name, trunk in trunks.items()
            if trunk.peer.transport is not Transport.UDP
        }
        self._connections: dict[ConnectionId, str] = {}

    # -- connections (trunks over TCP)

    def heard_on(self, peer: Peer) -> None:
        """A message came from ``peer`` over a connection: note it if it is a trunk's."""
        if peer.connection is not None and self._stream_trunks:
            name = self._stream_trunks.get(peer.address)
            if name is not None:
                self._connections[peer.connection] = name

    def connection_closed(self, connection: ConnectionId) -> str | None:
        """The trunk whose connection ``connection`` was, if any (forgotten now)."""
        return self._connections.pop(connection, None)

    # -- inbound

    def match(self, request: Request, source_host: str) -> Trunk | None:
        """The trunk ``request`` (from ``source_host``) comes through, if any."""
        allowed = [trunk for trunk in self.trunks.values() if trunk.allows(source_host)]
        if len(allowed) <= 1:
            return allowed[0] if allowed else None
        user = _contact_user(request)
        for trunk in allowed:
            if trunk.settings.registration and trunk.contact_user == user:
                return trunk
        return allowed[0]

    @staticmethod
    def did(trunk: Trunk, request: Request) -> str | None:
        """The number a trunk's INVITE dials, read where the trunk's ``did_from`` says."""
        match trunk.settings.did_from:
            case "contact":
                return trunk.contact_user
            case "to":
                try:
                    return dialled_number(request.to.uri)
                except SipError:
                    return None
            case _:
                return _request_user(request)

    # -- calls

    def has_room(self, trunk: Trunk) -> bool:
        """Whether ``trunk`` may carry one more call (its ``max_calls``)."""
        limit = trunk.settings.max_calls
        return limit is None or len(self._calls[trunk.name]) < limit

    def admit(self, trunk: Trunk, call: int) -> None:
        """Count ``call`` on ``trunk`` until :meth:`release`."""
        self._calls[trunk.name].add(call)
        self._trunk_of_call[call] = trunk.name

    @property
    def total_calls(self) -> int:
        """Calls through all trunks at once (``[calls] max_trunk_calls``)."""
        return len(self._trunk_of_call)

    def release(self, call: int) -> None:
        name = self._trunk_of_call.pop(call, None)
        if name is not None:
            self._calls[name].discard(call)

    def trunk_of(self, call: int) -> str | None:
        return self._trunk_of_call.get(call)

    # -- what /status shows

    def snapshot(self, now: float, wall_offset: float) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, trunk in self.trunks.items():
            entry: dict[str, Any] = {
                "provider": str(trunk.peer),
                "allow": [str(network) for network in trunk.networks],
                "did_from": trunk.settings.did_from,
                "calls": len(self._calls[name]),
                "max_calls": trunk.settings.max_calls,
            }
            client = self.clients.get(name)
            if client is not None:
                entry["registration"] = client.snapshot(now, wall_offset)
            out[name] = entry
        return out


def _request_user(request: Request) -> str | None:
    try:
        return dialled_number(request.request_uri)
    except SipError:
        return None


def _contact_user(request: Request) -> str | None:
    """The Request-URI's user as written (a contact user need not be a number)."""
    try:
        uri = request.request_uri
    except SipError:
        return None
    return uri.user if isinstance(uri, SipUri) else None
