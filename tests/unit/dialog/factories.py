"""SIP messages for the dialog tests, parsed from literal text, and the call scenarios
they share: an INVITE we receive (UAS side) and one we send (UAC side), each through
two record-routing proxies."""

from __future__ import annotations

from typing import TypeVar

from b2bua.dialog import LocalAddress
from b2bua.sip.message import Request, Response, make_response
from b2bua.sip.parser import parse_message

#: The switch's own sent-by.
LOCAL = LocalAddress("192.0.2.1", 5060)
OUR_CONTACT = "sip:b2bua@192.0.2.1:5060"


def parse_request(text: str) -> Request:
    message = parse_message(text.replace("\n", "\r\n").encode())
    assert isinstance(message, Request)
    return message


def parse_response(text: str) -> Response:
    message = parse_message(text.replace("\n", "\r\n").encode())
    assert isinstance(message, Response)
    return message


def wire(request: Request) -> str:
    """The request as it goes out, with LF line ends, to compare with literal text."""
    return request.to_bytes().decode().replace("\r\n", "\n")


def lines(*fields: str) -> str:
    """A message's text from its lines: LF line ends, the blank line after the headers."""
    return "\n".join(fields) + "\n\n"


# -- UAS side: Alice's INVITE reaches us through p1 (next to Alice) and p2 (next to us).


def uas_invite(
    *,
    record_route: tuple[str, ...] = (
        "<sip:p2.example.net;lr>",
        "<sip:p1.example.org;lr;ftag=a-tag>",
    ),
    contact: str | None = "<sip:alice@198.51.100.7:5060;transport=udp>",
    from_tag: str | None = "a-tag",
    uri: str = "sip:bob@192.0.2.1:5060",
    cseq: int = 101,
) -> Request:
    """Alice's INVITE; each ``record_route`` item is one Record-Route header field."""
    return parse_request(
        lines(
            f"INVITE {uri} SIP/2.0",
            "Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-a1;rport",
            *(f"Record-Route: {rr}" for rr in record_route),
            "Max-Forwards: 68",
            'From: "Alice Liddell" <sip:alice@example.org>'
            + ("" if from_tag is None else f";tag={from_tag}"),
            "To: <sip:bob@example.com>",
            "Call-ID: c1@198.51.100.7",
            f"CSeq: {cseq} INVITE",
            *(() if contact is None else (f"Contact: {contact}",)),
            "Content-Length: 0",
        )
    )


def in_dialog_request(
    method: str,
    cseq: int,
    *,
    contact: str | None = None,
    to_tag: str = "b-tag",
    from_tag: str = "a-tag",
    call_id: str = "c1@198.51.100.7",
) -> Request:
    """A request Alice sends in the dialog (our tag ``b-tag`` in To)."""
    return parse_request(
        lines(
            f"{method} sip:b2bua@192.0.2.1:5060 SIP/2.0",
            f"Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-{method.lower()}{cseq}",
            "Route: <sip:p1.example.org;lr;ftag=a-tag>",
            "Route: <sip:p2.example.net;lr>",
            "Max-Forwards: 70",
            f"From: <sip:alice@example.org>;tag={from_tag}",
            f"To: <sip:bob@example.com>;tag={to_tag}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            *(() if contact is None else (f"Contact: {contact}",)),
            "Content-Length: 0",
        )
    )


# -- UAC side: our INVITE to a carrier, through near.example.net (our side) and
# far.example.net (the carrier's side); forks answer with To tags fork-a, fork-b, ...

UAC_INVITE = lines(
    "INVITE sip:+15551234@carrier.example.net SIP/2.0",
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-inv;rport",
    "Max-Forwards: 70",
    "From: <sip:100@192.0.2.1>;tag=our-tag",
    "To: <sip:+15551234@carrier.example.net>",
    "Call-ID: out-1@192.0.2.1",
    "CSeq: 1 INVITE",
    "Contact: <sip:b2bua@192.0.2.1:5060>",
    'Proxy-Authorization: Digest username="100", realm="carrier", nonce="n", '
    'uri="sip:+15551234@carrier.example.net", response="0123456789abcdef0123456789abcdef"',
    "Content-Length: 0",
)


def uac_invite() -> Request:
    return parse_request(UAC_INVITE)


REASONS = {180: "Ringing", 183: "Session Progress", 200: "OK", 486: "Busy Here"}


def uac_response(
    status: int,
    *,
    to_tag: str | None = "fork-a",
    contact: str | None = "<sip:gw-a@203.0.113.10:5060>",
    record_route: tuple[str, ...] = ("<sip:far.example.net;lr>, <sip:near.example.net;lr>",),
    cseq: str = "1 INVITE",
) -> Response:
    """A response to our INVITE (or, with ``cseq``, to a later request of ours)."""
    return parse_response(
        lines(
            f"SIP/2.0 {status} {REASONS.get(status, 'Whatever')}",
            "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-inv;rport=5060",
            *(f"Record-Route: {rr}" for rr in record_route),
            "From: <sip:100@192.0.2.1>;tag=our-tag",
            "To: <sip:+15551234@carrier.example.net>"
            + ("" if to_tag is None else f";tag={to_tag}"),
            "Call-ID: out-1@192.0.2.1",
            f"CSeq: {cseq}",
            *(() if contact is None else (f"Contact: {contact}",)),
            "Content-Length: 0",
        )
    )


def carrier_request(method: str, cseq: int, *, contact: str | None = None) -> Request:
    """A request the carrier's fork-a sends in the dialog our INVITE created (our tag
    ``our-tag`` in To)."""
    return parse_request(
        lines(
            f"{method} sip:b2bua@192.0.2.1:5060 SIP/2.0",
            f"Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK-c{method.lower()}{cseq}",
            "Max-Forwards: 70",
            "From: <sip:+15551234@carrier.example.net>;tag=fork-a",
            "To: <sip:100@192.0.2.1>;tag=our-tag",
            "Call-ID: out-1@192.0.2.1",
            f"CSeq: {cseq} {method}",
            *(() if contact is None else (f"Contact: {contact}",)),
            "Content-Length: 0",
        )
    )


M = TypeVar("M", Request, Response)


def with_body(message: M, body: bytes, content_type: str = "application/sdp") -> M:
    """``message`` parsed again from its wire form, with ``body`` and its Content-Type."""
    head = message.to_bytes().split(b"\r\n\r\n", 1)[0]
    fields = [
        line
        for line in head.split(b"\r\n")
        if not line.lower().startswith((b"content-length:", b"content-type:"))
    ]
    fields += [f"Content-Type: {content_type}".encode(), f"Content-Length: {len(body)}".encode()]
    parsed = parse_message(b"\r\n".join(fields) + b"\r\n\r\n" + body)
    assert isinstance(parsed, type(message))
    return parsed


def reply(
    request: Request, status: int, *, contact: str | None = None, sdp: bytes | None = None
) -> Response:
    """The peer's response to ``request`` (a request we sent in a dialog), as parsed off
    the wire: Via, From, To, Call-ID and CSeq copied, plus ``contact`` and an SDP body."""
    response = make_response(request, status)
    if contact is not None:
        response.headers.add("Contact", contact)
    message = parse_message(response.to_bytes())
    assert isinstance(message, Response)
    return message if sdp is None else with_body(message, sdp)
