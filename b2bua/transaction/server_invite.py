"""The INVITE server transaction (IST): RFC 3261 section 17.2.1 with the RFC 6026 changes.

::

    Proceeding --1xx from TU--> Proceeding        (100 Trying sent after 200 ms of silence)
    Proceeding --2xx from TU--> Accepted --Timer L--> Terminated            (RFC 6026)
    Proceeding --300-699 from TU--> Completed --ACK--> Confirmed --Timer I--> Terminated
    Completed --Timer H--> Terminated (the TU is told)

In Accepted the transaction sends the 2xx retransmissions the TU hands it (the TU
retransmits a 2xx itself, section 13.3.1.4), absorbs INVITE retransmissions, and passes
every ACK up to the TU (RFC 6026 section 7.1). A transport error is reported to the TU
and the state is kept (RFC 6026 figure 7).
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from b2bua.sip.address import Peer
from b2bua.sip.errors import LocalProtocolError
from b2bua.sip.message import Request, Response, make_response
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


class ServerInviteState(Enum):
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class ServerInviteTransaction(TransactionMachine[ServerInviteState]):
    """The INVITE server transaction.

    Inputs: :meth:`start` (the INVITE arrived), :meth:`on_request` (a retransmitted INVITE
    or an ACK), :meth:`send_response` (from the TU), :meth:`on_timer` (TRYING, G, H, I, L),
    :meth:`on_transport_error`. Responses go to ``peer``, where the INVITE came from.
    """

    TERMINATED = ServerInviteState.TERMINATED

    def __init__(self, request: Request, peer: Peer, settings: TimerSettings) -> None:
        if request.method != "INVITE":
            raise LocalProtocolError(f"an INVITE server transaction cannot take {request.method}")
        super().__init__(request, peer, settings, ServerInviteState.PROCEEDING)
        self.last_response: Response | None = None
        self._last_data = b""
        self._interval = settings.t1

    def start(self, now: float) -> list[TransactionAction]:
        """The INVITE arrived: pass it up and start the 100 Trying timer."""
        self._begin()
        # RFC 3261 §17.2.1: send 100 Trying unless the TU answers within 200 ms.
        return [PassUp(message=self.request), *self._start_default(TimerName.TRYING, now)]

    def on_request(self, request: Request, now: float) -> list[TransactionAction]:
        """A request matched to this transaction: a retransmitted INVITE or an ACK."""
        if request.method == "ACK":
            return self._dispatch(Input.ACK, request, now)
        if request.method != "INVITE":
            raise LocalProtocolError(f"{request.method} does not belong to an INVITE transaction")
        return self._dispatch(Input.REQUEST, request, now)

    def send_response(self, response: Response, now: float) -> list[TransactionAction]:
        """Send a response from the TU. Raises LocalProtocolError when the state does not
        allow it: a 1xx or non-2xx after a final response, anything after Terminated."""
        kind = classify(response)
        if self._lookup(kind) is None:
            raise LocalProtocolError(
                f"cannot send {response.status} in INVITE server transaction {self.state.value}"
            )
        return self._dispatch(kind, response, now)

    def _lookup(self, kind: InputKind) -> tuple[Step, ServerInviteState] | None:
        return lookup(_TABLE, self, self.state, kind)

    def _send_response(self, response: Response) -> list[TransactionAction]:
        """Send ``response`` and keep it (and its bytes) for retransmissions."""
        if response is not self.last_response:
            self.last_response = response
            self._last_data = response.to_bytes()
        return [self._send(response, self._last_data)]

    # -- handlers

    def _send_trying(self, _: Incoming, now: float) -> list[TransactionAction]:
        return self._send_response(make_response(self.request, 100))

    def _resend_last(self, _: Incoming, now: float) -> list[TransactionAction]:
        # RFC 3261 §17.2.1: a retransmitted INVITE gets the most recent response again. When
        # there is none yet (the TRYING timer has not fired), it gets 100 Trying now.
        if self.last_response is None:
            return [*self._cancel(TimerName.TRYING), *self._send_trying(None, now)]
        return [self._send(self.last_response, self._last_data)]

    def _provisional(self, response: Incoming, now: float) -> list[TransactionAction]:
        assert isinstance(response, Response)
        return [*self._cancel(TimerName.TRYING), *self._send_response(response)]

    def _accept(self, response: Incoming, now: float) -> list[TransactionAction]:
        # RFC 6026 §8.5: a 2xx from the TU moves to Accepted and starts Timer L (64*T1).
        assert isinstance(response, Response)
        return [
            *self._cancel(TimerName.TRYING),
            *self._send_response(response),
            *self._start_default(TimerName.L, now),
        ]

    def _send_2xx(self, response: Incoming, now: float) -> list[TransactionAction]:
        # RFC 6026 §8.7: 2xx retransmissions from the TU are sent; we never retransmit a
        # 2xx on our own.
        assert isinstance(response, Response)
        return self._send_response(response)

    def _complete(self, response: Incoming, now: float) -> list[TransactionAction]:
        # RFC 3261 §17.2.1: Timer G (T1) on unreliable transports only; Timer H (64*T1)
        # on all of them.
        assert isinstance(response, Response)
        actions = [*self._cancel(TimerName.TRYING), *self._send_response(response)]
        if not self.is_reliable:
            actions += self._start_timer(TimerName.G, now, self._interval)
        return actions + self._start_default(TimerName.H, now)

    def _retransmit(self, _: Incoming, now: float) -> list[TransactionAction]:
        # RFC 3261 §17.2.1: Timer G doubles, capped at T2.
        assert self.last_response is not None
        self._interval = min(2 * self._interval, self.settings.t2)
        resend = self._send(self.last_response, self._last_data)
        return [resend, *self._start_timer(TimerName.G, now, self._interval)]

    def _time_out(self, _: Incoming, now: float) -> list[TransactionAction]:
        # RFC 3261 §17.2.1: Timer H means the ACK never came; the TU is told.
        return [TimedOut(name=TimerName.H), *self._terminate()]

    def _confirm(self, _: Incoming, now: float) -> list[TransactionAction]:
        # RFC 3261 §17.2.1: the ACK stops retransmissions; Timer I absorbs ACK
        # retransmissions (T4 unreliable, zero reliable).
        return [*self._cancel(TimerName.G, TimerName.H), *self._start_default(TimerName.I, now)]

    def _pass_ack(self, ack: Incoming, now: float) -> list[TransactionAction]:
        # RFC 6026 §7.1: ACKs received in Accepted go to the TU and are not absorbed.
        assert isinstance(ack, Request)
        return [PassUp(message=ack)]

    def _report_transport_error(self, _: Incoming, now: float) -> list[TransactionAction]:
        return [TransportFailed()]

    def _end(self, _: Incoming, now: float) -> list[TransactionAction]:
        return self._terminate()


_S = ServerInviteState
_IST = ServerInviteTransaction

#: (state, input) -> (handler, next state). Pairs not listed are ignored when they come
#: from the network or a timer (an INVITE retransmission in Accepted or Confirmed, an ACK
#: in Proceeding or Confirmed) and refused when they come from the TU.
_TABLE: Final[Table[ServerInviteState, ServerInviteTransaction]] = {
    (_S.PROCEEDING, TimerName.TRYING): (_IST._send_trying, _S.PROCEEDING),
    (_S.PROCEEDING, Input.REQUEST): (_IST._resend_last, _S.PROCEEDING),
    (_S.PROCEEDING, Input.PROVISIONAL): (_IST._provisional, _S.PROCEEDING),
    (_S.PROCEEDING, Input.SUCCESS): (_IST._accept, _S.ACCEPTED),
    (_S.PROCEEDING, Input.FAILURE): (_IST._complete, _S.COMPLETED),
    (_S.PROCEEDING, Input.TRANSPORT_ERROR): (_IST._report_transport_error, _S.PROCEEDING),
    (_S.COMPLETED, Input.REQUEST): (_IST._resend_last, _S.COMPLETED),
    (_S.COMPLETED, TimerName.G): (_IST._retransmit, _S.COMPLETED),
    (_S.COMPLETED, TimerName.H): (_IST._time_out, _S.TERMINATED),
    (_S.COMPLETED, Input.ACK): (_IST._confirm, _S.CONFIRMED),
    (_S.COMPLETED, Input.TRANSPORT_ERROR): (_IST._report_transport_error, _S.COMPLETED),
    (_S.CONFIRMED, TimerName.I): (_IST._end, _S.TERMINATED),
    (_S.ACCEPTED, Input.SUCCESS): (_IST._send_2xx, _S.ACCEPTED),
    (_S.ACCEPTED, Input.ACK): (_IST._pass_ack, _S.ACCEPTED),
    (_S.ACCEPTED, Input.TRANSPORT_ERROR): (_IST._report_transport_error, _S.ACCEPTED),
    (_S.ACCEPTED, TimerName.L): (_IST._end, _S.TERMINATED),
}
