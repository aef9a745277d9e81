"""What a transaction machine asks of its owner: the actions every entry point returns.

The owner executes them in order. ``SendMessage`` carries the bytes to put on the wire:
a machine serialises each message once and sends the same bytes again for every
retransmission. ``StartTimer`` with the name of a running timer replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from b2bua.sip.address import Peer
from b2bua.sip.message import Request, Response
from b2bua.transaction.timers import TimerName


@dataclass(frozen=True, slots=True, kw_only=True)
class SendMessage:
    """Send ``data`` (``message`` serialised) to ``peer``."""

    message: Request | Response
    data: bytes
    peer: Peer


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTimer:
    """Call ``on_timer(name, now)`` at ``at`` (replacing a running timer of that name)."""

    name: TimerName
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelTimer:
    """Forget the running timer ``name``."""

    name: TimerName


@dataclass(frozen=True, slots=True, kw_only=True)
class PassUp:
    """Deliver ``message`` to the transaction user (TU)."""

    message: Request | Response


@dataclass(frozen=True, slots=True, kw_only=True)
class TimedOut:
    """Timer ``name`` (B, F or H) fired: the transaction failed. RFC 3261 section 8.1.3.1:
    a client TU treats Timer B or F as a 408 (Request Timeout) response."""

    name: TimerName


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportFailed:
    """The transport could not send a message of this transaction (RFC 3261 section 17.1.4,
    17.2.4): a client TU treats it as a 503 (Service Unavailable) response."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Terminated:
    """The machine reached Terminated: the owner destroys it. Always the last action, after
    a ``CancelTimer`` for every timer still running."""


TransactionAction: TypeAlias = (
    SendMessage | StartTimer | CancelTimer | PassUp | TimedOut | TransportFailed | Terminated
)
