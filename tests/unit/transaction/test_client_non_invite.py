"""The non-INVITE client transaction over every (state, input) pair, UDP and TCP."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from b2bua.sip.address import Transport
from b2bua.sip.errors import LocalProtocolError
from b2bua.sip.message import Request, Response
from b2bua.transaction.actions import (
    CancelTimer,
    PassUp,
    StartTimer,
    Terminated,
    TimedOut,
    TransportFailed,
)
from b2bua.transaction.client_non_invite import (
    ClientNonInviteState,
    ClientNonInviteTransaction,
)
from b2bua.transaction.timers import TimerName, TimerSettings
from tests.unit.transaction.factories import (
    PEERS,
    UDP_PEER,
    Sent,
    invite,
    request,
    response,
    sends,
    wire,
)

S = ClientNonInviteState
T_STATE = 0.25  # when the machine reached the state under test (before Timer E's 0.5)
T_INPUT = 0.4  # when a message or transport error arrives
STATUS = {"1xx": 100, "2xx": 200, "3xx": 302, "4xx": 404, "5xx": 503, "6xx": 603}
INPUTS: list[str | TimerName] = [*STATUS, *TimerName, "transport_error"]
FINALS = ("2xx", "3xx", "4xx", "5xx", "6xx")


@dataclass
class Setup:
    machine: ClientNonInviteTransaction
    request: Request
    transport: Transport

    @property
    def udp(self) -> bool:
        return self.transport is Transport.UDP


def build(state: ClientNonInviteState, transport: Transport) -> Setup:
    req = request("BYE", branch="z9hG4bK-bye-1", to_tag="to-1", cseq=2, transport=transport)
    machine = ClientNonInviteTransaction(req, PEERS[transport], TimerSettings())
    machine.start(0.0)
    match state:
        case S.TRYING:
            pass
        case S.PROCEEDING:
            machine.on_response(response(req, 100), T_STATE)
        case S.COMPLETED:
            machine.on_response(response(req, 200), T_STATE)
        case S.TERMINATED:
            machine.on_transport_error(T_STATE)
    assert machine.state is state
    return Setup(machine, req, transport)


@dataclass
class Ctx:
    setup: Setup
    now: float
    message: Response | None

    @property
    def up(self) -> PassUp:
        assert self.message is not None
        return PassUp(message=self.message)

    def cancel_e(self) -> list[object]:
        return [CancelTimer(name=TimerName.E)] if self.setup.udp else []

    def resent(self) -> Sent:
        return Sent(self.setup.request.to_bytes(), PEERS[self.setup.transport])


Expected = tuple[ClientNonInviteState, list[object]]


def _final(c: Ctx) -> Expected:
    head = [*c.cancel_e(), CancelTimer(name=TimerName.F), c.up]
    if c.setup.udp:
        return S.COMPLETED, [*head, StartTimer(name=TimerName.K, at=c.now + 5.0)]
    return S.TERMINATED, [*head, Terminated()]


def _timeout(c: Ctx) -> Expected:
    return S.TERMINATED, [TimedOut(name=TimerName.F), *c.cancel_e(), Terminated()]


def _transport_error(c: Ctx) -> Expected:
    return S.TERMINATED, [
        TransportFailed(),
        *c.cancel_e(),
        CancelTimer(name=TimerName.F),
        Terminated(),
    ]


EXPECTED: dict[tuple[ClientNonInviteState, str | TimerName], Callable[[Ctx], Expected]] = {
    (S.TRYING, "1xx"): lambda c: (S.PROCEEDING, [c.up]),
    **{(S.TRYING, k): _final for k in FINALS},
    # Timer E runs over UDP only; over TCP these pairs fall to "ignored".
    (S.TRYING, TimerName.E): lambda c: (
        S.TRYING,
        [c.resent(), StartTimer(name=TimerName.E, at=1.5)],
    ),
    (S.TRYING, TimerName.F): _timeout,
    (S.TRYING, "transport_error"): _transport_error,
    (S.PROCEEDING, "1xx"): lambda c: (S.PROCEEDING, [c.up]),
    **{(S.PROCEEDING, k): _final for k in FINALS},
    # RFC 3261 §17.1.2.2: in Proceeding, Timer E is reset to T2.
    (S.PROCEEDING, TimerName.E): lambda c: (
        S.PROCEEDING,
        [c.resent(), StartTimer(name=TimerName.E, at=0.5 + 4.0)],
    ),
    (S.PROCEEDING, TimerName.F): _timeout,
    (S.PROCEEDING, "transport_error"): _transport_error,
    (S.COMPLETED, TimerName.K): lambda c: (S.TERMINATED, [Terminated()]),
}


def _cases() -> list[tuple[Transport, ClientNonInviteState, str | TimerName]]:
    return [
        (transport, state, kind)
        for transport, state, kind in itertools.product(Transport, S, INPUTS)
        if not (transport is Transport.TCP and state is S.COMPLETED)  # Timer K is zero
    ]


@pytest.mark.parametrize(("transport", "state", "kind"), _cases())
def test_every_state_and_input(
    transport: Transport, state: ClientNonInviteState, kind: str | TimerName
) -> None:
    setup = build(state, transport)
    machine = setup.machine
    message: Response | None = None
    running = True
    now = T_INPUT
    if isinstance(kind, TimerName):
        running = kind in machine.timers
        now = machine.timers.get(kind, T_INPUT)
        actions = machine.on_timer(kind, now)
    elif kind == "transport_error":
        actions = machine.on_transport_error(now)
    else:
        message = response(setup.request, STATUS[kind])
        actions = machine.on_response(message, now)
    expectation = EXPECTED.get((state, kind)) if running else None
    if expectation is None:
        assert actions == []
        assert machine.state is state
        return
    next_state, expected = expectation(Ctx(setup, now, message))
    assert wire(actions) == expected
    assert machine.state is next_state


def test_start_sends_once_and_retransmits_the_same_bytes() -> None:
    req = request("OPTIONS", branch="z9hG4bK-opt")
    machine = ClientNonInviteTransaction(req, UDP_PEER, TimerSettings())
    actions = machine.start(0.0)
    assert wire(actions) == [
        Sent(req.to_bytes(), UDP_PEER),
        StartTimer(name=TimerName.E, at=0.5),
        StartTimer(name=TimerName.F, at=32.0),
    ]
    again = sends(machine.on_timer(TimerName.E, 0.5))
    assert again[0].data is sends(actions)[0].data


def test_tcp_starts_only_timer_f() -> None:
    setup = build(S.TRYING, Transport.TCP)
    assert dict(setup.machine.timers) == {TimerName.F: 32.0}


def test_misuse_raises() -> None:
    with pytest.raises(LocalProtocolError):
        ClientNonInviteTransaction(invite(), UDP_PEER, TimerSettings())
    with pytest.raises(LocalProtocolError):
        ClientNonInviteTransaction(request("ACK"), UDP_PEER, TimerSettings())
    machine = ClientNonInviteTransaction(request("OPTIONS"), UDP_PEER, TimerSettings())
    with pytest.raises(LocalProtocolError):
        machine.on_transport_error(0.0)  # before start()
