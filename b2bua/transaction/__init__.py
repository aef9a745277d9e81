"""The transaction layer: RFC 3261 section 17 with the RFC 6026 changes, sans-IO."""

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
from b2bua.transaction.client_invite import ClientInviteState, ClientInviteTransaction, build_ack
from b2bua.transaction.client_non_invite import ClientNonInviteState, ClientNonInviteTransaction
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
from b2bua.transaction.keys import LegacyId, Side, TransactionKey
from b2bua.transaction.layer import (
    ClientTransaction,
    ServerTransaction,
    Transaction,
    TransactionLayer,
)
from b2bua.transaction.server_invite import ServerInviteState, ServerInviteTransaction
from b2bua.transaction.server_non_invite import ServerNonInviteState, ServerNonInviteTransaction
from b2bua.transaction.timers import TimerName, TimerSettings

__all__ = [
    "AckReceived",
    "CancelReceived",
    "CancelTimer",
    "CancelTransactionTimer",
    "ClientInviteState",
    "ClientInviteTransaction",
    "ClientNonInviteState",
    "ClientNonInviteTransaction",
    "ClientTransaction",
    "LayerEvent",
    "LegacyId",
    "PassUp",
    "RequestReceived",
    "ResponseReceived",
    "SendMessage",
    "ServerInviteState",
    "ServerInviteTransaction",
    "ServerNonInviteState",
    "ServerNonInviteTransaction",
    "ServerTransaction",
    "Side",
    "StartTimer",
    "StartTransactionTimer",
    "StrayResponse",
    "Terminated",
    "TimedOut",
    "TimerName",
    "TimerSettings",
    "Transaction",
    "TransactionAction",
    "TransactionKey",
    "TransactionLayer",
    "TransactionTerminated",
    "TransactionTimedOut",
    "TransactionTransportFailed",
    "TransportFailed",
    "build_ack",
]
