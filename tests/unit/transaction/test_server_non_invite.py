"""The non-INVITE server transaction over every (state, input) pair, UDP and TCP."""

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
    TransportFailed,
)
from b2bua.transaction.server_non_invite import (
    ServerNonInviteState,
    ServerNonInviteTransaction,
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

S = ServerNonInviteState
T_STATE = 1.0
T_INPUT = 2.0
TU = {"tu_100": 100, "tu_183": 183, "tu_200": 200, "tu_302": 302, "tu_404": 404, "tu_603": 603}
INPUTS: list[str | TimerName] = ["request", *TU, *TimerName, "transport_error"]
FINALS = ("tu_200", "tu_302", "tu_404", "tu_603")


def bye(transport: Transport) -> Request:
    return request("BYE", branch="z9hG4bK-bye-9", to_tag="to-1", cseq=3, transport=transport)


@dataclass
class Setup:
    machine: ServerNonInviteTransaction
    request: Request
    transport: Transport
    last: Response | None = None

    @property
    def udp(self) -> bool:
        return self.transport is Transport.UDP


def build(state: ServerNonInviteState, transport: Transport) -> Setup:
    req = bye(transport)
    machine = ServerNonInviteTransaction(req, PEERS[transport], TimerSettings())
    machine.start(0.0)
    setup = Setup(machine, req, transport)
    match state:
        case S.TRYING:
            pass
        case S.PROCEEDING:
            setup.last = response(req, 100)
            machine.send_response(setup.last, T_STATE)
        case S.COMPLETED:
            setup.last = response(req, 200)
            machine.send_response(setup.last, T_STATE)
        case S.TERMINATED:
            machine.send_response(response(req, 100), T_STATE)
            machine.on_transport_error(T_STATE)
    assert machine.state is state
    return setup


@dataclass
class Ctx:
    setup: Setup
    now: float
    message: Request | Response | None

    def sent(self, message: Request | Response | None) -> Sent:
        assert message is not None
        return Sent(message.to_bytes(), PEERS[self.setup.transport])


Expected = tuple[ServerNonInviteState, list[object]]


def _final(c: Ctx) -> Expected:
    if c.setup.udp:
        return S.COMPLETED, [c.sent(c.message), StartTimer(name=TimerName.J, at=c.now + 32.0)]
    return S.TERMINATED, [c.sent(c.message), Terminated()]


EXPECTED: dict[tuple[ServerNonInviteState, str | TimerName], Callable[[Ctx], Expected]] = {
    # RFC 3261 §17.2.2: retransmissions in Trying are discarded (not listed).
    (S.TRYING, "tu_100"): lambda c: (S.PROCEEDING, [c.sent(c.message)]),
    (S.TRYING, "tu_183"): lambda c: (S.PROCEEDING, [c.sent(c.message)]),
    **{(S.TRYING, k): _final for k in FINALS},
    (S.PROCEEDING, "request"): lambda c: (S.PROCEEDING, [c.sent(c.setup.last)]),
    (S.PROCEEDING, "tu_100"): lambda c: (S.PROCEEDING, [c.sent(c.message)]),
    (S.PROCEEDING, "tu_183"): lambda c: (S.PROCEEDING, [c.sent(c.message)]),
    **{(S.PROCEEDING, k): _final for k in FINALS},
    (S.PROCEEDING, "transport_error"): lambda c: (S.TERMINATED, [TransportFailed(), Terminated()]),
    (S.COMPLETED, "request"): lambda c: (S.COMPLETED, [c.sent(c.setup.last)]),
    (S.COMPLETED, TimerName.J): lambda c: (S.TERMINATED, [Terminated()]),
    (S.COMPLETED, "transport_error"): lambda c: (
        S.TERMINATED,
        [TransportFailed(), CancelTimer(name=TimerName.J), Terminated()],
    ),
}


def _cases() -> list[tuple[Transport, ServerNonInviteState, str | TimerName]]:
    return [
        (transport, state, kind)
        for transport, state, kind in itertools.product(Transport, S, INPUTS)
        if not (transport is Transport.TCP and state is S.COMPLETED)  # Timer J is zero
    ]


@pytest.mark.parametrize(("transport", "state", "kind"), _cases())
def test_every_state_and_input(
    transport: Transport, state: ServerNonInviteState, kind: str | TimerName
) -> None:
    setup = build(state, transport)
    machine = setup.machine
    message: Request | Response | None = None
    now = T_INPUT
    if isinstance(kind, TimerName):
        running = kind in machine.timers
        now = machine.timers.get(kind, T_INPUT)
        expectation = EXPECTED.get((state, kind)) if running else None
        actions = machine.on_timer(kind, now)
    elif kind in TU:
        message = response(setup.request, TU[kind])
        expectation = EXPECTED.get((state, kind))
        if expectation is None:
            with pytest.raises(LocalProtocolError):
                machine.send_response(message, now)
            assert machine.state is state
            return
        actions = machine.send_response(message, now)
    elif kind == "transport_error":
        expectation = EXPECTED.get((state, kind))
        actions = machine.on_transport_error(now)
    else:
        message = bye(transport)
        expectation = EXPECTED.get((state, kind))
        actions = machine.on_request(message, now)
    if expectation is None:
        assert actions == []
        assert machine.state is state
        return
    next_state, expected = expectation(Ctx(setup, now, message))
    assert wire(actions) == expected
    assert machine.state is next_state


def test_start_passes_the_request_up_and_starts_no_timer() -> None:
    req = bye(Transport.UDP)
    machine = ServerNonInviteTransaction(req, UDP_PEER, TimerSettings())
    assert machine.start(0.0) == [PassUp(message=req)]
    assert machine.timers == {}


def test_retransmissions_reuse_the_same_bytes() -> None:
    setup = build(S.COMPLETED, Transport.UDP)
    first = sends(setup.machine.on_request(bye(Transport.UDP), 2.0))[0]
    second = sends(setup.machine.on_request(bye(Transport.UDP), 3.0))[0]
    assert first.data is second.data
    assert first.message is setup.last


def test_misuse_raises() -> None:
    with pytest.raises(LocalProtocolError):
        ServerNonInviteTransaction(invite(), UDP_PEER, TimerSettings())
    setup = build(S.TRYING, Transport.UDP)
    with pytest.raises(LocalProtocolError):
        setup.machine.on_request(request("OPTIONS"), 1.0)
