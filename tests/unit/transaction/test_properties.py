"""Hypothesis: random input sequences for every machine, over UDP and TCP, checking the
invariants every transaction keeps whatever happens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    TransactionAction,
    TransportFailed,
)
from b2bua.transaction.client_invite import ClientInviteState, ClientInviteTransaction
from b2bua.transaction.client_non_invite import ClientNonInviteState, ClientNonInviteTransaction
from b2bua.transaction.server_invite import ServerInviteState, ServerInviteTransaction
from b2bua.transaction.server_non_invite import ServerNonInviteState, ServerNonInviteTransaction
from b2bua.transaction.timers import TimerName, TimerSettings
from tests.unit.transaction.factories import PEERS, ack_for, invite, request, response

Machine: TypeAlias = (
    ClientInviteTransaction
    | ClientNonInviteTransaction
    | ServerInviteTransaction
    | ServerNonInviteTransaction
)

# The order states are reached in; "forward" means never to a lower rank.
RANK: dict[object, int] = {
    ClientInviteState.CALLING: 0,
    ClientInviteState.PROCEEDING: 1,
    ClientInviteState.COMPLETED: 2,
    ClientInviteState.ACCEPTED: 2,
    ClientInviteState.TERMINATED: 3,
    ClientNonInviteState.TRYING: 0,
    ClientNonInviteState.PROCEEDING: 1,
    ClientNonInviteState.COMPLETED: 2,
    ClientNonInviteState.TERMINATED: 3,
    ServerInviteState.PROCEEDING: 0,
    ServerInviteState.COMPLETED: 1,
    ServerInviteState.ACCEPTED: 1,
    ServerInviteState.CONFIRMED: 2,
    ServerInviteState.TERMINATED: 3,
    ServerNonInviteState.TRYING: 0,
    ServerNonInviteState.PROCEEDING: 1,
    ServerNonInviteState.COMPLETED: 2,
    ServerNonInviteState.TERMINATED: 3,
}
STATUSES = [100, 180, 183, 200, 202, 302, 404, 486, 503, 603]


@dataclass(frozen=True)
class ResponseIn:
    status: int  # from the network (client) or from the TU (server)


@dataclass(frozen=True)
class Retransmit:
    pass


@dataclass(frozen=True)
class AckIn:
    pass


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class FireNext:
    pass


@dataclass(frozen=True)
class StrayTimer:
    name: TimerName


@dataclass(frozen=True)
class TransportError:
    pass


@dataclass(frozen=True)
class Abandon:
    pass


Step: TypeAlias = (
    ResponseIn | Retransmit | AckIn | Wait | FireNext | StrayTimer | TransportError | Abandon
)

common_steps = st.one_of(
    st.builds(Wait, st.floats(min_value=0, max_value=20, allow_nan=False)),
    st.just(FireNext()),
    st.builds(StrayTimer, st.sampled_from(list(TimerName))),
    st.just(TransportError()),
)
client_steps = st.lists(
    st.one_of(
        st.builds(ResponseIn, st.sampled_from(STATUSES)),
        common_steps,
        st.just(FireNext()),
        st.just(Abandon()),
    ),
    max_size=30,
)
server_steps = st.lists(
    st.one_of(
        st.builds(ResponseIn, st.sampled_from(STATUSES)),
        st.just(Retransmit()),
        st.just(AckIn()),
        common_steps,
        st.just(FireNext()),
    ),
    max_size=30,
)


class Checker:
    """Feeds steps to one machine and checks the invariants after each."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.now = 0.0
        self.running: dict[TimerName, float] = {}
        self.order: dict[TimerName, int] = {}
        self.seq = 0
        self.terminated = False
        self.request_sends = 0
        self.first_data: bytes | None = None
        self.non_2xx_up = 0
        self.up_2xx = False
        self.last_final: Response | None = None
        self.check(machine.start(0.0), rank=RANK[machine.state])

    # -- driving

    def step(self, step: Step) -> None:
        rank = RANK[self.machine.state]
        match step:
            case Wait(seconds=seconds):
                target = self.now + seconds
                while self.running and min(self.running.values()) <= target:
                    self.fire_next()
                self.now = target
            case FireNext():
                if self.running:
                    self.fire_next()
            case StrayTimer(name=name):
                if name not in self.running:
                    assert self.machine.on_timer(name, self.now) == []
            case TransportError():
                self.check(self.machine.on_transport_error(self.now), rank)
            case Abandon():
                self.check(self.machine.terminate(self.now), rank)
            case ResponseIn(status=status):
                self.respond(status, rank)
            case Retransmit():
                assert isinstance(
                    self.machine, ServerInviteTransaction | ServerNonInviteTransaction
                )
                again = invite() if self.machine.request.method == "INVITE" else _bye()
                self.check(self.machine.on_request(again, self.now), rank)
            case AckIn():
                assert isinstance(self.machine, ServerInviteTransaction)
                final = self.last_final or response(self.machine.request, 486)
                self.check(
                    self.machine.on_request(ack_for(self.machine.request, final), self.now), rank
                )

    def respond(self, status: int, rank: int) -> None:
        machine = self.machine
        message = response(machine.request, status)
        if isinstance(machine, ClientInviteTransaction | ClientNonInviteTransaction):
            self.check(machine.on_response(message, self.now), rank)
            return
        before = (machine.state, dict(machine.timers))
        try:
            actions = machine.send_response(message, self.now)
        except LocalProtocolError:
            assert (machine.state, dict(machine.timers)) == before
            return
        if status >= 200 and not isinstance(machine, ServerNonInviteTransaction):
            self.last_final = message
        self.check(actions, rank)

    def fire_next(self) -> None:
        name = min(self.running, key=lambda n: (self.running[n], self.order[n]))
        at = self.running.pop(name)
        assert at >= self.now
        self.now = at
        self.check(self.machine.on_timer(name, at), RANK[self.machine.state])

    def drain(self) -> None:
        """Fire every timer left: each one started was cancelled or fires."""
        while self.running:
            self.fire_next()
        assert self.machine.timers == {}

    # -- invariants

    def check(self, actions: list[TransactionAction], rank: int) -> None:
        machine = self.machine
        if self.terminated:
            assert actions == [], "nothing happens after Terminated"
        for i, action in enumerate(actions):
            match action:
                case StartTimer(name=name, at=at):
                    assert at > self.now
                    if machine.is_reliable:
                        assert name not in (TimerName.A, TimerName.E, TimerName.G)
                    self.seq += 1
                    self.running[name] = at
                    self.order[name] = self.seq
                case CancelTimer(name=name):
                    assert name in self.running, "only running timers are cancelled"
                    del self.running[name]
                case Terminated():
                    assert i == len(actions) - 1, "Terminated comes last"
                    assert not self.running, "every timer is cancelled first"
                    self.terminated = True
                case SendMessage(message=message, data=data, peer=peer):
                    assert peer == machine.peer
                    assert data == message.to_bytes()
                    if message is machine.request:
                        self.request_sends += 1
                        self.first_data = self.first_data or data
                        assert data is self.first_data, "one serialisation, reused"
                case PassUp(message=message):
                    self.check_pass_up(message)
                case TimedOut() | TransportFailed():
                    pass
        assert self.running == dict(machine.timers)
        assert RANK[machine.state] >= rank, "states only move forward"
        assert self.terminated == machine.is_terminated
        if machine.is_reliable and isinstance(
            machine, ClientInviteTransaction | ClientNonInviteTransaction
        ):
            assert self.request_sends <= 1, "no retransmissions over TCP"

    def check_pass_up(self, message: Request | Response) -> None:
        machine = self.machine
        if isinstance(machine, ServerInviteTransaction | ServerNonInviteTransaction):
            assert isinstance(message, Request)
            return
        assert isinstance(message, Response)
        if isinstance(machine, ClientInviteTransaction):
            if 200 <= message.status < 300:
                assert self.non_2xx_up == 0
                self.up_2xx = True
            elif message.status >= 300:
                assert not self.up_2xx
                self.non_2xx_up += 1
                assert self.non_2xx_up == 1, "a non-2xx final goes up once"


def _bye() -> Request:
    return request("BYE", branch="z9hG4bK-bye-p", to_tag="to-1", cseq=2)


def _run(machine: Machine, steps: list[Step]) -> None:
    checker = Checker(machine)
    for step in steps:
        checker.step(step)
    checker.drain()


transports = st.sampled_from(list(Transport))
timer_settings = st.builds(
    TimerSettings,
    t1=st.sampled_from([0.05, 0.5, 1.0]),
    t2=st.sampled_from([4.0, 8.0]),
    t4=st.sampled_from([0.0, 5.0]),
)


@settings(max_examples=300)
@given(transport=transports, timers=timer_settings, steps=client_steps)
def test_client_invite_invariants(
    transport: Transport, timers: TimerSettings, steps: list[Step]
) -> None:
    _run(ClientInviteTransaction(invite(transport=transport), PEERS[transport], timers), steps)


@settings(max_examples=300)
@given(transport=transports, timers=timer_settings, steps=client_steps)
def test_client_non_invite_invariants(
    transport: Transport, timers: TimerSettings, steps: list[Step]
) -> None:
    req = request("OPTIONS", branch="z9hG4bK-opt-p", transport=transport)
    _run(ClientNonInviteTransaction(req, PEERS[transport], timers), steps)


@settings(max_examples=300)
@given(transport=transports, timers=timer_settings, steps=server_steps)
def test_server_invite_invariants(
    transport: Transport, timers: TimerSettings, steps: list[Step]
) -> None:
    _run(ServerInviteTransaction(invite(transport=transport), PEERS[transport], timers), steps)


@settings(max_examples=300)
@given(transport=transports, timers=timer_settings, steps=server_steps)
def test_server_non_invite_invariants(
    transport: Transport, timers: TimerSettings, steps: list[Step]
) -> None:
    steps = [s for s in steps if not isinstance(s, AckIn)]  # ACK never reaches a NIST
    _run(ServerNonInviteTransaction(_bye(), PEERS[transport], timers), steps)


def test_the_checker_catches_a_cancel_of_a_timer_that_is_not_running() -> None:
    checker = Checker(ClientNonInviteTransaction(_bye(), PEERS[Transport.UDP], TimerSettings()))
    with pytest.raises(AssertionError, match="only running timers"):
        checker.check([CancelTimer(name=TimerName.K)], rank=0)


def test_the_checker_catches_actions_after_terminated() -> None:
    checker = Checker(ClientNonInviteTransaction(_bye(), PEERS[Transport.TCP], TimerSettings()))
    checker.step(TransportError())
    with pytest.raises(AssertionError, match="after Terminated"):
        checker.check([TransportFailed()], rank=3)
