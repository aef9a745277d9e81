"""Switch: the pure composition root. ``handle(input, now)`` parses what arrived, runs it
through the transaction layer and the request handling of RFC 3261 section 8.2, and
returns what to send; timers live in one :class:`TimerQueue` whose next deadline the
shell arms.

What the switch answers by itself (until calls and hunting arrive): REGISTER goes to the
registrar (digest authentication, bindings, expiry on the switch's clock); OPTIONS gets
200 with Allow, Accept and Supported (section 11.2); CANCEL gets 200 and its INVITE 487,
or 481 when there is no such INVITE; a method no RFC defines gets 501 and a known method
we do not offer yet 405 with Allow; Max-Forwards 0 gets 483 (except OPTIONS, which we
answer ourselves, section 16.3 item 3); a request carrying one of our own Vias, or a
merged request (section 8.2.2.2), gets 482; a Require we do not support gets 420 with
Unsupported; a malformed request gets 400 (505, 513) naming the fault.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

from structlog.typing import FilteringBoundLogger

from b2bua.config import ListenAddress
from b2bua.events import (
    CloseConnection,
    ConnectionClosed,
    DatagramReceived,
    DeleteBinding,
    Input,
    Output,
    SaveBinding,
    SendDatagram,
    SendStream,
    StateLoaded,
    StreamReceived,
)
from b2bua.ids import BRANCH_PREFIX, IdSource
from b2bua.registrar.auth import Authenticated, Ignored, Refused
from b2bua.registrar.location import Registration
from b2bua.registrar.qualify import LocalIdentity, Qualifier, QualifyDue
from b2bua.registrar.service import RegistrarService
from b2bua.registrar.settings import Extension, RegistrarSettings, SecuritySettings
from b2bua.sip.address import Peer, Transport
from b2bua.sip.errors import LocalProtocolError, SipError
from b2bua.sip.message import Request, Response, make_response
from b2bua.sip.parser import MessageParseError, ParserLimits, parse_message
from b2bua.sip.status import KNOWN_METHODS, StatusCode
from b2bua.timer_queue import TimerQueue
from b2bua.transaction.actions import SendMessage
from b2bua.transaction.events import (
    AckReceived,
    CancelReceived,
    CancelTransactionTimer,
    LayerEvent,
    RequestReceived,
    ResponseReceived,
    StartTransactionTimer,
    StrayResponse,
    TransactionTerminated,
    TransactionTimedOut,
    TransactionTransportFailed,
)
from b2bua.transaction.keys import TransactionKey
from b2bua.transaction.layer import TransactionLayer
from b2bua.transaction.timers import TimerName, TimerSettings

#: Methods the switch offers today; the calls issue adds INVITE, ACK, BYE...
ALLOWED_METHODS: Final = ("REGISTER", "OPTIONS", "CANCEL")
#: Requests an extension must authenticate for (407). Never REGISTER (401 instead),
#: OPTIONS (answered to anyone), ACK and CANCEL (section 22.1: they cannot be challenged).
CHALLENGED_METHODS: Final = KNOWN_METHODS - {"REGISTER", "OPTIONS", "ACK", "CANCEL"}
#: Option tags we support (RFC 3261 section 19.2); none yet.
SUPPORTED_EXTENSIONS: Final[tuple[str, ...]] = ()
ACCEPTED_CONTENT: Final = "application/sdp"
_SIP_SCHEMES: Final = frozenset({"sip", "sips", "tel"})


@dataclass(frozen=True, slots=True)
class BindingExpiry:
    """The timer of one registration's expiry."""

    aor: str
    contact: str


TimerKey: TypeAlias = tuple[TransactionKey, TimerName] | BindingExpiry | QualifyDue


@dataclass(frozen=True, slots=True)
class SwitchSettings:
    """What the switch needs to know about itself."""

    listen: tuple[ListenAddress, ...]
    advertised_address: str | None = None
    user_agent: str = "b2bua"
    timers: TimerSettings = field(default_factory=TimerSettings)
    limits: ParserLimits = field(default_factory=ParserLimits)
    realm: str = "b2bua"
    extensions: Mapping[str, Extension] = field(default_factory=dict)
    registrar: RegistrarSettings = field(default_factory=RegistrarSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)

    @property
    def host(self) -> str:
        """The address written into Via, Contact and SDP (section "The switch's own address")."""
        if self.advertised_address:
            return self.advertised_address
        return self.listen[0].host if self.listen else "127.0.0.1"


class Switch:
    """Inputs: :class:`DatagramReceived`, :class:`StreamReceived`, :class:`ConnectionClosed`
    and the timers (:meth:`fire_timers`). Outputs: :class:`SendDatagram`,
    :class:`SendStream`, :class:`CloseConnection`."""

    def __init__(
        self,
        settings: SwitchSettings,
        ids: IdSource,
        log: FilteringBoundLogger,
        *,
        secret: bytes,
        wall_offset: float = 0.0,
    ) -> None:
        """``secret`` (at least 32 random bytes) keys the digest nonces; ``wall_offset``
        turns the loop's monotonic ``now`` into wall-clock time (``now + wall_offset``)."""
        self.settings = settings
        self._ids = ids
        self._log = log
        self.wall_offset = wall_offset
        self._qualifier = Qualifier(
            settings.extensions,
            ids,
            LocalIdentity(
                settings.host,
                {address.transport.value: address.port for address in reversed(settings.listen)},
                settings.user_agent,
            ),
        )
        self._pinging: dict[TransactionKey, QualifyDue] = {}
        self.registrar = RegistrarService(
            realm=settings.realm,
            extensions=settings.extensions,
            settings=settings.registrar,
            security=settings.security,
            secret=secret,
            log=log,
        )
        self._layer = TransactionLayer(settings.timers)
        self._timers: TimerQueue[TimerKey] = TimerQueue()
        # Section 8.2.2.2: (From tag, Call-ID, CSeq) of requests in progress -> their key.
        self._in_progress: dict[tuple[str, str, int, str], TransactionKey] = {}
        self._progress_by_key: dict[TransactionKey, tuple[str, str, int, str]] = {}
        self._own_sent_by = {(a.host, a.port) for a in settings.listen}
        self._own_sent_by.add((settings.host, settings.listen[0].port if settings.listen else 5060))

    # -- the boundary

    def handle(self, event: Input, now: float) -> list[Output]:
        match event:
            case DatagramReceived(data=data, peer=peer):
                return self._on_bytes(data, peer, now, stream=False)
            case StreamReceived(data=data, peer=peer):
                return self._on_bytes(data, peer, now, stream=True)
            case ConnectionClosed():
                return []
            case StateLoaded(bindings=bindings):
                restored = self.registrar.restore(bindings, now + self.wall_offset)
                self._time_bindings(restored, [], now)
                return []

    def fire_timers(self, now: float) -> list[Output]:
        out: list[Output] = []
        for key in self._timers.pop_due(now):
            if isinstance(key, BindingExpiry):
                expired = self.registrar.expire(key.aor, key.contact, now + self.wall_offset)
                if expired is not None:
                    self._timers.cancel(QualifyDue(key.aor, key.contact))
                    out.append(DeleteBinding(aor=key.aor, contact=expired.binding.contact))
            elif isinstance(key, QualifyDue):
                out += self._qualify(key, now)
            else:
                out += self._apply(self._layer.on_timer(key[0], key[1], now), now)
        return out

    def next_deadline(self) -> float | None:
        return self._timers.next_deadline()

    @property
    def transaction_count(self) -> int:
        return len(self._layer)

    # -- receiving

    def _on_bytes(self, data: bytes, peer: Peer, now: float, *, stream: bool) -> list[Output]:
        try:
            message = parse_message(data, stream=stream, limits=self.settings.limits)
        except MessageParseError as exc:
            return self._on_parse_error(exc, peer, stream=stream)
        if isinstance(message, Response):
            return self._apply(self._layer.on_response(message, peer, now), now)
        self._stamp_via(message, peer)
        return self._apply(
            self._layer.on_request(message, self._reply_peer(message, peer), now), now
        )

    def _on_parse_error(self, exc: MessageParseError, peer: Peer, *, stream: bool) -> list[Output]:
        self._log.info(
            "malformed_message", peer=str(peer), reason=exc.reason, status=exc.status_hint
        )
        request = exc.request
        out: list[Output] = []
        if exc.status_hint is not None and request is not None and request.method != "ACK":
            self._stamp_via(request, peer)
            response = self._response(request, exc.status_hint, exc.reason)
            out.append(self._send(response.to_bytes(), self._reply_peer(request, peer)))
        if stream and peer.connection is not None and exc.status_hint is None:
            out.append(CloseConnection(connection=peer.connection))
        return out

    def _stamp_via(self, request: Request, peer: Peer) -> None:
        """RFC 3261 section 18.2.1 and RFC 3581 section 4: record where the request really
        came from in the top Via (received, and rport when the client asked for it)."""
        via = request.top_via
        updates: dict[str, str | None] = {}
        if via.has_rport:
            updates["received"] = peer.host
            updates["rport"] = str(peer.port)
        elif via.sent_by[0] != peer.host:
            updates["received"] = peer.host
        if updates:
            request.headers.replace_first_value("via", str(via.with_params(**updates)))

    @staticmethod
    def _reply_peer(request: Request, peer: Peer) -> Peer:
        """Where responses go (RFC 3261 section 18.2.2, RFC 3581 section 4): back on the
        connection for TCP; for UDP to the source address, at the rport if the client asked
        for one, else at the port of its sent-by."""
        if peer.transport.is_reliable:
            return peer
        via = request.top_via
        if via.has_rport:
            return peer
        return Peer(peer.transport, peer.host, via.sent_by[1])

    # -- the transaction user

    def _on_request(
        self, request: Request, peer: Peer, key: TransactionKey, now: float
    ) -> list[Output]:
        status, reason, extra = self._screen(request, key)
        if status is None and request.method in CHALLENGED_METHODS:
            # Only public numbers are open to the outside world, and none is public yet
            # (groups and trunks bring them): so such a request must come from an
            # authenticated extension (407, section 22.3) before anything else is said
            # about it, even that the method is not offered yet.
            match self.registrar.authenticate(request, peer, now):
                case Ignored():
                    return self._apply(self._layer.terminate(key, now), now)
                case Refused(status=refused, reason=refused_reason, headers=headers):
                    status, reason, extra = refused, refused_reason, headers
                case Authenticated():
                    pass
        if status is None:
            if request.method == "OPTIONS":
                return self._respond(key, self._options_response(request), now)
            if request.method == "REGISTER":
                return self._on_register(request, peer, key, now)
            # CANCEL comes as CancelReceived; nothing else is allowed yet.
            status = StatusCode.METHOD_NOT_ALLOWED
            extra = [("Allow", ", ".join(ALLOWED_METHODS))]
        response = self._response(request, status, reason)
        for name, value in extra:
            response.headers.add(name, value)
        return self._respond(key, response, now)

    def _screen(
        self, request: Request, key: TransactionKey
    ) -> tuple[int | None, str | None, list[tuple[str, str]]]:
        """Sections 8.2.1 to 8.2.2 and 16.3: the checks before a request is acted on."""
        method = request.method
        if method not in KNOWN_METHODS:
            # RFC 4475 section 3.1.2.18: an unknown method is answered 501 even when its
            # CSeq does not match either.
            return StatusCode.NOT_IMPLEMENTED, None, []
        if request.cseq.method != method:
            return StatusCode.BAD_REQUEST, "CSeq Method Does Not Match", []
        max_forwards = request.max_forwards
        if max_forwards == 0 and method != "OPTIONS":
            return StatusCode.TOO_MANY_HOPS, None, []
        if any(
            (v.branch or "").startswith(BRANCH_PREFIX) and v.sent_by in self._own_sent_by
            for v in request.vias
        ):
            return StatusCode.LOOP_DETECTED, None, []
        try:
            scheme = request.request_uri.scheme
        except SipError:
            return StatusCode.BAD_REQUEST, "Malformed Request-URI", []
        if scheme not in _SIP_SCHEMES:
            return StatusCode.UNSUPPORTED_URI_SCHEME, None, []
        if self._is_merged(request, key):
            return StatusCode.LOOP_DETECTED, "Merged Request", []
        unsupported = [
            tag
            for tag in request.headers.get_all("require")
            if tag.lower() not in SUPPORTED_EXTENSIONS
        ]
        if unsupported:
            return StatusCode.BAD_EXTENSION, None, [("Unsupported", ", ".join(unsupported))]
        return None, None, []

    def _is_merged(self, request: Request, key: TransactionKey) -> bool:
        """Section 8.2.2.2: a request without To tag whose From tag, Call-ID and CSeq match
        a request in progress that came by another path (another branch)."""
        if request.to.tag is not None:
            return False
        identity = (request.from_.tag or "", request.call_id, request.cseq.number, request.method)
        earlier = self._in_progress.get(identity)
        if earlier is not None and earlier != key:
            return True
        self._in_progress[identity] = key
        self._progress_by_key[key] = identity
        return False

    def _on_register(
        self, request: Request, peer: Peer, key: TransactionKey, now: float
    ) -> list[Output]:
        reply = self.registrar.on_register(request, peer, now, now + self.wall_offset)
        if reply is None:
            # A blocked source: say nothing, and let the transaction go at once.
            return self._apply(self._layer.terminate(key, now), now)
        response = self._response(request, reply.status, reply.reason)
        for name, value in reply.headers:
            response.headers.add(name, value)
        out = self._respond(key, response, now)
        self._time_bindings(reply.saved, reply.removed, now)
        out += [SaveBinding(binding=reg.binding) for reg in reply.saved]
        out += [
            DeleteBinding(aor=reg.binding.aor, contact=reg.binding.contact) for reg in reply.removed
        ]
        return out

    def _time_bindings(
        self, saved: list[Registration], removed: list[Registration], now: float
    ) -> None:
        """Expiry runs on the switch's clock: wall-clock expiry minus the offset. Contacts
        of extensions with ``qualify`` get their first ping one interval from now."""
        for reg in removed:
            self._timers.cancel(BindingExpiry(reg.binding.aor, reg.binding.contact))
            self._timers.cancel(QualifyDue(reg.binding.aor, reg.binding.contact))
        for reg in saved:
            aor, contact = reg.binding.aor, reg.binding.contact
            self._timers.schedule(
                BindingExpiry(aor, contact), reg.binding.expires_at - self.wall_offset
            )
            interval = self._qualifier.interval(aor)
            if interval > 0 and QualifyDue(aor, contact) not in self._timers:
                self._timers.schedule(QualifyDue(aor, contact), now + interval)

    def _qualify(self, due: QualifyDue, now: float) -> list[Output]:
        registration = self.registrar.location.find(due.aor, due.contact)
        if registration is None:
            return []
        key, events = self._layer.send_request(
            self._qualifier.ping(registration), registration.peer, now
        )
        self._pinging[key] = due
        return self._apply(events, now)

    def _qualified(self, key: TransactionKey, reachable: bool, now: float) -> None:
        """A ping ended: any response means reachable; a timeout or send error, not."""
        due = self._pinging.pop(key, None)
        if due is None:
            return
        registration = self.registrar.location.find(due.aor, due.contact)
        if registration is None:
            return
        if reachable:
            registration.answered_at = now
        if registration.reachable != reachable:
            registration.reachable = reachable
            self._log.info(
                "contact_reachable" if reachable else "contact_unreachable",
                aor=due.aor,
                contact=due.contact,
            )
        interval = self._qualifier.interval(due.aor)
        if interval > 0:
            self._timers.schedule(due, now + interval)

    def snapshot(self, now: float) -> dict[str, Any]:
        """What /status shows."""
        state = self.registrar.snapshot(now, now + self.wall_offset)
        state["transactions"] = len(self._layer)
        return state

    def _options_response(self, request: Request) -> Response:
        response = self._response(request, StatusCode.OK)
        response.headers.add("Allow", ", ".join(ALLOWED_METHODS))
        response.headers.add("Accept", ACCEPTED_CONTENT)
        response.headers.add("Accept-Encoding", "identity")
        response.headers.add("Accept-Language", "en")
        response.headers.add("Supported", ", ".join(SUPPORTED_EXTENSIONS))
        return response

    def _on_cancel(
        self,
        cancel: Request,
        cancel_key: TransactionKey,
        invite_key: TransactionKey | None,
        now: float,
    ) -> list[Output]:
        """Section 9.2: 200 to the CANCEL and 487 to its INVITE, or 481 when none matches."""
        invite_transaction = None if invite_key is None else self._layer.get(invite_key)
        if invite_key is None or invite_transaction is None:
            return self._respond(
                cancel_key, self._response(cancel, StatusCode.CALL_TRANSACTION_DOES_NOT_EXIST), now
            )
        out = self._respond(cancel_key, self._response(cancel, StatusCode.OK), now)
        # If the INVITE was already answered, the CANCEL has no effect (section 9.2).
        with contextlib.suppress(LocalProtocolError):
            out += self._respond(
                invite_key,
                self._response(invite_transaction.request, StatusCode.REQUEST_TERMINATED),
                now,
            )
        return out

    def _response(self, request: Request, status: int, reason: str | None = None) -> Response:
        response = make_response(
            request, status, reason, to_tag=self._ids.new_tag() if status > 100 else None
        )
        response.headers.add("Server", self.settings.user_agent)
        return response

    # -- plumbing between the layer, the timers and the wire

    def _respond(self, key: TransactionKey, response: Response, now: float) -> list[Output]:
        return self._apply(self._layer.send_response(key, response, now), now)

    def _apply(self, events: list[LayerEvent], now: float) -> list[Output]:
        out: list[Output] = []
        for event in events:
            match event:
                case SendMessage(data=data, peer=peer):
                    out.append(self._send(data, peer))
                case StartTransactionTimer(key=key, name=name, at=at):
                    self._timers.schedule((key, name), at)
                case CancelTransactionTimer(key=key, name=name):
                    self._timers.cancel((key, name))
                case RequestReceived(request=request, peer=peer, key=key):
                    out += self._on_request(request, peer, key, now)
                case CancelReceived(cancel=cancel, cancel_key=cancel_key, invite_key=invite_key):
                    out += self._on_cancel(cancel, cancel_key, invite_key, now)
                case TransactionTerminated(key=key):
                    self._forget(key)
                    self._qualified(key, False, now)  # ended without any response
                case ResponseReceived(response=response, key=key):
                    if response.status >= 200:
                        self._qualified(key, True, now)
                case TransactionTimedOut(key=key) | TransactionTransportFailed(key=key):
                    self._qualified(key, False, now)
                case AckReceived() | StrayResponse():
                    pass  # no dialogs yet
        return out

    def _forget(self, key: TransactionKey) -> None:
        identity = self._progress_by_key.pop(key, None)
        if identity is not None:
            self._in_progress.pop(identity, None)

    def _send(self, data: bytes, peer: Peer) -> Output:
        if peer.transport is Transport.UDP:
            return SendDatagram(data=data, peer=peer)
        return SendStream(data=data, peer=peer)
