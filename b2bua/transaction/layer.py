"""The transaction layer: holds the transaction machines and matches messages to them
(RFC 3261 sections 17.1.3 and 17.2.3, CANCEL by section 9.2, RFC 6026 for 2xx).

Pure: every entry point takes ``now`` and returns :data:`LayerEvent` values. The owner
sends the ``SendMessage`` events, keeps the timers in its heap under (key, name), calls
:meth:`TransactionLayer.on_timer` when one is due, and hands the rest to the TU.
"""

from __future__ import annotations

from typing import TypeAlias, assert_never

from b2bua.sip.address import Peer
from b2bua.sip.errors import LocalProtocolError, SipError
from b2bua.sip.message import Request, Response
from b2bua.transaction.actions import (
    CancelTimer,
    PassUp,
    SendMessage,
    StartTimer,
    Terminated,
    TimedOut,
    TransactionAction,
    TransportFailed,
)
from b2bua.transaction.client_invite import ClientInviteState, ClientInviteTransaction
from b2bua.transaction.client_non_invite import ClientNonInviteTransaction
from b2bua.transaction.events import (
    AckReceived,
    CancelReceived,
    CancelTransactionTimer,
    LayerEvent,
    RequestReceived,
    ResponseReceived,
    StartTransactionTimer,
    StrayResponse,
    TransactionTerminated,
    TransactionTimedOut,
    TransactionTransportFailed,
)
from b2bua.transaction.keys import Side, TransactionKey, client_key, response_key, server_key
from b2bua.transaction.server_invite import ServerInviteTransaction
from b2bua.transaction.server_non_invite import ServerNonInviteTransaction
from b2bua.transaction.timers import TimerName, TimerSettings

ClientTransaction: TypeAlias = ClientInviteTransaction | ClientNonInviteTransaction
ServerTransaction: TypeAlias = ServerInviteTransaction | ServerNonInviteTransaction
Transaction: TypeAlias = ClientTransaction | ServerTransaction

_AckId: TypeAlias = tuple[str, str | None, str, int, str]


class TransactionLayer:
    """Every live transaction, by :class:`~b2bua.transaction.keys.TransactionKey`.

    Inputs: :meth:`on_request` and :meth:`on_response` (from the network),
    :meth:`send_request` and :meth:`send_response` (from the TU), :meth:`on_timer`,
    :meth:`on_transport_error`, :meth:`terminate`. A transaction leaves the layer when it
    terminates (``TransactionTerminated``); ``len(layer)`` counts the live ones.
    """

    def __init__(self, settings: TimerSettings | None = None) -> None:
        self.settings = settings if settings is not None else TimerSettings()
        self._transactions: dict[TransactionKey, Transaction] = {}
        # RFC 2543 INVITE server transactions by what their ACK carries (LegacyId.ack_id).
        self._legacy_invites: dict[_AckId, TransactionKey] = {}

    def __len__(self) -> int:
        return len(self._transactions)

    @property
    def count(self) -> int:
        """The number of live transactions."""
        return len(self._transactions)

    def __contains__(self, key: object) -> bool:
        return key in self._transactions

    def get(self, key: TransactionKey) -> Transaction | None:
        """The live transaction ``key`` (to read its ``state`` or ``request``), or None."""
        return self._transactions.get(key)

    # -- from the network

    def on_request(self, request: Request, peer: Peer, now: float) -> list[LayerEvent]:
        """A request from ``peer``. A new one creates a server transaction (not an ACK);
        a retransmission goes to its transaction; an ACK for a non-2xx is absorbed by its
        INVITE transaction; any other ACK comes out as ``AckReceived``.

        Raises :class:`~b2bua.sip.errors.ParseError` (a RemoteProtocolError carrying the
        reply) when a header that matching needs is malformed.
        """
        key = server_key(request)
        if request.method == "ACK":
            return self._on_ack(request, key, peer, now)
        machine = self._transactions.get(key)
        if isinstance(machine, ServerInviteTransaction | ServerNonInviteTransaction):
            return self._translate(key, peer, machine.on_request(request, now))
        new: ServerTransaction
        if request.method == "INVITE":
            new = ServerInviteTransaction(request, peer, self.settings)
            if key.legacy is not None:
                self._legacy_invites[key.legacy.ack_id] = key
        else:
            new = ServerNonInviteTransaction(request, peer, self.settings)
        self._transactions[key] = new
        return self._translate(key, peer, new.start(now))

    def on_response(self, response: Response, peer: Peer, now: float) -> list[LayerEvent]:
        """A response from ``peer``. A matched one goes to its client transaction; a 2xx
        to an INVITE that no transaction takes is a ``StrayResponse``; other strays are
        dropped (RFC 3261 §18.1.2), as are responses with a status outside 100-699."""
        if not 100 <= response.status <= 699:
            return []
        try:
            key = response_key(response)
            is_2xx_to_invite = response.status // 100 == 2 and response.cseq.method == "INVITE"
        except SipError:
            return []
        machine = None if key is None else self._transactions.get(key)
        if key is None or not isinstance(
            machine, ClientInviteTransaction | ClientNonInviteTransaction
        ):
            return [StrayResponse(response=response, peer=peer)] if is_2xx_to_invite else []
        if (
            is_2xx_to_invite
            and isinstance(machine, ClientInviteTransaction)
            and machine.state is ClientInviteState.COMPLETED
        ):
            # RFC 6026 §7.2: a fork's 2xx after a non-2xx final still needs an ACK (and
            # a BYE); the transaction in Completed does not take it, so the TU must.
            return [StrayResponse(response=response, peer=peer)]
        return self._translate(key, peer, machine.on_response(response, now))

    # -- from the TU

    def send_request(
        self, request: Request, peer: Peer, now: float
    ) -> tuple[TransactionKey, list[LayerEvent]]:
        """Send ``request`` to ``peer`` in a new client transaction. The top Via must carry
        a fresh RFC 3261 branch. An ACK has no transaction: the TU sends it itself."""
        if request.method == "ACK":
            raise LocalProtocolError("an ACK is not sent in a client transaction")
        key = client_key(request)
        if key in self._transactions:
            raise LocalProtocolError(f"branch already in use: {key}")
        machine: ClientTransaction
        if request.method == "INVITE":
            machine = ClientInviteTransaction(request, peer, self.settings)
        else:
            machine = ClientNonInviteTransaction(request, peer, self.settings)
        self._transactions[key] = machine
        return key, self._translate(key, peer, machine.start(now))

    def send_response(
        self, key: TransactionKey, response: Response, now: float
    ) -> list[LayerEvent]:
        """Send the TU's ``response`` in server transaction ``key``. Raises
        LocalProtocolError when there is no such live transaction (after Timer L the TU
        sends its 2xx retransmissions itself) or its state forbids the response."""
        machine = self._transactions.get(key)
        if not isinstance(machine, ServerInviteTransaction | ServerNonInviteTransaction):
            raise LocalProtocolError(f"no live server transaction {key}")
        return self._translate(key, machine.peer, machine.send_response(response, now))

    def terminate(self, key: TransactionKey, now: float) -> list[LayerEvent]:
        """Destroy transaction ``key`` at the TU's request (RFC 3261 §9.1: no final
        response 64*T1 after a CANCEL). Unknown keys are ignored."""
        machine = self._transactions.get(key)
        if machine is None:
            return []
        return self._translate(key, machine.peer, machine.terminate(now))

    # -- from the owner

    def on_timer(self, key: TransactionKey, name: TimerName, now: float) -> list[LayerEvent]:
        """Timer (key, name) is due. Timers of gone transactions are ignored."""
        machine = self._transactions.get(key)
        if machine is None:
            return []
        return self._translate(key, machine.peer, machine.on_timer(name, now))

    def on_transport_error(self, key: TransactionKey, now: float) -> list[LayerEvent]:
        """Sending a message of transaction ``key`` failed."""
        machine = self._transactions.get(key)
        if machine is None:
            return []
        return self._translate(key, machine.peer, machine.on_transport_error(now))

    # -- internals

    def _on_ack(
        self, ack: Request, key: TransactionKey, peer: Peer, now: float
    ) -> list[LayerEvent]:
        if key.legacy is not None:
            # RFC 3261 §17.2.3: an RFC 2543 ACK matches the INVITE on everything but the To
            # tag, which must be the one of the response the transaction sent.
            found = self._legacy_invites.get(key.legacy.ack_id)
            if found is None:
                return [AckReceived(request=ack, peer=peer)]
            key = found
        machine = self._transactions.get(key)
        if not isinstance(machine, ServerInviteTransaction) or (
            key.legacy is not None and _response_to_tag(machine) != ack.to.tag
        ):
            # The ACK for a 2xx has a branch of its own (RFC 3261 §13.2.2.4).
            return [AckReceived(request=ack, peer=peer)]
        return self._translate(key, peer, machine.on_request(ack, now))

    def _translate(
        self, key: TransactionKey, peer: Peer, actions: list[TransactionAction]
    ) -> list[LayerEvent]:
        events: list[LayerEvent] = []
        for action in actions:
            match action:
                case SendMessage():
                    events.append(action)
                case StartTimer(name=name, at=at):
                    events.append(StartTransactionTimer(key=key, name=name, at=at))
                case CancelTimer(name=name):
                    events.append(CancelTransactionTimer(key=key, name=name))
                case PassUp(message=message):
                    events.append(self._passed_up(key, peer, message))
                case TimedOut(name=name):
                    events.append(TransactionTimedOut(key=key, name=name))
                case TransportFailed():
                    events.append(TransactionTransportFailed(key=key))
                case Terminated():
                    self._remove(key)
                    events.append(TransactionTerminated(key=key))
                case _:
                    assert_never(action)
        return events

    def _passed_up(
        self, key: TransactionKey, peer: Peer, message: Request | Response
    ) -> LayerEvent:
        if isinstance(message, Response):
            return ResponseReceived(response=message, key=key)
        if message.method == "ACK":
            return AckReceived(request=message, peer=peer)
        if message.method == "CANCEL":
            # RFC 3261 §9.2: the CANCEL cancels the INVITE it matches, method aside.
            invite_key = key.with_method("INVITE")
            if not isinstance(self._transactions.get(invite_key), ServerInviteTransaction):
                return CancelReceived(cancel=message, peer=peer, cancel_key=key, invite_key=None)
            return CancelReceived(cancel=message, peer=peer, cancel_key=key, invite_key=invite_key)
        return RequestReceived(request=message, peer=peer, key=key)

    def _remove(self, key: TransactionKey) -> None:
        self._transactions.pop(key, None)
        if key.legacy is not None and key.side is Side.SERVER:
            ack_id = key.legacy.ack_id
            if self._legacy_invites.get(ack_id) == key:
                del self._legacy_invites[ack_id]


def _response_to_tag(machine: ServerInviteTransaction) -> str | None:
    """The To tag of the last response the INVITE server transaction sent."""
    response = machine.last_response
    if response is None:
        return machine.request.to.tag
    return response.to.tag
