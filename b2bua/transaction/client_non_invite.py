"""The non-INVITE client transaction (NICT): RFC 3261 section 17.1.2.

::

    Trying --1xx--> Proceeding --1xx--> Proceeding
    Trying, Proceeding --200-699--> Completed --Timer K--> Terminated
    Trying, Proceeding --Timer F or transport error--> Terminated (the TU is told)

Timer E retransmits the request on unreliable transports: it doubles from T1 up to T2
in Trying, and is reset to T2 in Proceeding.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from b2bua.sip.address import Peer
from b2bua.sip.errors import LocalProtocolError
from b2bua.sip.message import Request, Response
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


class ClientNonInviteState(Enum):
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


class ClientNonInviteTransaction(TransactionMachine[ClientNonInviteState]):
    """The non-INVITE client transaction (any method but INVITE and ACK).

    Inputs: :meth:`start` (send the request), :meth:`on_response`, :meth:`on_timer` (E, F,
    K), :meth:`on_transport_error`. Each returns the actions for the owner.
    """

    TERMINATED = ClientNonInviteState.TERMINATED

    def __init__(self, request: Request, peer: Peer, settings: TimerSettings) -> None:
        if request.method in ("INVITE", "ACK"):
            raise LocalProtocolError(f"no non-INVITE client transaction for {request.method}")
        super().__init__(request, peer, settings, ClientNonInviteState.TRYING)
        self._data = b""
        self._interval = settings.t1

    def start(self, now: float) -> list[TransactionAction]:
        """Send the request and start Timers E (unreliable transports) and F."""
        self._begin()
        self._data = self.request.to_bytes()
        actions: list[TransactionAction] = [self._send(self.request, self._data)]
        if not self.is_reliable:
            actions += self._start_timer(TimerName.E, now, self._interval)
        return actions + self._start_default(TimerName.F, now)

    def on_response(self, response: Response, now: float) -> list[TransactionAction]:
        """A response matched to this transaction (RFC 3261 section 17.1.3). A status
        outside 100-699 is not SIP and is ignored."""
        if not 100 <= response.status <= 699:
            return []
        return self._dispatch(classify(response), response, now)

    def _lookup(self, kind: InputKind) -> tuple[Step, ClientNonInviteState] | None:
        return lookup(_TABLE, self, self.state, kind)

    # -- handlers

    def _retransmit(self, _: Incoming, now: float) -> list[TransactionAction]:
        # RFC 3261 §17.1.2.2: in Trying, Timer E doubles up to T2; in Proceeding it is
        # reset to T2.
        if self.state is ClientNonInviteState.TRYING:
            self._interval = min(2 * self._interval, self.settings.t2)
        else:
            self._interval = self.settings.t2
        resend = self._send(self.request, self._data)
        return [resend, *self._start_timer(TimerName.E, now, self._interval)]

    def _time_out(self, _: Incoming, now: float) -> list[TransactionAction]:
        return [TimedOut(name=TimerName.F), *self._terminate()]

    def _fail(self, _: Incoming, now: float) -> list[TransactionAction]:
        return [TransportFailed(), *self._terminate()]

    def _pass_up(self, response: Incoming, now: float) -> list[TransactionAction]:
        # A 1xx moves Trying to Proceeding; Timer E keeps its current deadline and from
        # then on fires every T2 (see _retransmit).
        assert isinstance(response, Response)
        return [PassUp(message=response)]

    def _complete(self, response: Incoming, now: float) -> list[TransactionAction]:
        # RFC 3261 §17.1.2.2: Timer K is T4 on unreliable transports, zero on reliable.
        assert isinstance(response, Response)
        return [
            *self._cancel(TimerName.E, TimerName.F),
            PassUp(message=response),
            *self._start_default(TimerName.K, now),
        ]

    def _end(self, _: Incoming, now: float) -> list[TransactionAction]:
        return self._terminate()


_S = ClientNonInviteState
_NICT = ClientNonInviteTransaction

#: (state, input) -> (handler, next state). Pairs not listed are ignored: in Completed,
#: retransmitted responses are absorbed (RFC 3261 §17.1.2.2).
_TABLE: Final[Table[ClientNonInviteState, ClientNonInviteTransaction]] = {
    (_S.TRYING, TimerName.E): (_NICT._retransmit, _S.TRYING),
    (_S.TRYING, TimerName.F): (_NICT._time_out, _S.TERMINATED),
    (_S.TRYING, Input.TRANSPORT_ERROR): (_NICT._fail, _S.TERMINATED),
    (_S.TRYING, Input.PROVISIONAL): (_NICT._pass_up, _S.PROCEEDING),
    (_S.TRYING, Input.SUCCESS): (_NICT._complete, _S.COMPLETED),
    (_S.TRYING, Input.FAILURE): (_NICT._complete, _S.COMPLETED),
    (_S.PROCEEDING, TimerName.E): (_NICT._retransmit, _S.PROCEEDING),
    (_S.PROCEEDING, TimerName.F): (_NICT._time_out, _S.TERMINATED),
    (_S.PROCEEDING, Input.TRANSPORT_ERROR): (_NICT._fail, _S.TERMINATED),
    (_S.PROCEEDING, Input.PROVISIONAL): (_NICT._pass_up, _S.PROCEEDING),
    (_S.PROCEEDING, Input.SUCCESS): (_NICT._complete, _S.COMPLETED),
    (_S.PROCEEDING, Input.FAILURE): (_NICT._complete, _S.COMPLETED),
    (_S.COMPLETED, TimerName.K): (_NICT._end, _S.TERMINATED),
}
