"""SUBSCRIBE requests a phone sends for its mailbox, and helpers to read what the
subscriptions answer (every message goes through the parser, so it is valid SIP)."""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from b2bua.dialog import LocalAddress
from b2bua.ids import SeededIds
from b2bua.sip.address import Peer, Transport
from b2bua.sip.message import Request, Response
from b2bua.sip.parser import parse_message
from b2bua.voicemail.mwi import MessageCounts
from b2bua.voicemail.subscriptions import (
    ArmExpiry,
    DisarmExpiry,
    MwiAction,
    MwiSubscriptions,
    Respond,
    SendNotify,
    SubscriptionId,
)

#: The switch: its sent-by and its Contact.
LOCAL = LocalAddress("192.0.2.1", 5060)
OUR_CONTACT = "sip:mwi@192.0.2.1:5060"
#: Where the phone's requests come from, and its Contact.
PHONE = Peer(Transport.UDP, "198.51.100.7", 5062)
PHONE_CONTACT = "sip:101@198.51.100.7:5062;transport=udp"
CALL_ID = "mwi-1@198.51.100.7"


def subscribe_request(
    *,
    expires: int | str | None = 3600,
    event: str | None = "message-summary",
    accept: str | None = "application/simple-message-summary",
    contact: str | None = f"<{PHONE_CONTACT}>",
    to_tag: str | None = None,
    from_tag: str = "phone-tag",
    call_id: str = CALL_ID,
    cseq: int = 1,
    user: str = "101",
) -> Request:
    """A SUBSCRIBE from extension ``user``'s phone to its own mailbox; ``to_tag`` makes it
    one inside an existing subscription."""
    fields = [
        f"SUBSCRIBE sip:{user}@192.0.2.1 SIP/2.0",
        f"Via: SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bK-sub{cseq}-{call_id[:5]};rport",
        "Max-Forwards: 70",
        f'From: "Front Desk" <sip:{user}@192.0.2.1>;tag={from_tag}',
        f"To: <sip:{user}@192.0.2.1>" + ("" if to_tag is None else f";tag={to_tag}"),
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} SUBSCRIBE",
        *(() if contact is None else (f"Contact: {contact}",)),
        *(() if event is None else (f"Event: {event}",)),
        *(() if expires is None else (f"Expires: {expires}",)),
        *(() if accept is None else (f"Accept: {accept}",)),
        "User-Agent: Desk Phone 1.0",
        "Content-Length: 0",
    ]
    message = parse_message(("\r\n".join(fields) + "\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message


def new_subscriptions(seed: int = 1) -> MwiSubscriptions:
    return MwiSubscriptions(SeededIds(seed), structlog.get_logger())


def subscribe(
    subscriptions: MwiSubscriptions,
    request: Request | None = None,
    *,
    mailbox: str = "101",
    counts: MessageCounts = MessageCounts(0, 0),  # noqa: B008 - frozen
    now: float = 0.0,
) -> list[MwiAction]:
    return subscriptions.subscribe(
        subscribe_request() if request is None else request,
        mailbox=mailbox,
        counts=counts,
        peer=PHONE,
        local=LOCAL,
        contact=OUR_CONTACT,
        now=now,
    )


def wire(message: Request | Response) -> Request | Response:
    """``message`` as the phone gets it: serialised and parsed again."""
    return parse_message(message.to_bytes())


def response_of(actions: Sequence[MwiAction]) -> Response:
    """The one response among ``actions``, as parsed off the wire."""
    responses = [a.response for a in actions if isinstance(a, Respond)]
    assert len(responses) == 1, actions
    parsed = wire(responses[0])
    assert isinstance(parsed, Response)
    return parsed


def notifies(actions: Sequence[MwiAction]) -> list[Request]:
    """The NOTIFYs among ``actions``, as parsed off the wire."""
    out = []
    for action in actions:
        if isinstance(action, SendNotify):
            parsed = wire(action.request)
            assert isinstance(parsed, Request)
            assert parsed.method == "NOTIFY"
            out.append(parsed)
    return out


def only_notify(actions: Sequence[MwiAction]) -> Request:
    found = notifies(actions)
    assert len(found) == 1, actions
    return found[0]


def subscription_of(actions: Sequence[MwiAction]) -> SubscriptionId:
    ids = {a.subscription for a in actions if isinstance(a, SendNotify | ArmExpiry | DisarmExpiry)}
    ids.discard(None)
    assert len(ids) == 1, actions
    (found,) = ids
    assert found is not None
    return found


def arms(actions: Sequence[MwiAction]) -> list[float]:
    return [a.at for a in actions if isinstance(a, ArmExpiry)]


def state_of(notify: Request) -> str | None:
    return notify.headers.get("Subscription-State")
