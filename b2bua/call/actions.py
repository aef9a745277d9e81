"""What a :class:`~b2bua.call.call.Call` asks the switch to do (frozen dataclasses, no
logic), the names of its client transactions and timers, and what it needs to know about
the switch (:class:`CallContext`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final, TypeAlias

from b2bua.call.records import CallRecord
from b2bua.dialog import LocalAddress, SessionTimer
from b2bua.hunt.engine import HuntTimer
from b2bua.sip.address import Peer, Transport
from b2bua.sip.digest import DigestAccount
from b2bua.sip.message import Request, Response
from b2bua.transaction.keys import TransactionKey
from b2bua.transaction.timers import TimerSettings
from media.commands import MediaCommand

CALLER: Final = 0  # the index of leg A


class Purpose(Enum):
    """What a client transaction of a call is for."""

    INVITE = "invite"
    CANCEL = "cancel"
    BYE = "bye"
    REINVITE = "re-invite"
    RELAY = "relay"  # a non-INVITE in-dialog request relayed from the other leg
    REFRESH = "refresh"  # our UPDATE refreshing the caller's session timer (RFC 4028)


class CallTimer(Enum):
    RING_TIMEOUT = "ring timeout"  # nobody answered in time: the caller gets 480
    CANCEL_TIMEOUT = "cancel timeout"  # RFC 3261 9.1: no final response 64*T1 after CANCEL
    SESSION_TIMER = "session timer"  # RFC 4028: refresh the caller's session, or give up
    CONFIRM_TIMEOUT = "confirm timeout"  # the answered callee did not press 1 in time


#: Hunt timers are filed under the call (leg CALLER) but fed to its hunt, not to the call.
TimerName: TypeAlias = CallTimer | SessionTimer | HuntTimer


# -- actions (call -> switch)


@dataclass(frozen=True, slots=True)
class Respond:
    """Send ``response`` in server transaction ``key``. A 2xx to an INVITE whose
    transaction is gone (a retransmission after Timer L) goes straight to ``peer``."""

    key: TransactionKey
    response: Response
    peer: Peer


@dataclass(frozen=True, slots=True)
class SendInLeg:
    """Send ``request`` to ``peer`` in a new client transaction; its outcome comes back
    to :meth:`Call.on_response` / :meth:`Call.on_transaction_failed` with ``leg`` and
    ``purpose``."""

    leg: int
    request: Request
    peer: Peer
    purpose: Purpose


@dataclass(frozen=True, slots=True)
class SendDirect:
    """Send ``request`` (an ACK for a 2xx) to ``peer`` outside any transaction."""

    request: Request
    peer: Peer


@dataclass(frozen=True, slots=True)
class Arm:
    leg: int
    name: TimerName
    at: float


@dataclass(frozen=True, slots=True)
class Disarm:
    leg: int
    name: TimerName


@dataclass(frozen=True, slots=True)
class Abandon:
    """Destroy client transaction ``key`` (an INVITE that ignored our CANCEL)."""

    key: TransactionKey


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The call is over for its users (media closed); ``record`` goes to the store."""

    record: CallRecord


@dataclass(frozen=True, slots=True)
class CallFinished:
    """Every leg is terminated: the switch forgets the call and frees its ports."""


# -- what happened to a member (an extension rung as one, all its devices together);
#    the switch feeds these to the call's hunt and keeps the member book with them


@dataclass(frozen=True, slots=True)
class MemberRinging:
    """The first 180 (or 183) from a device of ``extension`` in its current ring."""

    extension: str


@dataclass(frozen=True, slots=True)
class MemberConfirming:
    """A device of ``extension`` answered and its person is asked to press 1 by
    ``until`` (confirm-call): the hunt holds the member's ring open until then."""

    extension: str
    until: float


@dataclass(frozen=True, slots=True)
class MemberAnswered:
    """A device of ``extension`` answered and the caller is bridged to it; ``late``: it
    answered after it was stopped (or another won) and was released, not bridged."""

    extension: str
    late: bool = False


@dataclass(frozen=True, slots=True)
class MemberFailed:
    """Every device of ``extension`` in its current ring ended without answering (and the
    hunt had not stopped it); ``status`` is the best of their final responses."""

    extension: str
    status: int


CallAction: TypeAlias = (
    Respond
    | SendInLeg
    | SendDirect
    | Arm
    | Disarm
    | Abandon
    | CallEnded
    | CallFinished
    | MemberRinging
    | MemberConfirming
    | MemberAnswered
    | MemberFailed
    | MediaCommand
)


@dataclass(frozen=True, slots=True)
class TrunkLeg:
    """How a callee leg through carrier trunk ``trunk`` is written: To and From (without
    tag) and extra header fields (P-Asserted-Identity, Privacy, Diversion)."""

    trunk: str
    to: str
    from_: str
    headers: tuple[tuple[str, str], ...] = ()
    account: DigestAccount | None = None  # answers the provider's 401/407
    member: str | None = None  # an external hunt member (``external:<number>``)
    confirm: bool = False  # the person who answers must press 1 before the bridge


@dataclass(frozen=True, slots=True)
class Target:
    """One device to ring: a registered contact of extension ``extension``, reached at
    ``peer`` (where its REGISTER came from). Through a trunk (``trunk`` set),
    ``contact`` is the Request-URI at the provider and ``extension`` the number dialled
    there."""

    extension: str
    contact: str
    peer: Peer
    trunk: TrunkLeg | None = None


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a call needs to know about the switch."""

    locals: Mapping[Transport, LocalAddress]  # our Via sent-by, per transport
    contacts: Mapping[Transport, str]  # our Contact URI, per transport
    domain: str
    media_host: str
    user_agent: str
    timers: TimerSettings
    ring_timeout: float
    latch_any: bool = False
    confirm_timeout: float = 15.0  # how long an answered callee has to press 1
    wall_offset: float = 0.0

    def local(self, peer: Peer) -> LocalAddress:
        return self.locals.get(peer.transport) or next(iter(self.locals.values()))

    def contact(self, peer: Peer) -> str:
        return self.contacts.get(peer.transport) or next(iter(self.contacts.values()))
