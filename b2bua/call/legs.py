"""One leg of a call as the call keeps it, and the rules for a call whose callees all
failed (RFC 3261 section 16.7)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from b2bua.call.actions import TrunkLeg
from b2bua.call.media import MediaView, SdpFace
from b2bua.call.records import Disposition
from b2bua.dialog import SessionState, UacInviteSession, UasInviteSession
from b2bua.sip.address import Peer
from b2bua.sip.message import Request
from b2bua.sip.status import StatusCode
from b2bua.transaction.keys import TransactionKey


@dataclass(eq=False)
class Leg:
    index: int
    session: UasInviteSession | UacInviteSession
    peer: Peer
    face: SdpFace  # what this leg sees of the switch
    extension: str | None = None
    ring: int | None = None  # B of a hunt: which ring of its member (Call.ring_member)
    invite_key: TransactionKey | None = None
    provisional: bool = False  # B: a 1xx arrived, so a CANCEL may be sent (9.1)
    cancel_wanted: bool = False
    cancel_sent: bool = False
    final_status: int | None = None
    view: MediaView | None = None  # what this leg's last SDP said
    remote_sdp: bytes | None = None  # B: the SDP of its early media
    # In-dialog requests from this leg awaiting our answer: (CSeq number, method) -> key.
    server_keys: dict[tuple[int, str], TransactionKey] = field(default_factory=dict)
    trunk: TrunkLeg | None = None  # B through a carrier trunk
    challenges: int = 0  # B: the provider's 401/407 answered so far
    label: str | None = None  # who answered, for the record, when no extension did
    confirmed: bool = False  # B: its person pressed 1 (confirm-call)

    @property
    def terminated(self) -> bool:
        return self.session.state is SessionState.TERMINATED

    @property
    def established(self) -> bool:
        return self.session.state is SessionState.ESTABLISHED


@dataclass(frozen=True, slots=True)
class Relayed:
    """A request from leg ``origin`` relayed to the other leg, to answer when it is."""

    origin: int
    key: TransactionKey
    request: Request


def best_final_status(statuses: Iterable[int]) -> int:
    """RFC 3261 section 16.7 item 6, as a B2BUA reads it: any 6xx wins (the first);
    else the lowest class; within a class a response a callee chose beats the ones that
    only say it did not answer (408, 487); a 503 becomes 500 (a callee's overload must
    not make the caller's side give up on the switch)."""
    finals = [s for s in statuses if s >= 300]
    if not finals:
        return StatusCode.TEMPORARILY_UNAVAILABLE
    global_failures = [s for s in finals if s >= 600]
    if global_failures:
        return global_failures[0]
    best = min(finals, key=lambda s: (s // 100, s in (408, 487)))
    return StatusCode.SERVER_INTERNAL_ERROR if best == 503 else best


def disposition_of(status: int) -> Disposition:
    if status in (486, 600):
        return Disposition.BUSY
    if status in (408, 480, 487):
        return Disposition.NO_ANSWER
    return Disposition.FAILED
