"""The INVITE client transaction over every (state, input) pair, UDP and TCP."""

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
    SendMessage,
    StartTimer,
    Terminated,
    TimedOut,
    TransportFailed,
)
from b2bua.transaction.client_invite import (
    ClientInviteState,
    ClientInviteTransaction,
    build_ack,
)
from b2bua.transaction.timers import TimerName, TimerSettings
from tests.unit.transaction.factories import (
    PEERS,
    UDP_PEER,
    Sent,
    ack_for,
    invite,
    parse_request,
    request,
    response,
    sends,
    wire,
)

S = ClientInviteState
T_STATE = 1.0  # when the machine reached the state under test
T_INPUT = 2.0  # when a message or transport error arrives
STATUS = {"1xx": 180, "2xx": 200, "3xx": 302, "4xx": 486, "5xx": 503, "6xx": 603}
INPUTS: list[str | TimerName] = [*STATUS, *TimerName, "transport_error"]
FINALS = ("3xx", "4xx", "5xx", "6xx")


@dataclass
class Setup:
    machine: ClientInviteTransaction
    invite: Request
    transport: Transport
    final: Response | None = None

    @property
    def udp(self) -> bool:
        return self.transport is Transport.UDP


def build(state: ClientInviteState, transport: Transport) -> Setup:
    inv = invite(transport=transport)
    machine = ClientInviteTransaction(inv, PEERS[transport], TimerSettings())
    machine.start(0.0)
    setup = Setup(machine, inv, transport)
    match state:
        case S.CALLING:
            pass
        case S.PROCEEDING:
            machine.on_response(response(inv, 180), T_STATE)
        case S.ACCEPTED:
            setup.final = response(inv, 200)
            machine.on_response(setup.final, T_STATE)
        case S.COMPLETED:
            setup.final = response(inv, 486)
            machine.on_response(setup.final, T_STATE)
        case S.TERMINATED:
            machine.on_transport_error(T_STATE)
    assert machine.state is state
    return setup


@dataclass
class Ctx:
    setup: Setup
    now: float
    message: Response | None

    def sent(self, data: bytes) -> Sent:
        return Sent(data, PEERS[self.setup.transport])

    def ack(self, final: Response) -> Sent:
        return self.sent(ack_for(self.setup.invite, final).to_bytes())

    @property
    def up(self) -> PassUp:
        assert self.message is not None
        return PassUp(message=self.message)

    def cancel_a(self) -> list[object]:
        return [CancelTimer(name=TimerName.A)] if self.setup.udp else []


Expected = tuple[ClientInviteState, list[object]]


def _final(ctx: Ctx, *, from_calling: bool) -> Expected:
    assert ctx.message is not None
    cancels = [*ctx.cancel_a(), CancelTimer(name=TimerName.B)] if from_calling else []
    head = [*cancels, ctx.ack(ctx.message), PassUp(message=ctx.message)]
    if ctx.setup.udp:
        return S.COMPLETED, [*head, StartTimer(name=TimerName.D, at=ctx.now + 32.0)]
    return S.TERMINATED, [*head, Terminated()]


def _calling_final(ctx: Ctx) -> Expected:
    return _final(ctx, from_calling=True)


def _proceeding_final(ctx: Ctx) -> Expected:
    return _final(ctx, from_calling=False)


def _completed_retransmission(ctx: Ctx) -> Expected:
    assert ctx.setup.final is not None
    return S.COMPLETED, [ctx.ack(ctx.setup.final)]


EXPECTED: dict[tuple[ClientInviteState, str | TimerName], Callable[[Ctx], Expected]] = {
    (S.CALLING, "1xx"): lambda c: (
        S.PROCEEDING,
        [*c.cancel_a(), CancelTimer(name=TimerName.B), c.up],
    ),
    (S.CALLING, "2xx"): lambda c: (
        S.ACCEPTED,
        [
            *c.cancel_a(),
            CancelTimer(name=TimerName.B),
            c.up,
            StartTimer(name=TimerName.M, at=c.now + 32.0),
        ],
    ),
    **{(S.CALLING, k): _calling_final for k in FINALS},
    # Over TCP Timer A is not running, so this pair falls to "ignored" there.
    (S.CALLING, TimerName.A): lambda c: (
        S.CALLING,
        [c.sent(c.setup.invite.to_bytes()), StartTimer(name=TimerName.A, at=1.5)],
    ),
    (S.CALLING, TimerName.B): lambda c: (
        S.TERMINATED,
        [TimedOut(name=TimerName.B), *c.cancel_a(), Terminated()],
    ),
    (S.CALLING, "transport_error"): lambda c: (
        S.TERMINATED,
        [TransportFailed(), *c.cancel_a(), CancelTimer(name=TimerName.B), Terminated()],
    ),
    (S.PROCEEDING, "1xx"): lambda c: (S.PROCEEDING, [c.up]),
    (S.PROCEEDING, "2xx"): lambda c: (
        S.ACCEPTED,
        [c.up, StartTimer(name=TimerName.M, at=c.now + 32.0)],
    ),
    **{(S.PROCEEDING, k): _proceeding_final for k in FINALS},
    (S.ACCEPTED, "2xx"): lambda c: (S.ACCEPTED, [c.up]),
    (S.ACCEPTED, TimerName.M): lambda c: (S.TERMINATED, [Terminated()]),
    **{(S.COMPLETED, k): _completed_retransmission for k in FINALS},
    (S.COMPLETED, TimerName.D): lambda c: (S.TERMINATED, [Terminated()]),
    (S.COMPLETED, "transport_error"): lambda c: (
        S.TERMINATED,
        [TransportFailed(), CancelTimer(name=TimerName.D), Terminated()],
    ),
}


def _cases() -> list[tuple[Transport, ClientInviteState, str | TimerName]]:
    return [
        (transport, state, kind)
        for transport, state, kind in itertools.product(Transport, S, INPUTS)
        # Over TCP, Completed lasts no time at all (Timer D is zero).
        if not (transport is Transport.TCP and state is S.COMPLETED)
    ]


@pytest.mark.parametrize(("transport", "state", "kind"), _cases())
def test_every_state_and_input(
    transport: Transport, state: ClientInviteState, kind: str | TimerName
) -> None:
    setup = build(state, transport)
    machine = setup.machine
    message: Response | None = None
    if isinstance(kind, TimerName):
        running = kind in machine.timers
        now = machine.timers.get(kind, T_INPUT)
        actions = machine.on_timer(kind, now)
    elif kind == "transport_error":
        running = True
        now = T_INPUT
        actions = machine.on_transport_error(now)
    else:
        running = True
        now = T_INPUT
        message = response(setup.invite, STATUS[kind])
        actions = machine.on_response(message, now)
    expectation = EXPECTED.get((state, kind)) if running else None
    if expectation is None:
        assert actions == []
        assert machine.state is state
        return
    next_state, expected = expectation(Ctx(setup, now, message))
    assert wire(actions) == expected
    assert machine.state is next_state


def test_timer_a_over_udp_runs_only_in_calling_and_b_in_calling() -> None:
    setup = build(S.CALLING, Transport.UDP)
    assert dict(setup.machine.timers) == {TimerName.A: 0.5, TimerName.B: 32.0}
    tcp = build(S.CALLING, Transport.TCP)
    assert dict(tcp.machine.timers) == {TimerName.B: 32.0}


def test_start_sends_the_invite_once_serialised() -> None:
    inv = invite()
    machine = ClientInviteTransaction(inv, UDP_PEER, TimerSettings())
    actions = machine.start(0.0)
    assert wire(actions) == [
        Sent(inv.to_bytes(), UDP_PEER),
        StartTimer(name=TimerName.A, at=0.5),
        StartTimer(name=TimerName.B, at=32.0),
    ]
    first = sends(actions)[0]
    assert first.message is inv
    again = sends(machine.on_timer(TimerName.A, 0.5))[0]
    assert again.data is first.data  # the same bytes, not a new serialisation


def test_ack_retransmission_reuses_the_same_bytes() -> None:
    setup = build(S.CALLING, Transport.UDP)
    final = response(setup.invite, 404)
    first = sends(setup.machine.on_response(final, 1.0))[0]
    again = sends(setup.machine.on_response(response(setup.invite, 404), 1.5))[0]
    assert again.data is first.data
    assert first.message is setup.machine.ack
    assert isinstance(first.message, Request)
    assert first.message.method == "ACK"


def test_accepted_passes_up_2xx_of_other_forks() -> None:
    setup = build(S.ACCEPTED, Transport.UDP)
    fork = response(setup.invite, 200, to_tag="fork-2")
    assert setup.machine.on_response(fork, 3.0) == [PassUp(message=fork)]


def test_build_ack_follows_rfc3261_17_1_1_3() -> None:
    inv = request(
        "INVITE",
        routes=("<sip:p1.example.net;lr>", "<sip:p2.example.net;lr>"),
        extra_vias=("SIP/2.0/UDP 198.51.100.1;branch=z9hG4bK-upstream",),
        cseq=4711,
    )
    final = response(inv, 486, to_tag="callee-tag")
    ack = build_ack(inv, final)
    expected = parse_request(
        "ACK sip:bob@example.com SIP/2.0\n"
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-inv-1\n"
        "Route: <sip:p1.example.net;lr>\n"
        "Route: <sip:p2.example.net;lr>\n"
        "Max-Forwards: 70\n"
        "From: Alice <sip:alice@example.org>;tag=from-1\n"
        "To: Bob <sip:bob@example.com>;tag=callee-tag\n"
        "Call-ID: call-1@192.0.2.10\n"
        "CSeq: 4711 ACK\n"
        "Content-Length: 0\n\n"
    )
    assert ack.to_bytes() == expected.to_bytes()
    assert len(ack.vias) == 1


def test_misuse_raises() -> None:
    with pytest.raises(LocalProtocolError):
        ClientInviteTransaction(request("BYE"), UDP_PEER, TimerSettings())
    machine = ClientInviteTransaction(invite(), UDP_PEER, TimerSettings())
    with pytest.raises(LocalProtocolError):
        machine.on_response(response(machine.request, 180), 0.0)
    machine.start(0.0)
    with pytest.raises(LocalProtocolError):
        machine.start(0.1)


def test_status_outside_sip_range_is_ignored() -> None:
    setup = build(S.CALLING, Transport.UDP)
    odd = response(setup.invite, 200)
    odd.status = 700  # the parser refuses it; a TU bug could build one
    assert setup.machine.on_response(odd, T_INPUT) == []
    assert setup.machine.state is S.CALLING


def test_terminate_cancels_running_timers() -> None:
    setup = build(S.CALLING, Transport.UDP)
    assert setup.machine.terminate(5.0) == [
        CancelTimer(name=TimerName.A),
        CancelTimer(name=TimerName.B),
        Terminated(),
    ]
    assert setup.machine.terminate(6.0) == []
    assert setup.machine.is_terminated


def test_send_message_targets_the_peer() -> None:
    setup = build(S.CALLING, Transport.TCP)
    action = setup.machine.on_response(response(setup.invite, 486), T_INPUT)
    ack = [a for a in action if isinstance(a, SendMessage)]
    assert [a.peer for a in ack] == [PEERS[Transport.TCP]]
