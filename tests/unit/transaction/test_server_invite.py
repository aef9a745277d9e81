"""The INVITE server transaction over every (state, input) pair, UDP and TCP."""

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
from b2bua.transaction.server_invite import ServerInviteState, ServerInviteTransaction
from b2bua.transaction.timers import TimerName, TimerSettings
from tests.unit.transaction.factories import (
    PEERS,
    UDP_PEER,
    Sent,
    ack_for,
    invite,
    request,
    response,
    sends,
    wire,
)

S = ServerInviteState
T_STATE = 0.1  # when the machine reached the state under test (before the 200 ms TRYING)
T_INPUT = 0.15  # when a message, a TU response or a transport error arrives
TU = {"tu_100": 100, "tu_180": 180, "tu_200": 200, "tu_302": 302, "tu_486": 486, "tu_603": 603}
INPUTS: list[str | TimerName] = ["request", "ack", *TU, *TimerName, "transport_error"]


@dataclass
class Setup:
    machine: ServerInviteTransaction
    invite: Request
    transport: Transport
    final: Response | None = None

    @property
    def udp(self) -> bool:
        return self.transport is Transport.UDP


def build(state: ServerInviteState, transport: Transport) -> Setup:
    inv = invite(transport=transport)
    machine = ServerInviteTransaction(inv, PEERS[transport], TimerSettings())
    machine.start(0.0)
    setup = Setup(machine, inv, transport)
    match state:
        case S.PROCEEDING:
            pass
        case S.COMPLETED:
            setup.final = response(inv, 486)
            machine.send_response(setup.final, T_STATE)
        case S.CONFIRMED:
            setup.final = response(inv, 486)
            machine.send_response(setup.final, T_STATE)
            machine.on_request(ack_for(inv, setup.final), T_STATE)
        case S.ACCEPTED:
            setup.final = response(inv, 200)
            machine.send_response(setup.final, T_STATE)
        case S.TERMINATED:
            machine.send_response(response(inv, 486), T_STATE)
            machine.on_timer(TimerName.H, T_STATE + 32)
    assert machine.state is state
    return setup


@dataclass
class Ctx:
    setup: Setup
    now: float
    message: Request | Response | None

    def sent(self, message: Request | Response) -> Sent:
        return Sent(message.to_bytes(), PEERS[self.setup.transport])

    @property
    def sent_input(self) -> Sent:
        assert self.message is not None
        return self.sent(self.message)

    @property
    def sent_final(self) -> Sent:
        assert self.setup.final is not None
        return self.sent(self.setup.final)

    @property
    def trying(self) -> Sent:
        return self.sent(response(self.setup.invite, 100))

    def cancel_g(self) -> list[object]:
        return [CancelTimer(name=TimerName.G)] if self.setup.udp else []


Expected = tuple[ServerInviteState, list[object]]
CANCEL_TRYING = CancelTimer(name=TimerName.TRYING)


def _provisional(c: Ctx) -> Expected:
    return S.PROCEEDING, [CANCEL_TRYING, c.sent_input]


def _non_2xx_final(c: Ctx) -> Expected:
    g = [StartTimer(name=TimerName.G, at=c.now + 0.5)] if c.setup.udp else []
    return S.COMPLETED, [
        CANCEL_TRYING,
        c.sent_input,
        *g,
        StartTimer(name=TimerName.H, at=c.now + 32.0),
    ]


def _ack_in_completed(c: Ctx) -> Expected:
    if c.setup.udp:
        return S.CONFIRMED, [
            CancelTimer(name=TimerName.G),
            CancelTimer(name=TimerName.H),
            StartTimer(name=TimerName.I, at=c.now + 5.0),
        ]
    return S.TERMINATED, [CancelTimer(name=TimerName.H), Terminated()]


EXPECTED: dict[tuple[ServerInviteState, str | TimerName], Callable[[Ctx], Expected]] = {
    # No response yet: a retransmitted INVITE gets 100 Trying at once.
    (S.PROCEEDING, "request"): lambda c: (S.PROCEEDING, [CANCEL_TRYING, c.trying]),
    (S.PROCEEDING, TimerName.TRYING): lambda c: (S.PROCEEDING, [c.trying]),
    (S.PROCEEDING, "tu_100"): _provisional,
    (S.PROCEEDING, "tu_180"): _provisional,
    (S.PROCEEDING, "tu_200"): lambda c: (
        S.ACCEPTED,
        [CANCEL_TRYING, c.sent_input, StartTimer(name=TimerName.L, at=c.now + 32.0)],
    ),
    (S.PROCEEDING, "tu_302"): _non_2xx_final,
    (S.PROCEEDING, "tu_486"): _non_2xx_final,
    (S.PROCEEDING, "tu_603"): _non_2xx_final,
    (S.PROCEEDING, "transport_error"): lambda c: (S.PROCEEDING, [TransportFailed()]),
    (S.COMPLETED, "request"): lambda c: (S.COMPLETED, [c.sent_final]),
    (S.COMPLETED, "ack"): _ack_in_completed,
    # Timer G runs over UDP only; over TCP this pair falls to "ignored".
    (S.COMPLETED, TimerName.G): lambda c: (
        S.COMPLETED,
        [c.sent_final, StartTimer(name=TimerName.G, at=c.now + 1.0)],
    ),
    (S.COMPLETED, TimerName.H): lambda c: (
        S.TERMINATED,
        [TimedOut(name=TimerName.H), *c.cancel_g(), Terminated()],
    ),
    (S.COMPLETED, "transport_error"): lambda c: (S.COMPLETED, [TransportFailed()]),
    (S.CONFIRMED, TimerName.I): lambda c: (S.TERMINATED, [Terminated()]),
    # RFC 6026 §7.1: in Accepted, INVITE retransmissions are absorbed (not listed), ACKs
    # go to the TU, and the TU's 2xx retransmissions are sent.
    (S.ACCEPTED, "ack"): lambda c: (
        S.ACCEPTED,
        [PassUp(message=c.message)] if c.message is not None else [],
    ),
    (S.ACCEPTED, "tu_200"): lambda c: (S.ACCEPTED, [c.sent_input]),
    (S.ACCEPTED, "transport_error"): lambda c: (S.ACCEPTED, [TransportFailed()]),
    (S.ACCEPTED, TimerName.L): lambda c: (S.TERMINATED, [Terminated()]),
}


def _cases() -> list[tuple[Transport, ServerInviteState, str | TimerName]]:
    return [
        (transport, state, kind)
        for transport, state, kind in itertools.product(Transport, S, INPUTS)
        if not (transport is Transport.TCP and state is S.CONFIRMED)  # Timer I is zero
    ]


@pytest.mark.parametrize(("transport", "state", "kind"), _cases())
def test_every_state_and_input(
    transport: Transport, state: ServerInviteState, kind: str | TimerName
) -> None:
    setup = build(state, transport)
    machine = setup.machine
    message: Request | Response | None = None
    running = True
    now = T_INPUT
    if isinstance(kind, TimerName):
        running = kind in machine.timers
        now = machine.timers.get(kind, T_INPUT)
        expectation = EXPECTED.get((state, kind)) if running else None
        actions = machine.on_timer(kind, now)
    elif kind in TU:
        message = response(setup.invite, TU[kind], to_tag="to-2")
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
        final = setup.final or response(setup.invite, 486)
        message = ack_for(setup.invite, final) if kind == "ack" else invite(transport=transport)
        expectation = EXPECTED.get((state, kind))
        actions = machine.on_request(message, now)
    if expectation is None:
        assert actions == []
        assert machine.state is state
        return
    next_state, expected = expectation(Ctx(setup, now, message))
    assert wire(actions) == expected
    assert machine.state is next_state


def test_start_passes_the_invite_up_and_arms_trying() -> None:
    inv = invite()
    machine = ServerInviteTransaction(inv, UDP_PEER, TimerSettings())
    assert machine.start(0.0) == [
        PassUp(message=inv),
        StartTimer(name=TimerName.TRYING, at=0.2),
    ]


def test_retransmitted_invite_gets_the_last_provisional_same_bytes() -> None:
    setup = build(S.PROCEEDING, Transport.UDP)
    ringing = response(setup.invite, 180)
    first = sends(setup.machine.send_response(ringing, T_STATE))[0]
    again = sends(setup.machine.on_request(invite(), 0.5))
    assert [a.data for a in again] == [first.data]
    assert again[0].data is first.data
    assert again[0].message is ringing


def test_non_2xx_retransmissions_reuse_the_same_bytes() -> None:
    setup = build(S.COMPLETED, Transport.UDP)
    by_timer = sends(setup.machine.on_timer(TimerName.G, T_STATE + 0.5))[0]
    by_request = sends(setup.machine.on_request(invite(), 0.7))[0]
    assert by_timer.data is by_request.data
    assert by_timer.message is setup.final


def test_tu_may_send_its_own_100_trying() -> None:
    setup = build(S.PROCEEDING, Transport.UDP)
    trying = response(setup.invite, 100)
    actions = setup.machine.send_response(trying, 0.05)
    assert wire(actions) == [CANCEL_TRYING, Sent(trying.to_bytes(), UDP_PEER)]
    assert setup.machine.timers == {}


def test_ack_in_accepted_is_passed_up_every_time() -> None:
    setup = build(S.ACCEPTED, Transport.UDP)
    assert setup.final is not None
    ack = ack_for(setup.invite, setup.final, branch="z9hG4bK-ack-2xx")
    assert setup.machine.on_request(ack, 0.3) == [PassUp(message=ack)]
    assert setup.machine.on_request(ack, 0.4) == [PassUp(message=ack)]
    assert setup.machine.state is S.ACCEPTED


def test_misuse_raises() -> None:
    with pytest.raises(LocalProtocolError):
        ServerInviteTransaction(request("OPTIONS"), UDP_PEER, TimerSettings())
    setup = build(S.PROCEEDING, Transport.UDP)
    with pytest.raises(LocalProtocolError):
        setup.machine.on_request(request("BYE"), 0.1)
    odd = response(setup.invite, 200)
    odd.status = 99
    with pytest.raises(LocalProtocolError):
        setup.machine.send_response(odd, 0.1)
    with pytest.raises(LocalProtocolError):
        setup.machine.start(0.1)
