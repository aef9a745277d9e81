"""What the four transaction machines share: the kinds of input, timer bookkeeping,
serialisation, and the dispatch through a ``(state, input) -> (handler, next state)`` table.

Each machine lists its transitions in one table, as h2 does. A pair that is not in the
table is an input the RFC does not expect in that state: a message or timer is ignored
(``[]``), a response from the TU is a bug and raises
:class:`~b2bua.sip.errors.LocalProtocolError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from types import MappingProxyType
from typing import Generic, TypeAlias, TypeVar

from b2bua.sip.address import Peer
from b2bua.sip.errors import LocalProtocolError
from b2bua.sip.message import Request, Response
from b2bua.transaction.actions import (
    CancelTimer,
    SendMessage,
    StartTimer,
    Terminated,
    TransactionAction,
)
from b2bua.transaction.timers import TimerName, TimerSettings


class Input(Enum):
    """Kinds of input a machine reacts to, besides its timers (named by ``TimerName``).

    Responses are classified by status: received from the network by a client machine,
    passed down by the TU to a server machine.
    """

    PROVISIONAL = "1xx"
    SUCCESS = "2xx"
    FAILURE = "3xx-6xx"
    REQUEST = "request retransmission"
    ACK = "ACK"
    TRANSPORT_ERROR = "transport error"


InputKind: TypeAlias = Input | TimerName
Incoming: TypeAlias = Request | Response | None

S = TypeVar("S", bound=Enum)
M = TypeVar("M")

#: A transition's side effects, given the machine, the message (None for a timer or a
#: transport error) and ``now``. The machine is already in the transition's next state.
Handler: TypeAlias = Callable[[M, Incoming, float], list[TransactionAction]]
#: A machine's table: ``(state, input kind) -> (handler, next state)``.
Table: TypeAlias = Mapping[tuple[S, InputKind], tuple[Handler[M], S]]
Step: TypeAlias = Callable[[Incoming, float], list[TransactionAction]]


def lookup(table: Table[S, M], machine: M, state: S, kind: InputKind) -> tuple[Step, S] | None:
    """The transition for ``(state, kind)`` with its handler bound to ``machine``."""
    entry = table.get((state, kind))
    if entry is None:
        return None
    handler, next_state = entry
    return (lambda message, now: handler(machine, message, now)), next_state


def classify(response: Response) -> Input:
    """The input kind of a response by its status class."""
    if not 100 <= response.status <= 699:
        raise LocalProtocolError(f"status {response.status} is not a SIP status code")
    if response.status < 200:
        return Input.PROVISIONAL
    if response.status < 300:
        return Input.SUCCESS
    return Input.FAILURE


class TransactionMachine(Generic[S]):
    """Base of the four machines. Subclasses set ``TERMINATED`` and implement ``_lookup``
    with their table (see :func:`lookup`).

    ``request`` is the request that created the transaction, ``peer`` where it goes to
    (client) or came from (server: responses go back there), ``timers`` the running timers
    and their deadlines.
    """

    TERMINATED: S

    def __init__(self, request: Request, peer: Peer, settings: TimerSettings, state: S) -> None:
        self.request = request
        self.peer = peer
        self.settings = settings
        self.state: S = state
        self.is_reliable = peer.transport.is_reliable
        self._started = False
        self._timers: dict[TimerName, float] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.request.method} {self.state.name}>"

    @property
    def timers(self) -> Mapping[TimerName, float]:
        """The running timers and their deadlines (read-only)."""
        return MappingProxyType(self._timers)

    @property
    def is_terminated(self) -> bool:
        return self.state is self.TERMINATED

    def on_timer(self, name: TimerName, now: float) -> list[TransactionAction]:
        """Timer ``name`` fired. A timer that is not running (cancelled, or already
        replaced) is ignored, so an owner may cancel lazily."""
        if name not in self._timers:
            return []
        del self._timers[name]
        return self._dispatch(name, None, now)

    def on_transport_error(self, now: float) -> list[TransactionAction]:
        """The transport failed to send a message of this transaction."""
        return self._dispatch(Input.TRANSPORT_ERROR, None, now)

    def terminate(self, now: float) -> list[TransactionAction]:
        """The TU destroys the transaction now (RFC 3261 §9.1: no final response 64*T1
        after a CANCEL). Cancels the running timers; nothing when already terminated."""
        if self.is_terminated:
            return []
        return self._terminate()

    # -- for subclasses

    def _begin(self) -> None:
        if self._started:
            raise LocalProtocolError(f"{type(self).__name__} started twice")
        self._started = True

    def _dispatch(self, kind: InputKind, message: Incoming, now: float) -> list[TransactionAction]:
        if not self._started:
            raise LocalProtocolError(f"{type(self).__name__} used before start()")
        transition = self._lookup(kind)
        if transition is None:
            return []
        step, next_state = transition
        self.state = next_state
        return step(message, now)

    def _lookup(self, kind: InputKind) -> tuple[Step, S] | None:
        raise NotImplementedError

    def _send(self, message: Request | Response, data: bytes | None = None) -> SendMessage:
        """Send ``message``; ``data`` are its bytes when already serialised."""
        return SendMessage(
            message=message, data=message.to_bytes() if data is None else data, peer=self.peer
        )

    def _start_timer(self, name: TimerName, now: float, duration: float) -> list[TransactionAction]:
        """Start ``name`` to fire after ``duration``; a zero duration fires it at once
        (RFC 3261 section 17: Timers D, I, J, K are zero on reliable transports)."""
        if duration <= 0:
            self._timers.pop(name, None)
            return self._dispatch(name, None, now)
        at = now + duration
        self._timers[name] = at
        return [StartTimer(name=name, at=at)]

    def _start_default(self, name: TimerName, now: float) -> list[TransactionAction]:
        return self._start_timer(name, now, self.settings.duration(name, reliable=self.is_reliable))

    def _cancel(self, *names: TimerName) -> list[TransactionAction]:
        running = [name for name in names if name in self._timers]
        for name in running:
            del self._timers[name]
        return [CancelTimer(name=name) for name in running]

    def _terminate(self) -> list[TransactionAction]:
        """Enter Terminated: cancel every running timer, then say so."""
        self.state = self.TERMINATED
        return [*self._cancel(*list(self._timers)), Terminated()]
