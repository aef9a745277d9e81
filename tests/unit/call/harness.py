"""A virtual-clock harness for calls through the pure :class:`~b2bua.switch.Switch`.

No sockets and no event loop: :class:`Net` holds one switch and a virtual clock; every
output of the switch is recorded with the virtual time it was emitted (:attr:`Net.trace`,
:attr:`Net.media`, :attr:`Net.records`) and every datagram is parsed and queued for the
:class:`Phone` it was addressed to. Phones are scripted by the test, one message at a
time: they register with digest through ``switch.handle`` (the real path), dial (answering
the 407 with Proxy-Authorization), and answer what the switch sends them.

Time only moves when the test says so: :meth:`Net.run_until` fires the switch's timers in
deadline order (``next_deadline`` / ``fire_timers``, as the shell's driver does), and
every message a phone sends is delivered at :attr:`Net.now`.

A phone's inbox behaves like a UA's transaction layer: a datagram that repeats one the
phone already received byte for byte (a retransmission) and 100 Trying are kept out of
the inbox; both stay in :attr:`Net.trace`, which tests query with :meth:`Net.times`.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Final, Literal

import structlog

from b2bua.call.records import CallRecord
from b2bua.call.settings import CallSettings, MediaSettings, NumberEntry
from b2bua.config import ListenAddress
from b2bua.events import (
    DatagramReceived,
    DeleteBinding,
    Input,
    Output,
    SaveBinding,
    SaveCallRecord,
    SendDatagram,
)
from b2bua.hunt.model import HuntGroup
from b2bua.ids import SeededIds
from b2bua.registrar.settings import Extension
from b2bua.sip.address import Peer, Transport
from b2bua.sip.digest import answer_challenge, parse_challenge
from b2bua.sip.message import Request, Response, make_response
from b2bua.sip.parser import parse_message
from b2bua.switch import Switch, SwitchSettings
from b2bua.transaction.timers import TimerSettings
from b2bua.trunk.settings import Trunk
from b2bua.voicemail.settings import Mailbox
from media.commands import MediaCommand

REALM: Final = "pbx.test"
SWITCH_HOST: Final = "203.0.113.1"
SWITCH_PORT: Final = 5060
MEDIA_HOST: Final = "203.0.113.2"
RTP_PORT_MIN: Final = 30000
RTP_PORT_MAX: Final = 30019  # ten RTP/RTCP pairs: five calls
PUBLIC_NUMBER: Final = "+15550100"  # routes to 0102, callable by anyone
PRIVATE_NUMBER: Final = "7000"  # routes to 0103, extensions only
PASSWORDS: Final = {"0101": "secret-0101", "0102": "secret-0102", "0103": "secret-0103"}
T1: Final = 0.5
WALL: Final = 1_800_000_000.0  # wall clock = virtual now + WALL

Message = Request | Response


def label_of(message: Message) -> str:
    """``INVITE`` for a request, ``180 INVITE`` for a response (status and CSeq method)."""
    if isinstance(message, Request):
        return message.method
    return f"{message.status} {message.cseq.method}"


def sdp(host: str, port: int, *, direction: str = "sendrecv", version: int = 1) -> bytes:
    """A phone's audio offer or answer: PCMU and telephone-event."""
    return (
        "v=0\r\n"
        f"o=phone 4711 {version} IN IP4 {host}\r\n"
        "s=-\r\n"
        f"c=IN IP4 {host}\r\n"
        "t=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        f"a={direction}\r\n"
    ).encode()


def connection_of(body: bytes) -> tuple[str, int, str]:
    """(c= address, first m= port, direction attribute) of an SDP body, read by hand so
    the harness does not trust the code under test to parse what it wrote."""
    host, port, direction = "", -1, "sendrecv"
    for line in body.decode().split("\r\n"):
        if line.startswith("c=IN IP4 "):
            host = line.removeprefix("c=IN IP4 ")
        elif line.startswith("m=audio ") and port < 0:
            port = int(line.split()[1])
        elif line in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"):
            direction = line[2:]
    return host, port, direction


@dataclass(frozen=True, slots=True)
class Sent:
    """One datagram the switch emitted, at virtual time ``at``."""

    at: float
    peer: Peer
    data: bytes
    message: Message

    @property
    def label(self) -> str:
        return label_of(self.message)

    def request(self) -> Request:
        assert isinstance(self.message, Request), self.message
        return self.message

    def response(self) -> Response:
        assert isinstance(self.message, Response), self.message
        return self.message


def default_extensions() -> dict[str, Extension]:
    return {
        number: Extension(name=f"Ext {number}", password=pw) for number, pw in PASSWORDS.items()
    }


class Net:
    """The switch, its virtual clock and everything it emitted."""

    def __init__(
        self,
        *,
        extensions: dict[str, Extension] | None = None,
        ring_timeout: float = 60.0,
        timers: TimerSettings | None = None,
        seed: int = 7,
        groups: dict[str, HuntGroup] | None = None,
        rtp_ports: tuple[int, int] = (RTP_PORT_MIN, RTP_PORT_MAX),
        mailboxes: dict[str, Mailbox] | None = None,
        unsolicited_notify: bool = True,
        trunks: dict[str, Trunk] | None = None,
        untrusted_calls: Literal["public", "refuse"] = "public",
        numbers: dict[str, NumberEntry] | None = None,
        blocked_prefixes: list[str] | None = None,
        max_trunk_calls: int | None = None,
    ) -> None:
        settings = SwitchSettings(
            listen=(ListenAddress(Transport.UDP, SWITCH_HOST, SWITCH_PORT),),
            realm=REALM,
            domain=REALM,
            extensions=extensions if extensions is not None else default_extensions(),
            numbers=numbers
            if numbers is not None
            else {
                PUBLIC_NUMBER: NumberEntry(destination="extension:0102", public=True),
                PRIVATE_NUMBER: NumberEntry(destination="extension:0103"),
            },
            calls=CallSettings(
                ring_timeout=ring_timeout,
                untrusted_calls=untrusted_calls,
                blocked_prefixes=blocked_prefixes or [],
                max_trunk_calls=max_trunk_calls,
            ),
            media=MediaSettings(
                address=MEDIA_HOST, rtp_port_min=rtp_ports[0], rtp_port_max=rtp_ports[1]
            ),
            timers=timers or TimerSettings(t1=T1),
            groups=groups or {},
            mailboxes=mailboxes or {},
            unsolicited_notify=unsolicited_notify,
            trunks=trunks or {},
        )
        self.switch = Switch(
            settings, SeededIds(seed), structlog.get_logger(), secret=b"k" * 64, wall_offset=WALL
        )
        self.now = 0.0
        self.trace: list[Sent] = []
        self.media: list[tuple[float, MediaCommand]] = []
        self.records: list[tuple[float, CallRecord]] = []
        self.others: list[tuple[float, Output]] = []
        self._phones: dict[Peer, Phone] = {}
        self._next_host = itertools.count(10)

    # -- the clock

    def run_until(self, t: float) -> None:
        """Fire every timer due by ``t``, each at its own deadline, then set the clock to
        ``t`` (never backwards)."""
        assert t >= self.now, (t, self.now)
        while (deadline := self.switch.next_deadline()) is not None and deadline <= t:
            self.now = max(self.now, deadline)
            self._collect(self.switch.fire_timers(self.now))
        self.now = t

    def run(self, dt: float) -> None:
        self.run_until(self.now + dt)

    # -- input and output

    def feed(self, event: Input) -> list[Output]:
        """Hand ``event`` to the switch at the current virtual time (timers due first)."""
        self.run_until(self.now)
        outputs = self.switch.handle(event, self.now)
        self._collect(outputs)
        return outputs

    def _collect(self, outputs: list[Output]) -> None:
        for output in outputs:
            match output:
                case SendDatagram(data=data, peer=peer):
                    sent = Sent(self.now, peer, data, parse_message(data))
                    self.trace.append(sent)
                    phone = self._phones.get(peer)
                    if phone is not None:
                        phone.receive(sent)
                case SaveCallRecord(record=record):
                    self.records.append((self.now, record))
                case SaveBinding() | DeleteBinding():
                    pass
                case _ if isinstance(output, MediaCommand):
                    self.media.append((self.now, output))
                case _:
                    self.others.append((self.now, output))

    def times(self, label: str, *, to: Phone | None = None) -> list[float]:
        """The virtual times at which the switch sent ``label`` (to ``to``)."""
        return [s.at for s in self.trace if s.label == label and (to is None or s.peer == to.peer)]

    def media_of(self, kind: type[MediaCommand]) -> list[tuple[float, MediaCommand]]:
        return [(at, m) for at, m in self.media if isinstance(m, kind)]

    # -- phones

    def phone(self, extension: str, *, register: bool = True, password: str | None = None) -> Phone:
        """A phone of ``extension`` at its own address (192.0.2.N:5062), registered."""
        host = f"192.0.2.{next(self._next_host)}"
        phone = Phone(self, extension, password or PASSWORDS.get(extension, "none"), host)
        self._phones[phone.peer] = phone
        if register:
            phone.register()
        return phone

    def outsider(self, host: str | None = None, *, port: int = 5062) -> Phone:
        """A caller that is no extension (a carrier, the outside world), at ``host``
        (by default an address of its own)."""
        host = host or f"198.51.100.{next(self._next_host)}"
        phone = Phone(self, "5551234", "", host, port=port)
        self._phones[phone.peer] = phone
        return phone

    def calls(self) -> dict[str, object]:
        calls = self.switch.snapshot(self.now)["calls"]
        assert isinstance(calls, dict)
        return calls

    def call_list(self) -> list[dict[str, object]]:
        """What /status lists of the live calls."""
        listed = self.calls()["list"]
        assert isinstance(listed, list)
        return listed

    def ports_allocated(self) -> int:
        ports = self.switch.snapshot(self.now)["media_ports"]
        assert isinstance(ports, dict)
        allocated = ports["allocated"]
        assert isinstance(allocated, int)
        return allocated

    def assert_idle(self) -> None:
        """No call left, not even one finishing, and no media port held."""
        calls = self.calls()
        assert (calls["active"], calls["finishing"], calls["list"]) == (0, 0, [])
        assert self.ports_allocated() == 0


@dataclass(eq=False)
class Dialog:
    """One side's view of a dialog (RFC 3261 section 12), enough to build in-dialog
    requests: From is ours (with our tag), To theirs."""

    phone: Phone
    call_id: str
    local: str  # our From value, with tag
    remote: str  # their To value, with tag once known
    remote_target: str
    cseq: int
    invite: Request | None = None  # the INVITE that made it (ours or theirs)

    def request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra: tuple[str, ...] = (),
        cseq: int | None = None,
    ) -> Request:
        if cseq is None and method not in ("ACK", "CANCEL"):
            self.cseq += 1
        number = self.cseq if cseq is None else cseq
        return self.phone.build(
            method,
            self.remote_target,
            from_=self.local,
            to=self.remote,
            call_id=self.call_id,
            cseq=number,
            body=body,
            content_type=content_type or ("application/sdp" if body else None),
            extra=extra,
        )

    def ack(self, response: Response) -> Request:
        """The ACK for a 2xx to a re-INVITE of ours (its CSeq number, a new branch)."""
        ack = self.request("ACK", cseq=response.cseq.number)
        self.phone.send(ack)
        return ack

    def ack_failure(self, request: Request, response: Response) -> Request:
        """The ACK for a 300-699 to our in-dialog INVITE ``request`` (section 17.1.1.3:
        same branch, part of the transaction)."""
        ack = self.phone.build(
            "ACK",
            request.uri,
            from_=self.local,
            to=response.headers.get("to") or "",
            call_id=self.call_id,
            cseq=request.cseq.number,
            branch=request.top_via.branch,
        )
        self.phone.send(ack)
        return ack

    def reply(self, request: Request, status: int, *, body: bytes = b"") -> Response:
        """Answer an in-dialog request the switch sent us."""
        return self.phone.respond(request, status, body=body)

    def send(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra: tuple[str, ...] = (),
    ) -> Request:
        request = self.request(method, body=body, content_type=content_type, extra=extra)
        self.phone.send(request)
        return request


@dataclass(eq=False)
class OutCall:
    """A call this phone placed: its INVITE, and the dialog once answered."""

    phone: Phone
    invite: Request
    dialog: Dialog | None = None

    def ack(self, response: Response) -> Request:
        """The ACK for a 2xx (a new transaction, to the Contact) or a non-2xx (same branch)."""
        if 200 <= response.status < 300:
            ack = self.follow(response).request("ACK", cseq=self.invite.cseq.number)
        else:
            ack = self.phone.build(
                "ACK",
                self.invite.uri,
                from_=self.invite.headers.get("from") or "",
                to=self._to_value(response),
                call_id=self.invite.call_id,
                cseq=self.invite.cseq.number,
                branch=self.invite.top_via.branch,
            )
        self.phone.send(ack)
        return ack

    def follow(self, response: Response) -> Dialog:
        """The dialog (early for a 1xx, confirmed for a 2xx) that ``response`` creates:
        its To tag, and its Contact as the remote target (RFC 3261 section 12.1.2)."""
        assert response.to.tag is not None
        self.dialog = Dialog(
            self.phone,
            self.invite.call_id,
            self.invite.headers.get("from") or "",
            self._to_value(response),
            str(response.contacts[0].uri),
            self.invite.cseq.number,
            self.invite,
        )
        return self.dialog

    @staticmethod
    def _to_value(response: Response) -> str:
        value = response.headers.get("to")
        assert value is not None
        return value

    def cancel(self) -> Request:
        """CANCEL (RFC 3261 section 9.1): the INVITE's branch, Request-URI and CSeq number."""
        cancel = self.phone.build(
            "CANCEL",
            self.invite.uri,
            from_=self.invite.headers.get("from") or "",
            to=self.invite.headers.get("to") or "",
            call_id=self.invite.call_id,
            cseq=self.invite.cseq.number,
            branch=self.invite.top_via.branch,
        )
        self.phone.send(cancel)
        return cancel

    def bye(self) -> Request:
        assert self.dialog is not None
        return self.dialog.send("BYE")


@dataclass(eq=False)
class InCall:
    """An INVITE the switch sent to this phone, and the phone's side of its dialog."""

    phone: Phone
    invite: Request
    tag: str
    dialog: Dialog = field(init=False)

    def __post_init__(self) -> None:
        invite = self.invite
        self.dialog = Dialog(
            self.phone,
            invite.call_id,
            f"{invite.headers.get('to')};tag={self.tag}",
            invite.headers.get("from") or "",
            str(invite.contacts[0].uri),
            0,
            invite,
        )

    @property
    def offer(self) -> bytes:
        return self.invite.body

    def respond(
        self, status: int, *, body: bytes = b"", request: Request | None = None
    ) -> Response:
        """Answer ``request`` (default: the INVITE) with our tag and, for 1xx-2xx, Contact."""
        return self.phone.respond(request or self.invite, status, tag=self.tag, body=body)

    def ring(self) -> Response:
        return self.respond(180)

    def answer(self, body: bytes | None = None) -> Response:
        return self.respond(200, body=self.phone.sdp() if body is None else body)

    def bye(self) -> Request:
        return self.dialog.send("BYE")


class Phone:
    """A scripted phone at ``host``:5062 (see the module docstring)."""

    def __init__(
        self, net: Net, extension: str, password: str, host: str, *, port: int = 5062
    ) -> None:
        self.net = net
        self.extension = extension
        self.password = password
        self.host = host
        self.port = port
        self.peer = Peer(Transport.UDP, host, port)
        self.contact = f"sip:{extension}@{host}:{port}"
        self.rtp_port = 4000 + 2 * int(host.rsplit(".", 1)[1])  # distinct per phone
        self.inbox: deque[Sent] = deque()
        self.duplicates = 0
        self._seen: set[bytes] = set()
        self._branches = itertools.count(1)
        self._tags = itertools.count(1)
        self._calls = itertools.count(1)

    def sdp(self, *, direction: str = "sendrecv", version: int = 1) -> bytes:
        return sdp(self.host, self.rtp_port, direction=direction, version=version)

    @property
    def media_address(self) -> tuple[str, int]:
        return self.host, self.rtp_port

    # -- receiving

    def receive(self, sent: Sent) -> None:
        if sent.data in self._seen:
            self.duplicates += 1
            return
        self._seen.add(sent.data)
        if isinstance(sent.message, Response) and sent.message.status == 100:
            return
        self.inbox.append(sent)

    def take(self, label: str) -> Sent:
        """The oldest unread message, which must be ``label``."""
        assert self.inbox, f"{self.extension}@{self.host}: nothing received, expected {label}"
        sent = self.inbox.popleft()
        assert sent.label == label, f"expected {label}, got {sent.label} at {sent.at}"
        return sent

    def take_request(self, method: str) -> Request:
        return self.take(method).request()

    def take_response(self, label: str) -> Response:
        return self.take(label).response()

    def labels(self) -> list[str]:
        return [s.label for s in self.inbox]

    def assert_nothing(self) -> None:
        assert not self.inbox, [f"{s.at} {s.label}" for s in self.inbox]

    def incoming(self, *, at: float | None = None) -> InCall:
        """The next message must be an INVITE from the switch: our side of it."""
        sent = self.take("INVITE")
        if at is not None:
            assert sent.at == at
        return InCall(self, sent.request(), f"{self.extension}-tag{next(self._tags)}")

    # -- sending

    def send(self, message: Message) -> list[Output]:
        return self.net.feed(DatagramReceived(data=message.to_bytes(), peer=self.peer))

    def build(
        self,
        method: str,
        uri: str,
        *,
        from_: str,
        to: str,
        call_id: str,
        cseq: int,
        branch: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        extra: tuple[str, ...] = (),
    ) -> Request:
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.host}:{self.port};branch={branch or self.new_branch()}",
            "Max-Forwards: 70",
            f"From: {from_}",
            f"To: {to}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
        ]
        if method not in ("CANCEL", "BYE", "ACK"):
            lines.append(f"Contact: <{self.contact}>")
        lines += extra
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        data = ("\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        message = parse_message(data)
        assert isinstance(message, Request)
        return message

    def new_branch(self) -> str:
        return f"z9hG4bK-{self.extension}-{self.host}-{next(self._branches)}"

    def respond(
        self, request: Request, status: int, *, tag: str | None = None, body: bytes = b""
    ) -> Response:
        """Send a response to ``request`` built as RFC 3261 section 8.2.6.2 says."""
        response = make_response(request, status, to_tag=tag)
        if 100 < status < 300 and request.method == "INVITE":
            response.headers.add("Contact", f"<{self.contact}>")
        if body:
            response.headers.add("Content-Type", "application/sdp")
            response.body = body
        self.send(response)
        return response

    # -- registering and dialling

    def register(self) -> None:
        """REGISTER, 401, REGISTER with digest, 200 (asserted)."""
        call_id = f"reg-{self.host}"
        first = self._register(call_id, 1, None)
        assert first.status == 401, first
        challenge = parse_challenge(first.headers.get_all("www-authenticate")[0])
        authorization = answer_challenge(
            challenge,
            username=self.extension,
            password=self.password,
            method="REGISTER",
            uri=f"sip:{REALM}",
            cnonce="c0ffee",
            nc=1,
        )
        second = self._register(call_id, 2, authorization)
        assert second.status == 200, second

    def _register(self, call_id: str, cseq: int, authorization: str | None) -> Response:
        extra = ["Expires: 3600"]
        if authorization is not None:
            extra.append(f"Authorization: {authorization}")
        request = self.build(
            "REGISTER",
            f"sip:{REALM}",
            from_=f"<sip:{self.extension}@{REALM}>;tag=r{self.host}",
            to=f"<sip:{self.extension}@{REALM}>",
            call_id=call_id,
            cseq=cseq,
            extra=tuple(extra),
        )
        self.send(request)
        return self.take_response("401 REGISTER" if authorization is None else "200 REGISTER")

    def invite(
        self,
        number: str,
        *,
        body: bytes | None = None,
        cseq: int = 1,
        call_id: str | None = None,
        from_tag: str | None = None,
        extra: tuple[str, ...] = (),
        uri: str | None = None,
    ) -> OutCall:
        """Send an INVITE for ``number`` (no credentials); ``uri`` replaces the
        Request-URI (To keeps ``number``, as a carrier sending to a contact does)."""
        offer = self.sdp() if body is None else body
        request = self.build(
            "INVITE",
            uri or f"sip:{number}@{REALM}",
            from_=f'"Phone {self.extension}" <sip:{self.extension}@{REALM}>'
            f";tag={from_tag or f'{self.extension}-from{next(self._tags)}'}",
            to=f"<sip:{number}@{REALM}>",
            call_id=call_id or f"call-{next(self._calls)}-{self.host}",
            cseq=cseq,
            body=offer,
            content_type="application/sdp" if offer else None,
            extra=extra,
        )
        self.send(request)
        return OutCall(self, request)

    def dial(self, number: str, *, body: bytes | None = None) -> OutCall:
        """INVITE, 407 (ACKed), INVITE again with Proxy-Authorization (CSeq + 1, same
        Call-ID and From tag): the authenticated call."""
        first = self.invite(number, body=body)
        challenged = self.take_response("407 INVITE")
        first_call = OutCall(self, first.invite)
        first_call.ack(challenged)
        challenge = parse_challenge(challenged.headers.get_all("proxy-authenticate")[0])
        authorization = answer_challenge(
            challenge,
            username=self.extension,
            password=self.password,
            method="INVITE",
            uri=first.invite.uri,
            cnonce="c0ffee",
            nc=1,
        )
        tag = first.invite.from_.tag
        return self.invite(
            number,
            body=body,
            cseq=2,
            call_id=first.invite.call_id,
            from_tag=tag,
            extra=(f"Proxy-Authorization: {authorization}",),
        )


def answered_call(
    caller: Phone, callee: Phone, number: str | None = None
) -> tuple[OutCall, InCall]:
    """``caller`` dials ``number`` (default: the callee's extension) now; the callee rings
    and answers at once; the caller ACKs. Both inboxes are left empty."""
    call = caller.dial(number or callee.extension)
    incoming = callee.incoming()
    incoming.ring()
    incoming.answer()
    callee.take("ACK")
    caller.take_response("180 INVITE")
    call.ack(caller.take_response("200 INVITE"))
    return call, incoming
