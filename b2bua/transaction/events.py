"""What the transaction layer reports to its owner (the switch) and to the transaction
user (the dialog layer): commands first (send, start and cancel timers), then facts.

``SendMessage`` comes through from the machines unchanged; timers are the machines'
``StartTimer``/``CancelTimer`` filed under the transaction's key, so that the owner can
keep every timer of every transaction in one heap and call
``TransactionLayer.on_timer(key, name, now)`` when one is due.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from b2bua.sip.address import Peer
from b2bua.sip.message import Request, Response
from b2bua.transaction.actions import SendMessage
from b2bua.transaction.keys import TransactionKey
from b2bua.transaction.timers import TimerName


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTransactionTimer:
    """Call ``on_timer(key, name, now)`` at ``at``; replaces a running (key, name) timer."""

    key: TransactionKey
    name: TimerName
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelTransactionTimer:
    """Forget the running timer (key, name). Late firings are harmless: the layer ignores
    timers that are not running."""

    key: TransactionKey
    name: TimerName


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestReceived:
    """A new request (not ACK, not CANCEL) created server transaction ``key``; the TU
    answers with ``TransactionLayer.send_response(key, response, now)``."""

    request: Request
    peer: Peer
    key: TransactionKey


@dataclass(frozen=True, slots=True, kw_only=True)
class AckReceived:
    """An ACK that is not part of an INVITE transaction: the ACK for a 2xx (its own
    branch, or passed up by an INVITE server transaction in Accepted, RFC 6026 section
    7.1). The dialog layer matches it to a dialog; there is nothing to answer."""

    request: Request
    peer: Peer


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelReceived:
    """A new CANCEL created server transaction ``cancel_key``; ``invite_key`` is the INVITE
    server transaction it cancels (RFC 3261 section 9.2), or None. The TU answers the
    CANCEL (200, or 481 when ``invite_key`` is None) and, if the INVITE has no final
    response yet, answers it 487."""

    cancel: Request
    peer: Peer
    cancel_key: TransactionKey
    invite_key: TransactionKey | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseReceived:
    """A response for client transaction ``key``, for the TU. For an INVITE this includes
    every 2xx (retransmissions and other forks, RFC 6026): the TU ACKs each one."""

    response: Response
    key: TransactionKey


@dataclass(frozen=True, slots=True, kw_only=True)
class StrayResponse:
    """A 2xx to an INVITE that matches no live client transaction in a state that takes
    it (a retransmission after Timer M, or a fork's 2xx after a non-2xx final). The
    dialog layer ACKs it again for a known dialog, or ACKs and BYEs it (RFC 6026 §7.2)."""

    response: Response
    peer: Peer


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionTimedOut:
    """Timer ``name`` fired: B or F (client; the TU treats it as 408) or H (server: the
    ACK for a non-2xx final never came)."""

    key: TransactionKey
    name: TimerName


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionTransportFailed:
    """Sending a message of transaction ``key`` failed (RFC 3261 §17.1.4, §17.2.4); a
    client TU treats it as 503. The transaction may or may not terminate with it."""

    key: TransactionKey


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionTerminated:
    """Transaction ``key`` is gone from the layer; every timer it had was cancelled
    before this event."""

    key: TransactionKey


LayerEvent: TypeAlias = (
    SendMessage
    | StartTransactionTimer
    | CancelTransactionTimer
    | RequestReceived
    | AckReceived
    | CancelReceived
    | ResponseReceived
    | StrayResponse
    | TransactionTimedOut
    | TransactionTransportFailed
    | TransactionTerminated
)
