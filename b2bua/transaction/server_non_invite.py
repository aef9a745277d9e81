"""The non-INVITE server transaction (NIST): RFC 3261 section 17.2.2.

::

    Trying --1xx from TU--> Proceeding --1xx from TU--> Proceeding
    Trying, Proceeding --200-699 from TU--> Completed --Timer J--> Terminated
    Proceeding, Completed --transport error--> Terminated (the TU is told)

A retransmitted request is discarded in Trying and answered with the last response in
Proceeding and Completed.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from b2bua.sip.address import Peer
from b2bua.sip.errors import LocalProtocolError
from b2bua.sip.message import Request, Response
from b2bua.transaction.actions import PassUp, TransactionAction, TransportFailed
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


class ServerNonInviteState(Enum):
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


class ServerNonInviteTransaction(TransactionMachine[ServerNonInviteState]):
    """The non-INVITE server transaction (any method but INVITE and ACK; CANCEL too).

    Inputs: :meth:`start` (the request arrived), :meth:`on_request` (a retransmission),
    :meth:`send_response` (from the TU), :meth:`on_timer` (J), :meth:`on_transport_error`.
    Responses go to ``peer``, where the request came from.
    """

    TERMINATED = ServerNonInviteState.TERMINATED

    def __init__(self, request: Request, peer: Peer, settings: TimerSettings) -> None:
        if request.method in ("INVITE", "ACK"):
            raise LocalProtocolError(f"no non-INVITE server transaction for {request.method}")
        super().__init__(request, peer, settings, ServerNonInviteState.TRYING)
        self.last_response: Response | None = None
        self._last_data = b""

    def start(self, now: float) -> list[TransactionAction]:
        """The request arrived: pass it up to the TU."""
        self._begin()
        return [PassUp(message=self.request)]

    def on_request(self, request: Request, now: float) -> list[TransactionAction]:
        """A retransmission of the request."""
        if request.method != self.request.method:
            raise LocalProtocolError(f"{request.method} does not belong to this transaction")
        return self._dispatch(Input.REQUEST, request, now)

    def send_response(self, response: Response, now: float) -> list[TransactionAction]:
        """Send a response from the TU. Raises LocalProtocolError after a final response."""
        kind = classify(response)
        if self._lookup(kind) is None:
            raise LocalProtocolError(
                f"cannot send {response.status} in non-INVITE server transaction {self.state.value}"
            )
        return self._dispatch(kind, response, now)

    def _lookup(self, kind: InputKind) -> tuple[Step, ServerNonInviteState] | None:
        return lookup(_TABLE, self, self.state, kind)

    # -- handlers

    def _send_response(self, response: Incoming, now: float) -> list[TransactionAction]:
        assert isinstance(response, Response)
        self.last_response = response
        self._last_data = response.to_bytes()
        return [self._send(response, self._last_data)]

    def _complete(self, response: Incoming, now: float) -> list[TransactionAction]:
        # RFC 3261 §17.2.2: Timer J is 64*T1 on unreliable transports, zero on reliable.
        return [*self._send_response(response, now), *self._start_default(TimerName.J, now)]

    def _resend_last(self, _: Incoming, now: float) -> list[TransactionAction]:
        assert self.last_response is not None
        return [self._send(self.last_response, self._last_data)]

    def _fail(self, _: Incoming, now: float) -> list[TransactionAction]:
        return [TransportFailed(), *self._terminate()]

    def _end(self, _: Incoming, now: float) -> list[TransactionAction]:
        return self._terminate()


_S = ServerNonInviteState
_NIST = ServerNonInviteTransaction

#: (state, input) -> (handler, next state). Pairs not listed are ignored when they come
#: from the network or a timer (a retransmission in Trying is discarded, RFC 3261
#: §17.2.2) and refused when they come from the TU (a response after the final one).
_TABLE: Final[Table[ServerNonInviteState, ServerNonInviteTransaction]] = {
    (_S.TRYING, Input.PROVISIONAL): (_NIST._send_response, _S.PROCEEDING),
    (_S.TRYING, Input.SUCCESS): (_NIST._complete, _S.COMPLETED),
    (_S.TRYING, Input.FAILURE): (_NIST._complete, _S.COMPLETED),
    (_S.PROCEEDING, Input.REQUEST): (_NIST._resend_last, _S.PROCEEDING),
    (_S.PROCEEDING, Input.PROVISIONAL): (_NIST._send_response, _S.PROCEEDING),
    (_S.PROCEEDING, Input.SUCCESS): (_NIST._complete, _S.COMPLETED),
    (_S.PROCEEDING, Input.FAILURE): (_NIST._complete, _S.COMPLETED),
    (_S.PROCEEDING, Input.TRANSPORT_ERROR): (_NIST._fail, _S.TERMINATED),
    (_S.COMPLETED, Input.REQUEST): (_NIST._resend_last, _S.COMPLETED),
    (_S.COMPLETED, TimerName.J): (_NIST._end, _S.TERMINATED),
    (_S.COMPLETED, Input.TRANSPORT_ERROR): (_NIST._fail, _S.TERMINATED),
}
