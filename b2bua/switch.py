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
import random
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Final, TypeAlias

from structlog.typing import FilteringBoundLogger

from b2bua.call.actions import (
    CALLER,
    Abandon,
    Arm,
    CallAction,
    CallContext,
    CallEnded,
    CallFinished,
    Disarm,
    MemberAnswered,
    MemberConfirming,
    MemberFailed,
    MemberRinging,
    Purpose,
    Respond,
    SendDirect,
    SendInLeg,
    Target,
)
from b2bua.call.actions import (
    TimerName as CallTimerName,
)
from b2bua.call.call import Call
from b2bua.call.hunting import HuntDesk, MemberEvent
from b2bua.call.records import Disposition
from b2bua.call.routing import (
    Destination,
    DialPlan,
    Reject,
    ToExtension,
    ToGroup,
    dialled_number,
)
from b2bua.call.session_timer import MIN_SE, TooSmall
from b2bua.call.settings import CallSettings, MediaSettings, NumberEntry
from b2bua.config import ListenAddress
from b2bua.counters import SwitchCounters
from b2bua.dialog import SessionState
from b2bua.dialog.routing import LocalAddress
from b2bua.events import (
    CloseConnection,
    ConnectionClosed,
    DatagramReceived,
    DeleteBinding,
    Input,
    MailboxCounts,
    Output,
    SaveBinding,
    SaveCallRecord,
    SendDatagram,
    SendStream,
    StateLoaded,
    Stopping,
    StreamReceived,
)
from b2bua.hunt.engine import HuntTimer
from b2bua.hunt.model import HuntGroup, external_number
from b2bua.ids import BRANCH_PREFIX, IdSource
from b2bua.registrar.auth import Authenticated, Ignored, Refused
from b2bua.registrar.location import Registration
from b2bua.registrar.qualify import LocalIdentity, Qualifier, QualifyDue
from b2bua.registrar.service import RegistrarService
from b2bua.registrar.settings import Extension, RegistrarSettings, SecuritySettings
from b2bua.sip.address import Peer, Transport
from b2bua.sip.errors import LocalProtocolError, RemoteProtocolError, SipError
from b2bua.sip.message import Request, Response, make_response
from b2bua.sip.parser import MessageParseError, ParserLimits, parse_message
from b2bua.sip.sdp import SdpError
from b2bua.sip.status import KNOWN_METHODS, StatusCode
from b2bua.sip.uri import SipUri, TelUri
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
from b2bua.transaction.keys import Side, TransactionKey
from b2bua.transaction.layer import TransactionLayer
from b2bua.transaction.timers import TimerName, TimerSettings
from b2bua.trunk.outbound import OutboundPlan, ToTrunk, forward_target, trunk_target
from b2bua.trunk.outbound import Refused as OutboundRefused
from b2bua.trunk.registration import (
    ArmTimer,
    DisarmTimer,
    RegistrationAction,
    RegistrationState,
    SendKeepAlive,
    SendRegister,
    StateChanged,
    Stopped,
)
from b2bua.trunk.service import TrunkService
from b2bua.trunk.settings import Trunk
from b2bua.voicemail.mwi import MessageCounts
from b2bua.voicemail.settings import Mailbox
from b2bua.voicemail.subscriptions import (
    ArmExpiry,
    DisarmExpiry,
    MwiAction,
    MwiSubscriptions,
    SendNotify,
    SubscriptionId,
)
from b2bua.voicemail.subscriptions import Respond as MwiRespond
from media.commands import (
    CloseSession,
    DigitPressed,
    Latched,
    MessageRecorded,
    PortUnavailable,
    RtpTimeout,
    SessionStats,
)
from media.ports import PortPool, PortsExhausted

#: Methods the switch offers.
ALLOWED_METHODS: Final = (
    "INVITE",
    "ACK",
    "CANCEL",
    "BYE",
    "OPTIONS",
    "REGISTER",
    "UPDATE",
    "INFO",
    "SUBSCRIBE",
)
#: Methods that only make sense inside a dialog: without a To tag they get 481.
DIALOG_ONLY_METHODS: Final = frozenset({"BYE", "UPDATE", "INFO", "PRACK"})
#: Requests an extension must authenticate for (407). Never REGISTER (401 instead),
#: OPTIONS (answered to anyone), ACK and CANCEL (section 22.1: they cannot be challenged).
CHALLENGED_METHODS: Final = KNOWN_METHODS - {"REGISTER", "OPTIONS", "ACK", "CANCEL"}
#: Option tags we support (RFC 3261 section 19.2): session timers (RFC 4028).
SUPPORTED_EXTENSIONS: Final[tuple[str, ...]] = ("timer",)
ACCEPTED_CONTENT: Final = "application/sdp"
#: Member events and wake-ups handled after one input before the switch gives up on them
#: (a hunt that keeps waking another is a bug; this keeps the switch serving).
MAX_SETTLE_STEPS: Final = 100_000
_SIP_SCHEMES: Final = frozenset({"sip", "sips", "tel"})
#: Seconds a caller refused while the switch drains is told to wait (RFC 3261 20.33).
DRAIN_RETRY_AFTER: Final = 30


@dataclass(frozen=True, slots=True)
class BindingExpiry:
    """The timer of one registration's expiry."""

    aor: str
    contact: str


@dataclass(frozen=True, slots=True)
class CallTimerKey:
    """A timer of one call (``leg`` -1... or a leg index, see :mod:`b2bua.call.call`)."""

    call: int
    leg: int
    name: CallTimerName


@dataclass(frozen=True, slots=True)
class MwiExpiry:
    """The expiry of one message-waiting subscription."""

    subscription: SubscriptionId


@dataclass(frozen=True, slots=True)
class TrunkTimer:
    """The one timer of a trunk's registration client (refresh, keep-alive, retry)."""

    trunk: str


TimerKey: TypeAlias = (
    tuple[TransactionKey, TimerName]
    | BindingExpiry
    | QualifyDue
    | CallTimerKey
    | MwiExpiry
    | TrunkTimer
)


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
    domain: str | None = None
    numbers: Mapping[str, NumberEntry] = field(default_factory=dict)
    calls: CallSettings = field(default_factory=CallSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    groups: Mapping[str, HuntGroup] = field(default_factory=dict)
    mailboxes: Mapping[str, Mailbox] = field(default_factory=dict)
    unsolicited_notify: bool = True  # the lamp's NOTIFY to registered phones, unasked
    trunks: Mapping[str, Trunk] = field(default_factory=dict)

    @property
    def sip_domain(self) -> str:
        return self.domain or self.host

    @property
    def media_host(self) -> str:
        return self.media.address or self.host

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
        self.counters = SwitchCounters()
        self.draining = False  # drain(): new INVITEs get 503, calls in progress go on
        local = LocalIdentity(
            settings.host,
            {address.transport.value: address.port for address in reversed(settings.listen)},
            settings.user_agent,
        )
        self._qualifier = Qualifier(settings.extensions, ids, local)
        # Carrier trunks: their registrations (jittered back-off from a generator seeded
        # by the secret: the core draws no randomness of its own) and inbound matching.
        self.trunks = TrunkService(settings.trunks, local, ids, random.Random(zlib.crc32(secret)))
        self.outbound = OutboundPlan(
            settings.trunks,
            settings.calls,
            settings.extensions,
            extension_dids=_extension_dids(settings.numbers),
            group_dids=_group_dids(settings.groups),
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
        # Calls.
        self._dial_plan = DialPlan(settings.extensions, settings.numbers, settings.groups)
        media = settings.media
        self.ports = PortPool(media.rtp_port_min, media.rtp_port_max)
        self._call_context = self._make_call_context(settings, wall_offset)
        self._next_call = 1
        self._calls: dict[int, Call] = {}
        self._call_dialogs: dict[tuple[str, str], tuple[Call, int]] = {}
        self._call_invites: dict[TransactionKey, Call] = {}
        self._call_transactions: dict[TransactionKey, tuple[Call, int, Purpose]] = {}
        self._keys_of_call: dict[int, set[TransactionKey]] = {}
        self._call_sessions: dict[str, Call] = {}
        self.calls_ended = 0
        # Hunting: the member book and each call's hunt; member events from calls wait
        # here until the input that caused them is done (ARCHITECTURE.md, "Hunt semantics").
        self.desk = HuntDesk(
            settings.groups,
            settings.extensions,
            self._devices,
            ring_timeout=settings.calls.ring_timeout,
            take_message=self._take_message,
        )
        self._member_events: deque[tuple[Call, MemberEvent]] = deque()
        # Voicemail: messages each mailbox holds (new, old), as the store says, and the
        # phones watching them (RFC 3842); NOTIFY transactions -> their subscription.
        self.message_counts: dict[str, tuple[int, int]] = {}
        self._mwi = MwiSubscriptions(ids, log)
        self._notifies: dict[TransactionKey, SubscriptionId | None] = {}

    @staticmethod
    def _make_call_context(settings: SwitchSettings, wall_offset: float) -> CallContext:
        host = settings.host
        locals_: dict[Transport, LocalAddress] = {}
        contacts: dict[Transport, str] = {}
        for address in reversed(settings.listen):
            locals_[address.transport] = LocalAddress(host, address.port, address.transport)
            bracketed = f"[{host}]" if ":" in host else host
            suffix = "" if address.transport is Transport.UDP else ";transport=tcp"
            contacts[address.transport] = f"sip:{bracketed}:{address.port}{suffix}"
        if not locals_:
            locals_[Transport.UDP] = LocalAddress(host, 5060)
            contacts[Transport.UDP] = f"sip:{host}:5060"
        return CallContext(
            locals=locals_,
            contacts=contacts,
            domain=settings.sip_domain,
            media_host=settings.media_host,
            user_agent=settings.user_agent,
            timers=settings.timers,
            ring_timeout=settings.calls.ring_timeout,
            latch_any=settings.media.latch_any,
            confirm_timeout=settings.calls.confirm_timeout,
            wall_offset=wall_offset,
        )

    # -- the boundary

    def handle(self, event: Input, now: float) -> list[Output]:
        out = self._handle(event, now)
        if self._member_events or self.desk.changed:
            out += self._settle(now)
        return out

    def _handle(self, event: Input, now: float) -> list[Output]:
        match event:
            case DatagramReceived(data=data, peer=peer):
                return self._on_bytes(data, peer, now, stream=False)
            case StreamReceived(data=data, peer=peer):
                return self._on_bytes(data, peer, now, stream=True)
            case ConnectionClosed(connection=connection):
                trunk = self.trunks.connection_closed(connection)
                client = None if trunk is None else self.trunks.clients.get(trunk)
                if trunk is None or client is None:
                    return []
                self._log.info("trunk_connection_lost", trunk=trunk)
                return self._trunk_actions(trunk, client.connection_lost(now), now)
            case StateLoaded(bindings=bindings):
                restored = self.registrar.restore(bindings, now + self.wall_offset)
                self._time_bindings(restored, [], now)
                for number in self.settings.extensions:
                    self._presence(number)
                out: list[Output] = []
                for name, client in self.trunks.clients.items():
                    out += self._trunk_actions(name, client.start(now), now)
                return out
            case Stopping():
                out = []
                for name, client in self.trunks.clients.items():
                    out += self._trunk_actions(name, client.stop(now), now)
                return out
            case RtpTimeout(session_id=session_id, idle_for=idle_for):
                call = self._call_sessions.get(session_id)
                if call is None:
                    return []
                return self._step(call, partial(call.on_rtp_timeout, idle_for, now), now)
            case PortUnavailable(session_id=session_id, port=port):
                self._log.warning("media_port_unavailable", port=port)
                if self.ports.is_allocated(port):
                    self.ports.reserve(port, now)
                call = self._call_sessions.get(session_id)
                if call is None:
                    return []
                return self._step(call, partial(call.abort, "media port unavailable", now), now)
            case MessageRecorded(session_id=session_id, reason=reason):
                call = self._call_sessions.get(session_id)
                if call is None:
                    return []
                return self._step(call, partial(call.message_recorded, reason, now), now)
            case DigitPressed(session_id=session_id, digit=digit):
                call = self._call_sessions.get(session_id)
                if call is None:
                    return []
                return self._step(call, partial(call.on_digit, digit, now), now)
            case MailboxCounts(mailbox=mailbox, new=new, old=old):
                return self._mailbox_changed(mailbox, (new, old), now)
            case Latched() | SessionStats():
                return []

    def fire_timers(self, now: float) -> list[Output]:
        out: list[Output] = []
        for key in self._timers.pop_due(now):
            if isinstance(key, BindingExpiry):
                expired = self.registrar.expire(key.aor, key.contact, now + self.wall_offset)
                if expired is not None:
                    self._timers.cancel(QualifyDue(key.aor, key.contact))
                    out.append(DeleteBinding(aor=key.aor, contact=expired.binding.contact))
                    self._presence(key.aor)
            elif isinstance(key, QualifyDue):
                out += self._qualify(key, now)
            elif isinstance(key, MwiExpiry):
                out += self._mwi_actions(self._mwi.expired(key.subscription, now), None, now)
            elif isinstance(key, TrunkTimer):
                client = self.trunks.clients[key.trunk]
                out += self._trunk_actions(key.trunk, client.on_timer(now), now)
            elif isinstance(key, CallTimerKey):
                call = self._calls.get(key.call)
                if call is None:
                    continue
                name = key.name
                if isinstance(name, HuntTimer):
                    out += self._step(call, partial(self.desk.on_timer, call, name, now), now)
                else:
                    out += self._step(call, partial(call.on_timer, key.leg, name, now), now)
            else:
                out += self._apply(self._layer.on_timer(key[0], key[1], now), now)
            # Each timer is an input of its own: a hunt's timer that rings a member must
            # be in the book before the next timer's hunt looks.
            if self._member_events or self.desk.changed:
                out += self._settle(now)
        return out

    def _settle(self, now: float) -> list[Output]:
        """Feed the member events of the last input to their hunts, then wake the hunts
        waiting for a member whose state changed (oldest call first), until nothing
        is left."""
        out: list[Output] = []
        events = self._member_events
        changed = self.desk.changed
        for _ in range(MAX_SETTLE_STEPS):
            if events:
                call, event = events.popleft()
                if call.ref in self._calls:
                    step = partial(self.desk.on_member_event, call, event, now)
                    out += self._step(call, step, now)
            elif changed:
                number = next(iter(changed))
                del changed[number]
                for call in self.desk.waiting(number):
                    out += self._step(call, partial(self.desk.wake, call, number, now), now)
            else:
                return out
        self._log.error("hunt_settle_limit", pending=len(events), changed=len(changed))
        events.clear()
        changed.clear()
        return out

    def _take_message(
        self, call: Call, number: str, group: str | None, now: float
    ) -> list[CallAction]:
        """A hunt overflowed to ``voicemail:<number>``: the call takes a message there (the
        greeting only when the mailbox is full)."""
        mailbox = self.settings.mailboxes.get(number)
        if mailbox is None:  # the config check refuses this; defence in depth
            return call.give_up(
                StatusCode.TEMPORARILY_UNAVAILABLE,
                f"voicemail {number}: no such mailbox",
                Disposition.FAILED,
                now,
            )
        new, old = self.message_counts.get(number, (0, 0))
        return call.take_message(
            mailbox,
            group=group,
            record=new + old < mailbox.max_messages,
            wall_now=now + self.wall_offset,
            now=now,
        )

    # -- the message-waiting lamp (RFC 3842)

    def _on_subscribe(
        self, request: Request, peer: Peer, key: TransactionKey, username: str, now: float
    ) -> list[Output]:
        """An extension watches a mailbox: its own (the Request-URI's user), nobody
        else's (403); a number without a mailbox gets 404."""
        mailbox = _dialled(request) or ""
        if mailbox not in self.settings.mailboxes:
            return self._reply(request, key, StatusCode.NOT_FOUND, now, reason="No Such Mailbox")
        if mailbox != username:
            return self._reply(request, key, StatusCode.FORBIDDEN, now, reason="Not Your Mailbox")
        actions = self._mwi.subscribe(
            request,
            mailbox=mailbox,
            counts=self._counts(mailbox),
            peer=peer,
            local=self._call_context.local(peer),
            contact=self._call_context.contact(peer),
            now=now,
        )
        return self._mwi_actions(actions, key, now)

    def _counts(self, mailbox: str) -> MessageCounts:
        new, old = self.message_counts.get(mailbox, (0, 0))
        return MessageCounts(new, old)

    def _mailbox_changed(self, mailbox: str, counts: tuple[int, int], now: float) -> list[Output]:
        if self.message_counts.get(mailbox) == counts:
            return []
        known = mailbox in self.message_counts
        self.message_counts[mailbox] = counts
        out = self._mwi_actions(
            self._mwi.counts_changed(mailbox, self._counts(mailbox), now), None, now
        )
        if known or counts[0] > 0:  # at start, only a lit lamp is news
            out += self._unsolicited(mailbox, self.registrar.location.registrations(mailbox), now)
        return out

    def _unsolicited(
        self, mailbox: str, registrations: list[Registration], now: float
    ) -> list[Output]:
        if not self.settings.unsolicited_notify or mailbox not in self.settings.mailboxes:
            return []
        out: list[Output] = []
        for reg in registrations:
            actions = self._mwi.unsolicited(
                mailbox,
                self._counts(mailbox),
                contact_uri=reg.binding.contact,
                peer=reg.peer,
                local=self._call_context.local(reg.peer),
                contact=self._call_context.contact(reg.peer),
                now=now,
            )
            out += self._mwi_actions(actions, None, now)
        return out

    def _notified(self, key: TransactionKey, status: int | None, now: float) -> list[Output]:
        """A NOTIFY's transaction ended (``status`` None: no response)."""
        if key not in self._notifies:
            return []
        subscription = self._notifies.pop(key)
        if subscription is None:
            return []
        return self._mwi_actions(self._mwi.notify_outcome(subscription, status, now), None, now)

    def _mwi_actions(
        self, actions: list[MwiAction], key: TransactionKey | None, now: float
    ) -> list[Output]:
        out: list[Output] = []
        for action in actions:
            match action:
                case MwiRespond(response=response):
                    if key is not None:
                        response.headers.add("Server", self.settings.user_agent)
                        out += self._respond(key, response, now)
                case SendNotify(request=request, peer=peer, subscription=subscription):
                    sent, events = self._layer.send_request(request, peer, now)
                    self._notifies[sent] = subscription
                    out += self._apply(events, now)
                case ArmExpiry(subscription=subscription, at=at):
                    self._timers.schedule(MwiExpiry(subscription), at)
                case DisarmExpiry(subscription=subscription):
                    self._timers.cancel(MwiExpiry(subscription))
        return out

    def _devices(self, number: str, call: Call | None = None) -> list[Target]:
        """Every device registered for extension ``number`` that answers (qualify); for
        an external member (``external:<number>``), the leg through its trunk."""
        external = external_number(number)
        if external is not None:
            return [] if call is None else self._forward_targets(number, external, call)
        return [
            Target(number, reg.binding.contact, reg.peer)
            for reg in self.registrar.location.registrations(number)
            if reg.reachable
        ]

    def _forward_targets(self, member: str, number: str, call: Call) -> list[Target]:
        """``call`` forwarded out to ``number`` (docs/trunks.md, "Forwarding out"): the
        caller ID is the original caller's where the trunk allows it (an extension's is
        its own, by the trunk's policy), and Diversion names the public number the call
        was for."""
        route = self.outbound.forward(number)
        if route is None:
            call.log.warning("forward_without_route", number=number)
            return []
        trunk = route.trunk
        caller = call.caller
        own = self.settings.extensions.get(caller)
        if own is not None:
            caller = self.outbound.caller_id(trunk, caller)
        callee = call.callee
        company = callee if self._dial_plan.public(callee) is not None else ""
        company = company or self.outbound.caller_id(trunk, "") or callee
        privacy = (call.invite.headers.get("privacy") or "").lower()
        hide = (own is not None and own.hide_number) or "id" in privacy or caller == "anonymous"
        name = (own.name if own is not None else None) or call.caller_name
        hunted = None if call.hunt is None else call.hunt.group.member(member)
        confirm = hunted is not None and hunted.confirm
        call.log.info("call_forwarded", trunk=trunk.name, number=route.number, member=member)
        return [
            forward_target(
                route, member=member, caller=caller, caller_name=name, company=company,
                hide=hide, reason=call.diversion_reason, confirm=confirm,
            )
        ]  # fmt: skip

    def _presence(self, number: str) -> None:
        """The registrar changed ``number``'s bindings or their reachability: tell the book."""
        registrations = self.registrar.location.registrations(number)
        self.desk.set_presence(
            number,
            registered=bool(registrations),
            reachable=any(reg.reachable for reg in registrations),
        )

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
        if stream:
            self.trunks.heard_on(peer)
        if isinstance(message, Response):
            return self._apply(self._layer.on_response(message, peer, now), now)
        self._stamp_via(message, peer)
        return self._apply(
            self._layer.on_request(message, self._reply_peer(message, peer), now), now
        )

    def _on_parse_error(self, exc: MessageParseError, peer: Peer, *, stream: bool) -> list[Output]:
        self.counters.parse_errors += 1
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
        if status is None and request.method != "REGISTER":
            to_tag = request.to.tag
            if to_tag is not None:
                # Inside a dialog: the dialog is the proof of identity, so no challenge;
                # a dialog we do not know gets 481 (RFC 3261 section 12.2.2).
                if request.method == "SUBSCRIBE" and self._mwi.find(request.call_id, to_tag):
                    actions = self._mwi.resubscribe(request, now, peer=peer)
                    return self._mwi_actions(actions, key, now)
                found = self._call_dialogs.get((request.call_id, to_tag))
                if found is not None:
                    call, leg = found
                    return self._step(call, partial(call.on_request, leg, request, key, now), now)
                if request.method != "OPTIONS":
                    status = StatusCode.CALL_TRANSACTION_DOES_NOT_EXIST
            elif request.method == "INVITE":
                if self.draining:  # SIGTERM: no new calls (docs/operations.md)
                    self.counters.refused_draining += 1
                    retry = [("Retry-After", str(DRAIN_RETRY_AFTER))]
                    return self._reply(
                        request, key, StatusCode.SERVICE_UNAVAILABLE, now, headers=retry
                    )
                return self._on_invite(request, peer, key, now)
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
                case Authenticated(username=username):
                    if status is None and request.method == "SUBSCRIBE":
                        return self._on_subscribe(request, peer, key, username, now)
        if status is None:
            if request.method == "OPTIONS":
                return self._respond(key, self._options_response(request), now)
            if request.method == "REGISTER":
                return self._on_register(request, peer, key, now)
            if request.method in DIALOG_ONLY_METHODS:
                status = StatusCode.CALL_TRANSACTION_DOES_NOT_EXIST
            else:
                # CANCEL comes as CancelReceived; what is left is not offered.
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

    # -- calls

    def _on_invite(
        self, request: Request, peer: Peer, key: TransactionKey, now: float
    ) -> list[Output]:
        """A new call: route the dialled number (public numbers need no authentication,
        everything else an authenticated extension), then ring the destination."""
        caller_extension: str | None = None
        destination: Destination | ToTrunk | None
        trunk, dialled, destination = self._inbound_route(request, peer)
        if destination is None:
            match self.registrar.authenticate(request, peer, now):
                case Ignored():
                    return self._apply(self._layer.terminate(key, now), now)
                case Refused(status=status, reason=reason, headers=headers):
                    return self._reply(request, key, status, now, reason=reason, headers=headers)
                case Authenticated(username=username):
                    caller_extension = username
            destination = self._dial_plan.route(dialled)
            if destination == Reject(StatusCode.NOT_FOUND):
                out = self._route_out(request, peer, dialled, username)
                if out is not None:
                    destination = out
                    trunk = out.trunk if isinstance(out, ToTrunk) else None
        if isinstance(destination, Reject):
            return self._reply(request, key, destination.status, now, reason=destination.reason)
        if len(self._calls) >= self.settings.calls.max_calls:
            self._log.warning("call_limit_reached", calls=len(self._calls))
            return self._reply(
                request, key, StatusCode.SERVICE_UNAVAILABLE, now, headers=[("Retry-After", "5")]
            )
        outbound = destination if isinstance(destination, ToTrunk) else None
        if trunk is not None and self._trunk_full(trunk, outbound):
            return self._reply(
                request, key, StatusCode.SERVICE_UNAVAILABLE, now, headers=[("Retry-After", "5")]
            )
        group = destination.name if isinstance(destination, ToGroup) else None
        number = destination.number if isinstance(destination, ToExtension) else None
        if number is not None and self.desk.is_busy(number):
            return self._reply(request, key, StatusCode.BUSY_HERE, now)
        ref = self._next_call
        self._next_call += 1
        caller = caller_extension or _user_of(request)
        callee = dialled or number or ""
        made = self._new_call(request, key, peer, now, ref=ref, caller=caller, callee=callee)
        if not isinstance(made, Call):
            return made
        call = made
        self._calls[ref] = call
        if trunk is not None:
            self.trunks.admit(trunk, ref)
        for call_id, tag, leg in call.dialog_ids():
            self._call_dialogs[(call_id, tag)] = (call, leg)
        self._call_invites[key] = call
        self._call_sessions[call.session_id] = call
        self.desk.admit(call, caller_extension)

        def begin() -> list[CallAction]:
            if group is not None:
                # The seed of a random hunt, from the Call-ID: logged, and replayable
                # with b2bua simulate --seed.
                seed = zlib.crc32(request.call_id.encode())
                return self.desk.start(call, group, seed, now)
            if outbound is not None:
                extension = self.settings.extensions.get(caller_extension or "")
                name = (extension.name if extension else None) or call.caller_name
                return call.start([trunk_target(outbound, name)], now)
            assert number is not None
            targets = self._devices(number)
            if targets:
                self.desk.ringing(call, number)
            return call.start(targets, now)

        return self._step(call, begin, now)

    def _new_call(
        self,
        request: Request,
        key: TransactionKey,
        peer: Peer,
        now: float,
        *,
        ref: int,
        caller: str,
        callee: str,
    ) -> Call | list[Output]:
        """The call for a new INVITE, with its two media ports, or the refusal of an
        INVITE no call can be made of (no port left, a bad offer or header)."""
        try:
            ports = (self.ports.allocate(now), self.ports.allocate(now))
        except PortsExhausted:
            self._log.warning("media_ports_exhausted")
            return self._reply(request, key, StatusCode.SERVICE_UNAVAILABLE, now)
        try:
            return Call(
                ref=ref,
                invite=request,
                invite_key=key,
                peer=peer,
                caller=caller,
                callee=callee,
                ports=ports,
                context=self._call_context,
                ids=self._ids,
                log=self._log,
                now=now,
            )
        except TooSmall:
            # RFC 4028 section 8.1: a Session-Expires below our Min-SE.
            self._release_ports(ports)
            return self._reply(
                request, key, 422, now, reason="Session Interval Too Small",
                headers=[("Min-SE", str(MIN_SE))],
            )  # fmt: skip
        except SdpError as error:
            self._release_ports(ports)
            reason = f"Bad SDP: {error}"[:100]
            return self._reply(request, key, StatusCode.NOT_ACCEPTABLE_HERE, now, reason=reason)
        except RemoteProtocolError as error:  # DialogError (no Contact), a bad header
            self._release_ports(ports)
            status = error.status_hint or StatusCode.BAD_REQUEST
            return self._reply(request, key, status, now)

    def _route_out(
        self, request: Request, peer: Peer, dialled: str | None, extension: str
    ) -> ToTrunk | Reject | None:
        """An authenticated extension's call to a number of no internal destination:
        through a trunk, refused (blocked, not permitted; logged with who and from where),
        or ``None`` (no trunk takes it: 404)."""
        match self.outbound.route(dialled, extension):
            case OutboundRefused(status=status, reason=reason):
                self._log.warning(
                    "outbound_refused", reason=reason, extension=extension,
                    dialled=dialled, source=peer.host, call_id=request.call_id,
                )  # fmt: skip
                return Reject(status, reason)
            case ToTrunk() as out:
                self._log.info(
                    "outbound_call", trunk=out.trunk.name, extension=extension,
                    dialled=dialled, number=out.number, emergency=out.emergency,
                    call_id=request.call_id,
                )  # fmt: skip
                return out
            case None:
                return None

    def _trunk_full(self, trunk: Trunk, outbound: ToTrunk | None) -> bool:
        """Whether ``trunk`` (or all trunks together) carries its maximum of calls; an
        emergency call is never refused for a cap."""
        if outbound is not None and outbound.emergency:
            return False
        cap = self.settings.calls.max_trunk_calls
        full = not self.trunks.has_room(trunk) or (
            cap is not None and self.trunks.total_calls >= cap
        )
        if full:
            self._log.warning("trunk_call_limit_reached", trunk=trunk.name)
        return full

    def _inbound_route(
        self, request: Request, peer: Peer
    ) -> tuple[Trunk | None, str | None, Destination | None]:
        """(trunk, dialled number, destination) of a new INVITE before any authentication:
        a trunk's DID goes through the number table (docs/trunks.md); anyone else reaches
        public numbers as ``untrusted_calls`` allows, or ``None`` (authenticate first)."""
        trunk = self.trunks.match(request, peer.host)
        if trunk is not None:
            did = self.trunks.did(trunk, request)
            self._log.info("trunk_call", trunk=trunk.name, did=did, call_id=request.call_id)
            return trunk, did, self._dial_plan.from_trunk(did)
        dialled = _dialled(request)
        if self.settings.calls.untrusted_calls == "refuse":
            return None, dialled, None  # only extensions (authenticated) and trunks may call
        return None, dialled, self._dial_plan.public(dialled)

    def _reply(
        self,
        request: Request,
        key: TransactionKey,
        status: int,
        now: float,
        *,
        reason: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> list[Output]:
        response = self._response(request, status, reason)
        for name, value in headers or ():
            response.headers.add(name, value)
        return self._respond(key, response, now)

    def _step(self, call: Call, step: Callable[[], list[CallAction]], now: float) -> list[Output]:
        """Feed one input to ``call`` and carry out its actions. A bug in the call's code
        must not strand it: the call is dropped, its media session closed, its ports
        freed and its record written (the phones get 481 for its dialogs from then on)."""
        try:
            return self._call_actions(call, step(), now)
        except Exception:
            self._log.exception("call_failed", call=call.ref, call_id=call.invite.call_id)
            return self._drop_call(call, now)

    def _drop_call(self, call: Call, now: float) -> list[Output]:
        out: list[Output] = [CloseSession(session_id=call.session_id)]
        key = call.a.invite_key
        if key is not None and call.a_session.state in (SessionState.INITIAL, SessionState.EARLY):
            # The caller is still waiting for its INVITE's answer: 500, not silence.
            response = self._response(call.invite, StatusCode.SERVER_INTERNAL_ERROR)
            response.headers.add("Retry-After", "5")
            with contextlib.suppress(LocalProtocolError):
                out += self._respond(key, response, now)
        if not call.is_ended:
            out += self._call_actions(call, [CallEnded(call.failed(now))], now)
        self._forget_call(call, now)
        return out

    def _call_actions(self, call: Call, actions: list[CallAction], now: float) -> list[Output]:
        out: list[Output] = []
        for action in actions:
            match action:
                case Respond(key=key, response=response, peer=peer):
                    try:
                        out += self._respond(key, response, now)
                    except LocalProtocolError:
                        if response.cseq.method == "INVITE" and 200 <= response.status < 300:
                            # The transaction is gone (Timer L): the TU resends its 2xx.
                            out.append(self._send(response.to_bytes(), peer))
                case SendInLeg(leg=leg, request=request, peer=peer, purpose=purpose):
                    if purpose is Purpose.INVITE:
                        # A new callee leg: in-dialog requests and stray 2xx find the call
                        # by its Call-ID and our tag.
                        self._call_dialogs[(request.call_id, request.from_.tag or "")] = (
                            call,
                            leg,
                        )
                    key, events = self._layer.send_request(request, peer, now)
                    self._call_transactions[key] = (call, leg, purpose)
                    self._keys_of_call.setdefault(call.ref, set()).add(key)
                    out += self._apply(events, now)
                case SendDirect(request=request, peer=peer):
                    out.append(self._send(request.to_bytes(), peer))
                case Arm(leg=leg, name=name, at=at):
                    self._timers.schedule(CallTimerKey(call.ref, leg, name), at)
                case Disarm(leg=leg, name=name):
                    self._timers.cancel(CallTimerKey(call.ref, leg, name))
                case Abandon(key=key):
                    out += self._apply(self._layer.terminate(key, now), now)
                case CallEnded(record=record):
                    self.calls_ended += 1
                    last, hunts = self.desk.ended(call, now)
                    out += self._call_actions(call, last, now)
                    if hunts:
                        call.log.info("hunt_trace", hunts=hunts)
                        record = replace(record, hunts=tuple(hunts))
                    out.append(SaveCallRecord(record=record))
                case CallFinished():
                    self._forget_call(call, now)
                case MemberRinging() | MemberConfirming() | MemberAnswered() | MemberFailed():
                    self._member_events.append((call, action))
                case _:
                    out.append(action)  # a media command
        return out

    def _forget_call(self, call: Call, now: float) -> None:
        self.desk.forget(call, now)
        self.trunks.release(call.ref)
        for name in HuntTimer:
            self._timers.cancel(CallTimerKey(call.ref, CALLER, name))
        self._calls.pop(call.ref, None)
        self._call_sessions.pop(call.session_id, None)
        if self._call_invites.get(call.a.invite_key or _NO_KEY) is call:
            del self._call_invites[call.a.invite_key or _NO_KEY]
        for call_id, tag, _ in call.dialog_ids():
            if self._call_dialogs.get((call_id, tag), (None, 0))[0] is call:
                del self._call_dialogs[(call_id, tag)]
        for key in self._keys_of_call.pop(call.ref, ()):
            self._call_transactions.pop(key, None)
        self._release_ports(call.ports)

    def _release_ports(self, ports: tuple[int, ...]) -> None:
        for port in ports:
            if self.ports.is_allocated(port):
                self.ports.release(port)

    def _on_call_response(
        self, response: Response, key: TransactionKey, now: float
    ) -> list[Output]:
        found = self._call_transactions.get(key)
        if found is None:
            return []
        call, leg, purpose = found
        return self._step(call, partial(call.on_response, leg, purpose, response, key, now), now)

    def _on_call_failure(self, key: TransactionKey, status: int, now: float) -> list[Output]:
        found = self._call_transactions.get(key)
        if found is None:
            return []
        call, leg, purpose = found
        return self._step(
            call, partial(call.on_transaction_failed, leg, purpose, key, status, now), now
        )

    def _on_ack(self, ack: Request, now: float) -> list[Output]:
        tag = ack.to.tag
        found = None if tag is None else self._call_dialogs.get((ack.call_id, tag))
        if found is None:
            return []
        call, leg = found
        return self._step(call, partial(call.on_ack, leg, ack, now), now)

    def _on_stray_response(self, response: Response, now: float) -> list[Output]:
        """A 2xx to one of our INVITEs whose transaction is gone (RFC 6026 section 7.2):
        the leg's session ACKs it again, or ACKs and BYEs a fork it does not want."""
        if response.cseq.method != "INVITE" or not 200 <= response.status < 300:
            return []
        tag = response.from_.tag
        found = None if tag is None else self._call_dialogs.get((response.call_id, tag))
        if found is None:
            return []
        call, leg = found
        if leg == 0:
            return []
        key = TransactionKey(Side.CLIENT, "INVITE", response.top_via.branch or "")
        return self._step(
            call, partial(call.on_response, leg, Purpose.INVITE, response, key, now), now
        )

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
        for aor in {reg.binding.aor for reg in (*reply.saved, *reply.removed)}:
            self._presence(aor)
        out += [SaveBinding(binding=reg.binding) for reg in reply.saved]
        for reg in reply.saved:  # a phone coming up learns of waiting messages at once
            if self.message_counts.get(reg.binding.aor, (0, 0))[0] > 0:
                out += self._unsolicited(reg.binding.aor, [reg], now)
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
            self._presence(due.aor)
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
        active = [call for call in self._calls.values() if not call.is_ended]
        state["calls"] = {
            "active": len(active),
            "finishing": len(self._calls) - len(active),
            "ended": self.calls_ended,
            "list": [call.snapshot(now, self.wall_offset) for call in active],
        }
        state["groups"] = self.desk.snapshot()
        state["voicemail"] = {
            "messages": {box: {"new": n, "old": o} for box, (n, o) in self.message_counts.items()},
            "subscriptions": self._mwi.snapshot(now),
        }
        state["trunks"] = self.trunks.snapshot(now, self.wall_offset)
        state["draining"] = self.draining
        state["media_ports"] = {
            "allocated": self.ports.in_use,
            "quarantined": self.ports.quarantined,
            "capacity": self.ports.capacity,
        }
        return state

    def _options_response(self, request: Request) -> Response:
        response = self._response(request, StatusCode.OK)
        response.headers.add("Allow", ", ".join(ALLOWED_METHODS))
        response.headers.add("Accept", ACCEPTED_CONTENT)
        response.headers.add("Accept-Encoding", "identity")
        response.headers.add("Accept-Language", "en")
        response.headers.add("Supported", ", ".join(SUPPORTED_EXTENSIONS))
        response.headers.add("Allow-Events", "message-summary")
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
                    call = None if invite_key is None else self._call_invites.get(invite_key)
                    if call is not None:
                        out += self._step(call, partial(call.on_cancel, now), now)
                case TransactionTerminated(key=key):
                    self._forget(key)
                    self.trunks.registering.pop(key, None)
                    owner = self._call_transactions.pop(key, None)
                    if owner is not None:
                        self._keys_of_call.get(owner[0].ref, set()).discard(key)
                    self._call_invites.pop(key, None)
                    self._qualified(key, False, now)  # ended without any response
                case ResponseReceived(response=response, key=key):
                    out += self._on_response_received(response, key, now)
                case TransactionTimedOut(key=key):
                    out += self._registration_failed(key, StatusCode.REQUEST_TIMEOUT, now)
                    out += self._notified(key, None, now)
                    out += self._on_call_failure(key, StatusCode.REQUEST_TIMEOUT, now)
                    self._qualified(key, False, now)
                case TransactionTransportFailed(key=key):
                    out += self._registration_failed(key, StatusCode.SERVICE_UNAVAILABLE, now)
                    out += self._notified(key, None, now)
                    out += self._on_call_failure(key, StatusCode.SERVICE_UNAVAILABLE, now)
                    self._qualified(key, False, now)
                case AckReceived(request=ack):
                    out += self._on_ack(ack, now)
                case StrayResponse(response=response):
                    out += self._on_stray_response(response, now)
        return out

    # -- operations: drain and reload (docs/operations.md)

    def drain(self) -> None:
        """Stop taking calls: from now on a new INVITE gets 503 with Retry-After."""
        self.draining = True

    def end_calls(self, reason: str, now: float) -> list[Output]:
        """End every call in progress from the switch's side: BYE to both legs of an
        answered call, 503 to an unanswered caller and CANCEL to its ringing members."""
        out: list[Output] = []
        for call in [call for call in self._calls.values() if not call.is_ended]:
            out += self._step(call, partial(call.abort, reason, now), now)
        return out

    @property
    def call_count(self) -> int:
        """Calls the switch still holds (ringing, answered or finishing)."""
        return len(self._calls)

    def reload(self, settings: SwitchSettings, now: float = 0.0) -> list[Output]:
        """Take the extensions, groups, numbers, mailboxes and call settings of
        ``settings``. Calls in progress keep what they started with (each hunt holds its
        own group, each call its context); new calls and new registrations follow the new
        config. An extension that is gone loses its bindings (returned: DeleteBinding)
        and can no longer authenticate; a changed password is the only one accepted.
        Everything else in ``settings`` is ignored: the shell says which sections need a
        restart (b2bua/runtime/reload.py)."""
        self.settings = replace(
            self.settings,
            extensions=settings.extensions,
            mailboxes=settings.mailboxes,
            groups=settings.groups,
            numbers=settings.numbers,
            calls=settings.calls,
        )
        current = self.settings
        removed = self.registrar.set_extensions(current.extensions)
        self._qualifier.set_extensions(current.extensions)
        for number, extension in current.extensions.items():
            before = self.desk.book.state(number)
            self.desk.book.add(number, max_calls=extension.max_calls, dnd=extension.dnd)
            if self.desk.book.state(number) != before:
                self.desk.changed[number] = None
        self._time_bindings([], removed, now)
        for aor in dict.fromkeys(reg.binding.aor for reg in removed):
            self._presence(aor)
        self._dial_plan = DialPlan(current.extensions, current.numbers, current.groups)
        self.outbound = OutboundPlan(
            current.trunks,
            current.calls,
            current.extensions,
            extension_dids=_extension_dids(current.numbers),
            group_dids=_group_dids(current.groups),
        )
        self.desk.set_groups(current.groups, ring_timeout=current.calls.ring_timeout)
        self._call_context = replace(
            self._call_context,
            ring_timeout=current.calls.ring_timeout,
            confirm_timeout=current.calls.confirm_timeout,
        )
        out: list[Output] = [
            DeleteBinding(aor=reg.binding.aor, contact=reg.binding.contact) for reg in removed
        ]
        return out + self._settle(now)

    # -- carrier trunks

    @property
    def trunks_stopped(self) -> bool:
        """Every trunk's un-REGISTER has ended (after :class:`Stopping`)."""
        return all(
            client.state is RegistrationState.STOPPED for client in self.trunks.clients.values()
        )

    def _trunk_actions(
        self, name: str, actions: list[RegistrationAction], now: float
    ) -> list[Output]:
        out: list[Output] = []
        trunk = self.trunks.trunks[name]
        for action in actions:
            match action:
                case SendRegister(request=request):
                    key, events = self._layer.send_request(request, trunk.peer, now)
                    self.trunks.registering[key] = (name, request.cseq.number)
                    out += self._apply(events, now)
                case ArmTimer(at=at):
                    self._timers.schedule(TrunkTimer(name), at)
                case DisarmTimer():
                    self._timers.cancel(TrunkTimer(name))
                case SendKeepAlive(data=data):
                    out.append(self._send(data, trunk.peer))
                case StateChanged(state=state, status=status, reason=reason, detail=detail):
                    self._log.info(
                        "trunk_registration",
                        trunk=name,
                        state=state.value,
                        status=status,
                        reason=reason,
                        detail=detail,
                    )
                case Stopped():
                    self._timers.cancel(TrunkTimer(name))
        return out

    def _registration_failed(self, key: TransactionKey, status: int, now: float) -> list[Output]:
        registering = self.trunks.registering.pop(key, None)
        if registering is None:
            return []
        name, cseq = registering
        client = self.trunks.clients[name]
        return self._trunk_actions(name, client.on_failure(status, now, cseq=cseq), now)

    def _on_response_received(
        self, response: Response, key: TransactionKey, now: float
    ) -> list[Output]:
        """A response to one of our requests: a call's, a trunk's REGISTER, a NOTIFY or a
        qualify ping."""
        registering = self.trunks.registering.get(key)
        if registering is not None:
            if response.status < 200:
                return []
            name = registering[0]
            actions = self.trunks.clients[name].on_response(response, now)
            return self._trunk_actions(name, actions, now)
        if key in self._call_transactions:
            return self._on_call_response(response, key, now)
        if key in self._notifies:
            return self._notified(key, response.status, now) if response.status >= 200 else []
        if response.status >= 200:
            self._qualified(key, True, now)
        return []

    def _forget(self, key: TransactionKey) -> None:
        identity = self._progress_by_key.pop(key, None)
        if identity is not None:
            self._in_progress.pop(identity, None)

    def _send(self, data: bytes, peer: Peer) -> Output:
        if peer.transport is Transport.UDP:
            return SendDatagram(data=data, peer=peer)
        return SendStream(data=data, peer=peer)


_NO_KEY: Final = TransactionKey(Side.SERVER, "", "")


def _extension_dids(numbers: Mapping[str, NumberEntry]) -> dict[str, str]:
    """Each extension's own DID: the first public number of the table that reaches it,
    else the first one."""
    out: dict[str, str] = {}
    for public in (True, False):
        for number, entry in numbers.items():
            if entry.public is public:
                out.setdefault(entry.extension, number)
    return out


def _group_dids(groups: Mapping[str, HuntGroup]) -> dict[str, str]:
    """Each member's group DID: the first public number of the first group (in the
    config's order) that has one and counts it as a member."""
    out: dict[str, str] = {}
    for group in groups.values():
        if group.public_numbers:
            for member in group.members:
                out.setdefault(member.number, group.public_numbers[0])
    return out


def _dialled(request: Request) -> str | None:
    """The number a request dials (its Request-URI's)."""
    try:
        return dialled_number(request.request_uri)
    except SipError:
        return None


def _user_of(request: Request) -> str:
    """The caller's number as its From says it (an unauthenticated caller: a trunk)."""
    try:
        uri = request.from_.uri
    except SipError:
        return "anonymous"
    if isinstance(uri, SipUri) and uri.user:
        return uri.user
    if isinstance(uri, TelUri):
        return uri.number
    return "anonymous"
