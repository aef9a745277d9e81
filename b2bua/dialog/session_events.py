"""What an INVITE session returns: the actions its owner carries out (messages to send,
timers) and the facts it reports (ringing, answered, established, terminated), plus its
states and timer names. Frozen dataclasses and Enums, no logic."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TypeAlias

from b2bua.sip.errors import LocalProtocolError
from b2bua.sip.message import Request, Response


class SessionState(Enum):
    INITIAL = "initial"  # INVITE received or sent, nothing more
    EARLY = "early"  # a provisional response sent or received
    WAITING_ACK = "waiting ACK"  # our 2xx (UAS: to the INVITE; either role: a re-INVITE) awaits ACK
    ESTABLISHED = "established"
    TERMINATING = "terminating"  # BYE sent (or, UAC before the answer, CANCEL asked for)
    TERMINATED = "terminated"


class SessionTimer(Enum):
    RETRANSMIT_2XX = "retransmit 2xx"  # RFC 3261 13.3.1.4: T1, doubling up to T2
    ACK_TIMEOUT = "ACK timeout"  # 64*T1 without ACK: the session ends with a BYE


class EndReason(Enum):
    REJECTED = "rejected"  # a non-2xx final response to the INVITE (sent or received)
    CANCELLED = "cancelled"
    LOCAL_BYE = "local BYE"
    REMOTE_BYE = "remote BYE"
    ACK_TIMEOUT = "ACK timeout"  # our 2xx was never ACKed; we sent BYE
    REMOTE_GONE = "remote gone"  # 481 or 408 (or no answer) to our re-INVITE (RFC 5057)


class SessionStateError(LocalProtocolError):
    """A verb was called in a state that does not allow it (our bug, not the peer's)."""


# -- actions: imperatives to execute, in order


@dataclass(frozen=True, slots=True, kw_only=True)
class SendResponse:
    """Send ``response`` through the server transaction of its request. A retransmitted 2xx
    is the same object: serialise it once."""

    response: Response


@dataclass(frozen=True, slots=True, kw_only=True)
class SendRequest:
    """Send ``request`` in a new client transaction and report its outcome: a BYE to
    ``on_bye_response`` / ``on_bye_failed``, a re-INVITE to ``on_reinvite_response`` /
    ``on_reinvite_failed``."""

    request: Request


@dataclass(frozen=True, slots=True, kw_only=True)
class SendAck:
    """Send the ACK for a 2xx directly to the transport, in no transaction (13.2.2.4). A
    re-sent ACK is the same object."""

    request: Request


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTimer:
    """Call ``on_timer(name, now)`` at ``at`` (replacing a running timer of that name)."""

    name: SessionTimer
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelTimer:
    name: SessionTimer


# -- facts: what happened, for the call above


@dataclass(frozen=True, slots=True, kw_only=True)
class Ringing:
    """UAC: a provisional response without SDP (``status`` 180, 181, 182, 183...)."""

    status: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EarlyMedia:
    """UAC: a provisional response with SDP (the answer to our offer)."""

    status: int
    sdp: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Answered:
    """UAC: the 2xx to the INVITE. ``sdp`` is the answer, or, when our INVITE had no SDP,
    the offer: then answer it with :meth:`UacInviteSession.send_ack`."""

    sdp: bytes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Established:
    """UAS: the ACK for our 2xx to the INVITE arrived."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferReceived:
    """Either role: a re-INVITE; answer it with ``answer_reinvite`` or ``reject_reinvite``.
    ``sdp`` None: no offer in it (ours goes in the 2xx, the answer comes in the ACK)."""

    sdp: bytes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerReceived:
    """The ACK carried the answer to the offer we made in our 2xx (UAS: to the INVITE;
    either role: to a re-INVITE without SDP)."""

    sdp: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ReinviteAccepted:
    """Either role: a 2xx to our re-INVITE. ``ack_owed`` False: the ACK went out (the
    ``SendAck`` before this) and ``sdp`` is the answer to our offer (None if the 2xx had
    none). ``ack_owed`` True: our re-INVITE had no SDP and ``sdp`` is the peer's offer;
    answer it with ``send_reinvite_ack``."""

    sdp: bytes | None
    ack_owed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ReinviteRejected:
    """Either role: our re-INVITE got a 300-699 (or timed out: 408). The session keeps its
    media; after a 481 it ends at once (``Terminated`` follows), after a 408 a BYE
    follows (RFC 3261 section 12.2.1.2, RFC 5057)."""

    status: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelNeeded:
    """UAC: hang-up before a final response. Send ``build_cancel(session.invite)`` in its own
    client transaction (RFC 3261 section 9.1); the 487 then ends the session."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Terminated:
    """The session ended; ``status`` is the final response that ended it, if any. Always the
    last action, after a ``CancelTimer`` for every running timer."""

    reason: EndReason
    status: int | None = None


SessionAction: TypeAlias = (
    SendResponse
    | SendRequest
    | SendAck
    | StartTimer
    | CancelTimer
    | Ringing
    | EarlyMedia
    | Answered
    | Established
    | OfferReceived
    | AnswerReceived
    | ReinviteAccepted
    | ReinviteRejected
    | CancelNeeded
    | Terminated
)
