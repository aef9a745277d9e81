"""The INVITE client transaction (ICT): RFC 3261 section 17.1.1 with the RFC 6026 changes.

::

    Calling --1xx--> Proceeding --1xx--> Proceeding
    Calling, Proceeding --2xx--> Accepted --Timer M--> Terminated      (RFC 6026)
    Calling, Proceeding --300-699, ACK sent--> Completed --Timer D--> Terminated
    Calling --Timer B or transport error--> Terminated (the TU is told)

The transaction ACKs non-2xx final responses itself (section 17.1.1.3); a 2xx and its
retransmissions, and the 2xx of other forks, go up to the TU, which ACKs them (section
13.2.2.4).
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from b2bua.sip.address import Peer
from b2bua.sip.errors import LocalProtocolError
from b2bua.sip.message import Headers, Request, Response
from b2bua.transaction.actions import PassUp, TimedOut, TransactionAction, TransportFailed
from b2bua.transaction.machine import (
    Incoming,
    Input,
    InputKind,
    Step,
    Table,
    TransactionMachine,
    classify,
    lookup,
)
from b2bua.transaction.timers import TimerName, TimerSettings


class ClientInviteState(Enum):
    CALLING = "Calling"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


def build_ack(request: Request, response: Response) -> Request:
    """The ACK for a non-2xx final ``response`` to ``request`` (RFC 3261 section 17.1.1.3).

    Same Request-URI, Call-ID, From and CSeq number (method ACK) as the request; the To of
    the response (with its tag); one Via, the request's top Via; the request's Route
    header fields; Max-Forwards as in the request. No body.
    """
    headers = Headers()
    headers.add("Via", request.headers.get_all("via")[0])
    for route in request.headers.fields("route"):
        headers.add(route.name, route.value)
    max_forwards = request.headers.get("max-forwards")
    headers.add("Max-Forwards", "70" if max_forwards is None else max_forwards)
    for name in ("from", "to", "call-id"):
        source = response if name == "to" else request
        value = source.headers.get(name)
        if value is None:
            raise LocalProtocolError(f"cannot build an ACK without {name}")
        headers.add(name, value)
    headers.add("CSeq", f"{request.cseq.number} ACK")
    return Request("ACK", request.uri, headers)


class ClientInviteTransaction(TransactionMachine[ClientInviteState]):
    """The INVITE client transaction.

    Inputs: :meth:`start` (send the INVITE), :meth:`on_response`, :meth:`on_timer` (A, B,
    D, M), :meth:`on_transport_error`. Each returns the actions for the owner. ``peer`` is
    where the INVITE, its retransmissions and the ACK for a non-2xx response are sent.
    """

    TERMINATED = ClientInviteState.TERMINATED

    def __init__(self, request: Request, peer: Peer, settings: TimerSettings) -> None:
        if request.method != "INVITE":
            raise LocalProtocolError(f"an INVITE client transaction cannot send {request.method}")
        super().__init__(request, peer, settings, ClientInviteState.CALLING)
        self._data = b""
        self._interval = settings.t1
        self._ack_data = b""
        self.ack: Request | None = None

    def start(self, now: float) -> list[TransactionAction]:
        """Send the INVITE and start Timers A (unreliable transports) and B."""
        self._begin()
        self._data = self.request.to_bytes()
        actions: list[TransactionAction] = [self._send(self.request, self._data)]
        if not self.is_reliable:
            # RFC 3261 §17.1.1.2: Timer A starts at T1 on unreliable transports only.
            actions += self._start_timer(TimerName.A, now, self._interval)
        return actions + self._start_default(TimerName.B, now)

    def on_response(self, response: Response, now: float) -> list[TransactionAction]:
        """A response matched to this transaction (RFC 3261 section 17.1.3). A status
        outside 100-699 is not SIP and is ignored."""
        if not 100 <= response.status <= 699:
            return []
        return self._dispatch(classify(response), response, now)

    def _lookup(self, kind: InputKind) -> tuple[Step, ClientInviteState] | None:
        return lookup(_TABLE, self, self.state, kind)

    # -- handlers

    def _retransmit(self, _: Incoming, now: float) -> list[TransactionAction]:
        # RFC 3261 §17.1.1.2: Timer A doubles on each retransmission until Timer B fires;
        # unlike Timers E and G it is not capped at T2.
        self._interval *= 2
        resend = self._send(self.request, self._data)
        return [resend, *self._start_timer(TimerName.A, now, self._interval)]

    def _time_out(self, _: Incoming, now: float) -> list[TransactionAction]:
        return [TimedOut(name=TimerName.B), *self._terminate()]

    def _fail(self, _: Incoming, now: float) -> list[TransactionAction]:
        return [TransportFailed(), *self._terminate()]

    def _proceed(self, response: Incoming, now: float) -> list[TransactionAction]:
        # RFC 3261 §17.1.1.2: no more retransmissions once a provisional response arrived;
        # Timer B only guards the Calling state.
        assert isinstance(response, Response)
        return [*self._cancel(TimerName.A, TimerName.B), PassUp(message=response)]

    def _accept(self, response: Incoming, now: float) -> list[TransactionAction]:
        # RFC 6026 §8.4: a 2xx moves to Accepted; Timer M (64*T1) keeps the transaction
        # alive for 2xx retransmissions and for the 2xx of other forks.
        assert isinstance(response, Response)
        return [
            *self._cancel(TimerName.A, TimerName.B),
            PassUp(message=response),
            *self._start_default(TimerName.M, now),
        ]

    def _pass_up(self, response: Incoming, now: float) -> list[TransactionAction]:
        # RFC 6026 §8.4: every 2xx in Accepted goes to the TU; the TU ACKs it, not us.
        assert isinstance(response, Response)
        return [PassUp(message=response)]

    def _complete(self, response: Incoming, now: float) -> list[TransactionAction]:
        # RFC 3261 §17.1.1.2: ACK the non-2xx response, pass it up and start Timer D
        # (at least 32 s on unreliable transports, zero on reliable ones).
        assert isinstance(response, Response)
        self.ack = build_ack(self.request, response)
        self._ack_data = self.ack.to_bytes()
        return [
            *self._cancel(TimerName.A, TimerName.B),
            self._send(self.ack, self._ack_data),
            PassUp(message=response),
            *self._start_default(TimerName.D, now),
        ]

    def _resend_ack(self, _: Incoming, now: float) -> list[TransactionAction]:
        # RFC 3261 §17.1.1.2: a retransmitted final response is ACKed again, not passed up.
        assert self.ack is not None
        return [self._send(self.ack, self._ack_data)]

    def _end(self, _: Incoming, now: float) -> list[TransactionAction]:
        return self._terminate()


_S = ClientInviteState
_ICT = ClientInviteTransaction

#: (state, input) -> (handler, next state). Pairs not listed are ignored (RFC 3261 §17.1.1.2
#: and RFC 6026 §8.4: e.g. a late 1xx in Completed, a non-2xx in Accepted).
_TABLE: Final[Table[ClientInviteState, ClientInviteTransaction]] = {
    (_S.CALLING, TimerName.A): (_ICT._retransmit, _S.CALLING),
    (_S.CALLING, TimerName.B): (_ICT._time_out, _S.TERMINATED),
    (_S.CALLING, Input.TRANSPORT_ERROR): (_ICT._fail, _S.TERMINATED),
    (_S.CALLING, Input.PROVISIONAL): (_ICT._proceed, _S.PROCEEDING),
    (_S.CALLING, Input.SUCCESS): (_ICT._accept, _S.ACCEPTED),
    (_S.CALLING, Input.FAILURE): (_ICT._complete, _S.COMPLETED),
    (_S.PROCEEDING, Input.PROVISIONAL): (_ICT._proceed, _S.PROCEEDING),
    (_S.PROCEEDING, Input.SUCCESS): (_ICT._accept, _S.ACCEPTED),
    (_S.PROCEEDING, Input.FAILURE): (_ICT._complete, _S.COMPLETED),
    (_S.ACCEPTED, Input.SUCCESS): (_ICT._pass_up, _S.ACCEPTED),
    (_S.ACCEPTED, TimerName.M): (_ICT._end, _S.TERMINATED),
    (_S.COMPLETED, Input.FAILURE): (_ICT._resend_ack, _S.COMPLETED),
    (_S.COMPLETED, TimerName.D): (_ICT._end, _S.TERMINATED),
    (_S.COMPLETED, Input.TRANSPORT_ERROR): (_ICT._fail, _S.TERMINATED),
}
