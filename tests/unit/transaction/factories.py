"""SIP messages for the transaction tests, built by parsing literal SIP text, and small
helpers to compare actions."""

from __future__ import annotations

from dataclasses import dataclass

from b2bua.sip.address import ConnectionId, Peer, Transport
from b2bua.sip.message import Request, Response
from b2bua.sip.parser import parse_message
from b2bua.transaction.actions import SendMessage, TransactionAction
from b2bua.transaction.events import LayerEvent

UDP_PEER = Peer(Transport.UDP, "192.0.2.10", 5060)
TCP_PEER = Peer(Transport.TCP, "192.0.2.10", 5060, ConnectionId(7))
PEERS = {Transport.UDP: UDP_PEER, Transport.TCP: TCP_PEER}

REASONS = {
    100: "Trying",
    180: "Ringing",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    302: "Moved Temporarily",
    404: "Not Found",
    481: "Call/Transaction Does Not Exist",
    486: "Busy Here",
    487: "Request Terminated",
    503: "Service Unavailable",
    603: "Decline",
}


def parse_request(text: str) -> Request:
    message = parse_message(text.replace("\n", "\r\n").encode())
    assert isinstance(message, Request)
    return message


def parse_response(text: str) -> Response:
    message = parse_message(text.replace("\n", "\r\n").encode())
    assert isinstance(message, Response)
    return message


def request(
    method: str = "INVITE",
    *,
    branch: str | None = "z9hG4bK-inv-1",
    sent_by: str = "192.0.2.10:5060",
    transport: Transport = Transport.UDP,
    uri: str = "sip:bob@example.com",
    call_id: str = "call-1@192.0.2.10",
    cseq: int = 1,
    cseq_method: str | None = None,
    from_tag: str | None = "from-1",
    to_tag: str | None = None,
    routes: tuple[str, ...] = (),
    extra_vias: tuple[str, ...] = (),
) -> Request:
    """A request parsed from text. ``branch=None`` makes an RFC 2543 Via (no branch)."""
    via_params = "" if branch is None else f";branch={branch}"
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/{transport.value} {sent_by}{via_params}",
        *(f"Via: {via}" for via in extra_vias),
        *(f"Route: {route}" for route in routes),
        "Max-Forwards: 70",
        f"From: Alice <sip:alice@example.org>{'' if from_tag is None else ';tag=' + from_tag}",
        f"To: Bob <sip:bob@example.com>{'' if to_tag is None else ';tag=' + to_tag}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {cseq_method or method}",
        "Contact: <sip:alice@192.0.2.10:5060>",
        "Content-Length: 0",
    ]
    return parse_request("\n".join(lines) + "\n\n")


def invite(**kwargs: object) -> Request:
    return request("INVITE", **kwargs)  # type: ignore[arg-type]


def response(req: Request, status: int, *, to_tag: str | None = "to-1") -> Response:
    """A response to ``req`` parsed from text; ``to_tag`` is added unless the request's To
    has one already or the status is 100."""
    to = req.headers.get("to")
    assert to is not None
    if to_tag is not None and status != 100 and req.to.tag is None:
        to = f"{to};tag={to_tag}"
    vias = "".join(f"Via: {via}\n" for via in req.headers.get_all("via"))
    text = (
        f"SIP/2.0 {status} {REASONS.get(status, 'Whatever')}\n"
        f"{vias}"
        f"From: {req.headers.get('from')}\n"
        f"To: {to}\n"
        f"Call-ID: {req.call_id}\n"
        f"CSeq: {req.headers.get('cseq')}\n"
        "Content-Length: 0\n\n"
    )
    return parse_response(text)


def ack_for(invite_request: Request, final: Response, *, branch: str | None = None) -> Request:
    """The ACK a client sends: for a non-2xx final, with the INVITE's branch (RFC 3261
    §17.1.1.3); pass ``branch`` for the ACK of a 2xx (a new transaction)."""
    via = invite_request.headers.get_all("via")[0]
    if branch is not None:
        via = via.split(";branch=")[0] + f";branch={branch}"
    text = (
        f"ACK {invite_request.uri} SIP/2.0\n"
        f"Via: {via}\n"
        "Max-Forwards: 70\n"
        f"From: {invite_request.headers.get('from')}\n"
        f"To: {final.headers.get('to')}\n"
        f"Call-ID: {invite_request.call_id}\n"
        f"CSeq: {invite_request.cseq.number} ACK\n"
        "Content-Length: 0\n\n"
    )
    return parse_request(text)


def cancel_for(invite_request: Request) -> Request:
    """The CANCEL for ``invite_request`` (RFC 3261 §9.1: same Request-URI, Call-ID, To,
    From, CSeq number and top Via)."""
    text = (
        f"CANCEL {invite_request.uri} SIP/2.0\n"
        f"Via: {invite_request.headers.get_all('via')[0]}\n"
        "Max-Forwards: 70\n"
        f"From: {invite_request.headers.get('from')}\n"
        f"To: {invite_request.headers.get('to')}\n"
        f"Call-ID: {invite_request.call_id}\n"
        f"CSeq: {invite_request.cseq.number} CANCEL\n"
        "Content-Length: 0\n\n"
    )
    return parse_request(text)


@dataclass(frozen=True)
class Sent:
    """A ``SendMessage`` reduced to what goes on the wire, for comparisons."""

    data: bytes
    peer: Peer


def wire(actions: list[TransactionAction]) -> list[object]:
    """``actions`` with each SendMessage replaced by :class:`Sent`."""
    return [Sent(a.data, a.peer) if isinstance(a, SendMessage) else a for a in actions]


def wire_events(events: list[LayerEvent]) -> list[object]:
    return [Sent(e.data, e.peer) if isinstance(e, SendMessage) else e for e in events]


def sends(actions: list[TransactionAction] | list[LayerEvent]) -> list[SendMessage]:
    return [a for a in actions if isinstance(a, SendMessage)]
