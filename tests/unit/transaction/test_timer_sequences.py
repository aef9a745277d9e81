"""Retransmission and timeout sequences on a virtual clock, at exact times."""

from __future__ import annotations

import pytest

from b2bua.sip.address import Transport
from b2bua.sip.message import Response
from b2bua.transaction.actions import (
    PassUp,
    SendMessage,
    Terminated,
    TimedOut,
    TransactionAction,
)
from b2bua.transaction.client_invite import ClientInviteState, ClientInviteTransaction
from b2bua.transaction.client_non_invite import ClientNonInviteTransaction
from b2bua.transaction.server_invite import ServerInviteState, ServerInviteTransaction
from b2bua.transaction.server_non_invite import ServerNonInviteTransaction
from b2bua.transaction.timers import TimerName, TimerSettings
from tests.unit.transaction.clock import MachineClock
from tests.unit.transaction.factories import PEERS, ack_for, invite, request, response

UDP = Transport.UDP
TCP = Transport.TCP


def _ict(
    transport: Transport, settings: TimerSettings | None = None
) -> MachineClock[ClientInviteTransaction]:
    inv = invite(transport=transport)
    clock = MachineClock(
        ClientInviteTransaction(inv, PEERS[transport], settings or TimerSettings())
    )
    clock.at(0.0, clock.machine.start)
    return clock


def _nict(
    transport: Transport, settings: TimerSettings | None = None
) -> MachineClock[ClientNonInviteTransaction]:
    req = request("OPTIONS", branch="z9hG4bK-opt-1", transport=transport)
    clock = MachineClock(
        ClientNonInviteTransaction(req, PEERS[transport], settings or TimerSettings())
    )
    clock.at(0.0, clock.machine.start)
    return clock


def _ist(
    transport: Transport, settings: TimerSettings | None = None
) -> MachineClock[ServerInviteTransaction]:
    inv = invite(transport=transport)
    clock = MachineClock(
        ServerInviteTransaction(inv, PEERS[transport], settings or TimerSettings())
    )
    clock.at(0.0, clock.machine.start)
    return clock


def _ends(log: list[tuple[float, TransactionAction]]) -> list[tuple[float, TransactionAction]]:
    """Timeouts and terminations with their times."""
    return [(t, a) for t, a in log if isinstance(a, TimedOut | Terminated)]


# -- INVITE client transaction


def test_ict_udp_timer_a_doubles_without_cap_until_timer_b() -> None:
    # RFC 3261 §17.1.1.2 (not capped at T2): 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5; B at 32.
    clock = _ict(UDP)
    clock.run()
    assert clock.send_times() == [0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert _ends(clock.log) == [(32.0, TimedOut(name=TimerName.B)), (32.0, Terminated())]
    assert clock.machine.state is ClientInviteState.TERMINATED
    assert len(clock.timers) == 0


def test_ict_tcp_sends_once_and_times_out_at_32() -> None:
    clock = _ict(TCP)
    clock.run()
    assert clock.send_times() == [0]
    assert _ends(clock.log) == [(32.0, TimedOut(name=TimerName.B)), (32.0, Terminated())]


def test_ict_stops_retransmitting_on_1xx_and_never_times_out_in_proceeding() -> None:
    clock = _ict(UDP)
    clock.at(2.0, lambda now: clock.machine.on_response(response(clock.machine.request, 180), now))
    clock.run_until(100.0)
    assert clock.send_times() == [0, 0.5, 1.5]
    assert clock.machine.state is ClientInviteState.PROCEEDING
    assert len(clock.timers) == 0


def test_ict_timer_d_is_32s_on_udp_and_absorbs_retransmitted_finals() -> None:
    clock = _ict(UDP)
    inv = clock.machine.request
    clock.at(1.0, lambda now: clock.machine.on_response(response(inv, 486), now))
    clock.at(20.0, lambda now: clock.machine.on_response(response(inv, 486), now))
    clock.run()
    acks = [(t, a.data) for t, a in clock.sent() if a.message is not inv]
    expected_ack = ack_for(inv, response(inv, 486)).to_bytes()
    assert acks == [(1.0, expected_ack), (20.0, expected_ack)]
    assert clock.send_times() == [0, 0.5, 1.0, 20.0]
    assert _ends(clock.log) == [(33.0, Terminated())]
    assert sum(isinstance(a, PassUp) for _, a in clock.log) == 1


def test_ict_timer_d_is_zero_on_tcp() -> None:
    clock = _ict(TCP)
    clock.at(1.0, lambda now: clock.machine.on_response(response(clock.machine.request, 486), now))
    assert _ends(clock.log) == [(1.0, Terminated())]


def test_ict_timer_d_is_never_below_64_t1() -> None:
    clock = _ict(UDP, TimerSettings(t1=1.0, t2=4.0))
    clock.at(1.0, lambda now: clock.machine.on_response(response(clock.machine.request, 486), now))
    clock.run()
    assert _ends(clock.log) == [(65.0, Terminated())]


def test_ict_accepted_passes_up_2xx_retransmissions_until_timer_m() -> None:
    clock = _ict(UDP)
    inv = clock.machine.request
    ok = [response(inv, 200) for _ in range(3)]
    clock.at(1.0, lambda now: clock.machine.on_response(ok[0], now))
    clock.at(1.5, lambda now: clock.machine.on_response(ok[1], now))
    clock.at(2.5, lambda now: clock.machine.on_response(ok[2], now))
    clock.run()
    assert [(t, a) for t, a in clock.log if isinstance(a, PassUp)] == [
        (1.0, PassUp(message=ok[0])),
        (1.5, PassUp(message=ok[1])),
        (2.5, PassUp(message=ok[2])),
    ]
    assert clock.send_times() == [0, 0.5]  # no ACK from the transaction for a 2xx
    assert _ends(clock.log) == [(33.0, Terminated())]


# -- non-INVITE client transaction


def test_nict_udp_timer_e_doubles_to_t2_then_timer_f() -> None:
    clock = _nict(UDP)
    clock.run()
    assert clock.send_times() == [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert _ends(clock.log) == [(32.0, TimedOut(name=TimerName.F)), (32.0, Terminated())]


def test_nict_after_1xx_retransmits_every_t2() -> None:
    clock = _nict(UDP)
    clock.at(0.7, lambda now: clock.machine.on_response(response(clock.machine.request, 100), now))
    clock.run()
    # Timer E keeps its deadline (1.5), then fires every T2 = 4 s until Timer F.
    assert clock.send_times() == [0, 0.5, 1.5, 5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 29.5]
    assert _ends(clock.log) == [(32.0, TimedOut(name=TimerName.F)), (32.0, Terminated())]


def test_nict_timer_k_is_t4_on_udp() -> None:
    clock = _nict(UDP)
    clock.at(1.0, lambda now: clock.machine.on_response(response(clock.machine.request, 200), now))
    clock.run()
    assert clock.send_times() == [0, 0.5]
    assert _ends(clock.log) == [(6.0, Terminated())]


def test_nict_timer_k_is_zero_on_tcp() -> None:
    clock = _nict(TCP)
    clock.at(1.0, lambda now: clock.machine.on_response(response(clock.machine.request, 200), now))
    assert _ends(clock.log) == [(1.0, Terminated())]
    assert clock.send_times() == [0]


def test_nict_tcp_never_retransmits() -> None:
    clock = _nict(TCP)
    clock.run()
    assert clock.send_times() == [0]
    assert _ends(clock.log) == [(32.0, TimedOut(name=TimerName.F)), (32.0, Terminated())]


# -- INVITE server transaction


def _sent_statuses(clock: MachineClock[ServerInviteTransaction]) -> list[tuple[float, int]]:
    out = []
    for t, a in clock.sent():
        assert isinstance(a.message, Response)
        out.append((t, a.message.status))
    return out


def test_ist_sends_100_trying_at_200ms_when_the_tu_is_silent() -> None:
    clock = _ist(UDP)
    clock.run_until(1.0)
    assert _sent_statuses(clock) == [(0.2, 100)]


def test_ist_sends_no_100_trying_when_the_tu_answers_within_200ms() -> None:
    clock = _ist(UDP)
    inv = clock.machine.request
    clock.at(0.1, lambda now: clock.machine.send_response(response(inv, 180), now))
    clock.run_until(1.0)
    assert _sent_statuses(clock) == [(0.1, 180)]


def test_ist_timer_g_retransmits_the_final_until_timer_h() -> None:
    clock = _ist(UDP)
    inv = clock.machine.request
    clock.at(1.0, lambda now: clock.machine.send_response(response(inv, 486), now))
    clock.run()
    # G: 0.5, 1, 2, 4, 4, ... (capped at T2) after the final at 1.0; H at 1.0 + 32.
    assert _sent_statuses(clock) == [
        (0.2, 100),
        *[(t, 486) for t in (1.0, 1.5, 2.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5, 32.5)],
    ]
    assert _ends(clock.log) == [(33.0, TimedOut(name=TimerName.H)), (33.0, Terminated())]


def test_ist_ack_stops_timer_g_and_timer_i_terminates_after_t4() -> None:
    clock = _ist(UDP)
    inv = clock.machine.request
    final = response(inv, 486)
    clock.at(1.0, lambda now: clock.machine.send_response(final, now))
    clock.at(3.0, lambda now: clock.machine.on_request(ack_for(inv, final), now))
    assert clock.machine.state is ServerInviteState.CONFIRMED
    clock.at(4.0, lambda now: clock.machine.on_request(ack_for(inv, final), now))  # absorbed
    clock.run()
    assert _sent_statuses(clock) == [(0.2, 100), (1.0, 486), (1.5, 486), (2.5, 486)]
    assert _ends(clock.log) == [(8.0, Terminated())]


def test_ist_tcp_never_retransmits_and_times_out_at_h() -> None:
    clock = _ist(TCP)
    inv = clock.machine.request
    clock.at(1.0, lambda now: clock.machine.send_response(response(inv, 486), now))
    clock.run()
    assert _sent_statuses(clock) == [(0.2, 100), (1.0, 486)]
    assert _ends(clock.log) == [(33.0, TimedOut(name=TimerName.H)), (33.0, Terminated())]


def test_ist_tcp_ack_terminates_at_once() -> None:
    clock = _ist(TCP)
    inv = clock.machine.request
    final = response(inv, 486)
    clock.at(1.0, lambda now: clock.machine.send_response(final, now))
    clock.at(2.0, lambda now: clock.machine.on_request(ack_for(inv, final), now))
    assert _ends(clock.log) == [(2.0, Terminated())]


def test_ist_accepted_sends_tu_2xx_retransmissions_until_timer_l() -> None:
    clock = _ist(UDP)
    inv = clock.machine.request
    ok = response(inv, 200)
    clock.at(0.1, lambda now: clock.machine.send_response(ok, now))
    for t in (0.6, 1.6, 3.6):
        clock.at(t, lambda now: clock.machine.send_response(ok, now))
    clock.at(2.0, lambda now: clock.machine.on_request(invite(), now))  # absorbed
    clock.run()
    assert _sent_statuses(clock) == [(0.1, 200), (0.6, 200), (1.6, 200), (3.6, 200)]
    assert _ends(clock.log) == [(32.1, Terminated())]


# -- non-INVITE server transaction


@pytest.mark.parametrize(("transport", "end"), [(UDP, 33.0), (TCP, 1.0)])
def test_nist_timer_j_is_64_t1_on_udp_and_zero_on_tcp(transport: Transport, end: float) -> None:
    req = request("BYE", branch="z9hG4bK-bye", to_tag="t", transport=transport)
    clock = MachineClock(ServerNonInviteTransaction(req, PEERS[transport], TimerSettings()))
    clock.at(0.0, clock.machine.start)
    clock.at(1.0, lambda now: clock.machine.send_response(response(req, 200), now))
    clock.run()
    assert _ends(clock.log) == [(end, Terminated())]
    assert clock.send_times() == [1.0]


# -- custom settings


def test_custom_t1_scales_timer_a_and_b() -> None:
    clock = _ict(UDP, TimerSettings(t1=0.1, t2=0.8, t4=1.0))
    clock.run()
    assert clock.send_times() == pytest.approx([0, 0.1, 0.3, 0.7, 1.5, 3.1, 6.3])
    [(at, _), _] = _ends(clock.log)
    assert at == pytest.approx(6.4)


def test_custom_t2_caps_timer_e() -> None:
    clock = _nict(UDP, TimerSettings(t1=0.1, t2=0.4, t4=1.0))
    clock.run()
    expected = [0, 0.1, 0.3, *(0.7 + 0.4 * i for i in range(15))]
    assert clock.send_times() == pytest.approx(expected)
    assert _ends(clock.log)[0][0] == pytest.approx(6.4)


def test_custom_t2_caps_timer_g_and_t4_sets_timer_i() -> None:
    settings = TimerSettings(t1=0.25, t2=1.0, t4=2.0)
    clock = _ist(UDP, settings)
    inv = clock.machine.request
    final = response(inv, 603)
    clock.at(0.1, lambda now: clock.machine.send_response(final, now))
    clock.at(3.0, lambda now: clock.machine.on_request(ack_for(inv, final), now))
    clock.run()
    assert clock.send_times() == pytest.approx([0.1, 0.35, 0.85, 1.85, 2.85])
    assert _ends(clock.log) == [(5.0, Terminated())]


def test_custom_t4_sets_timer_k() -> None:
    clock = _nict(UDP, TimerSettings(t4=2.5))
    clock.at(1.0, lambda now: clock.machine.on_response(response(clock.machine.request, 404), now))
    clock.run()
    assert _ends(clock.log) == [(3.5, Terminated())]


def test_custom_trying_delay() -> None:
    clock = _ist(UDP, TimerSettings(trying=0.05))
    clock.run_until(1.0)
    assert _sent_statuses(clock) == [(0.05, 100)]


def test_trying_zero_sends_100_at_once() -> None:
    clock = _ist(UDP, TimerSettings(trying=0.0))
    assert clock.machine.timers == {}
    assert [(t, type(a)) for t, a in clock.log] == [(0.0, PassUp), (0.0, SendMessage)]
