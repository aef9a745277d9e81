"""Timer precedence (b2bua.hunt.timing): the group timeout always wins."""

from __future__ import annotations

import pytest

from b2bua.hunt import (
    CancelTimer,
    Hunt,
    HuntGroup,
    HuntTimer,
    Member,
    Outcome,
    Overflow,
    OverflowReason,
    Phone,
    StartTimer,
    StopCause,
    StopMember,
    Strategy,
    ToVoicemail,
    timing,
)

from .helpers import book, members, simulation, timeline


def test_ring_limit_by_strategy_and_member() -> None:
    serial = HuntGroup(name="g", strategy=Strategy.LINEAR, members=members("1"), ring_time=15)
    parallel = HuntGroup(name="g", strategy=Strategy.RING_ALL, members=members("1"), ring_time=15)
    own = Member("1", ring_time=4)
    assert timing.ring_limit(serial, Member("1")) == 15
    assert timing.ring_limit(serial, own) == 4
    assert timing.ring_limit(parallel, Member("1")) is None
    assert timing.ring_limit(parallel, own) == 4


def test_ring_end_never_passes_the_group_timeout() -> None:
    g = HuntGroup(
        name="g", strategy=Strategy.LINEAR, members=members("1"), ring_time=20, group_timeout=30
    )
    assert timing.ring_end(g, Member("1"), rung_at=100.0, started_at=100.0) == 120.0
    assert timing.ring_end(g, Member("1"), rung_at=115.0, started_at=100.0) == 130.0


def test_waves_begin_exactly_on_their_times() -> None:
    g = HuntGroup(
        name="g", strategy=Strategy.MEMORY_HUNT, members=members("1", "2", "3"), wave_interval=0.6
    )
    assert [timing.waves_begun(g, 5.0, t) for t in (5.0, 5.59, 5.6, 6.2, 100.0)] == [1, 1, 2, 3, 3]
    assert timing.wave_at(g, 5.0, 2) == 5.0 + 2 * 0.6


def test_next_wake_drops_anything_at_or_after_the_group_timeout() -> None:
    g = HuntGroup(name="g", strategy=Strategy.STAGGERED, members=members("1"), group_timeout=30)
    assert timing.next_wake([12.0, None, 8.0], g, 0.0) == 8.0
    assert timing.next_wake([30.0, 45.0], g, 0.0) is None
    assert timing.next_wake([], g, 0.0) is None


def test_a_ring_end_on_the_group_timeout_loses_to_it() -> None:
    g = HuntGroup(
        name="g",
        strategy=Strategy.LINEAR,
        members=members("1", "2"),
        ring_time=30,
        group_timeout=30,
        no_answer=ToVoicemail("1"),
    )
    sim = simulation(g, book("1", "2"))
    sim.call("g")
    sim.run()
    assert timeline(sim) == [
        (0.0, "ring 1"),
        (30.0, "stop 1"),
        (30.0, "overflow timeout -> hangup 480"),
    ]
    assert sim.hunts[0].trace[-1].reason is StopCause.GROUP_TIMEOUT


def test_no_step_timer_is_armed_at_or_after_the_group_timeout() -> None:
    g = HuntGroup(
        name="g",
        strategy=Strategy.STAGGERED,
        members=(Member("1"), Member("2", start_delay=25)),
        group_timeout=20,  # the config refuses this; the engine still never rings 2
    )
    hunt = Hunt(g, book("1", "2"), seed=0, now=0.0)
    actions = hunt.start(0.0)
    assert [a for a in actions if isinstance(a, StartTimer)] == [
        StartTimer(HuntTimer.GROUP_TIMEOUT, 20.0)
    ]
    assert hunt.timer_fired(HuntTimer.GROUP_TIMEOUT, 20.0)[-1] == Overflow(
        g.timeout, OverflowReason.TIMEOUT
    )


def test_an_answer_at_the_group_timeout_loses_to_it() -> None:
    g = HuntGroup(name="g", strategy=Strategy.RING_ALL, members=members("1"), group_timeout=10)
    hunt = Hunt(g, book("1"), seed=0, now=0.0)
    hunt.start(0.0)
    actions = hunt.member_answered("1", 10.0)
    assert actions[0] == StopMember("1")
    assert actions[-1] == Overflow(g.timeout, OverflowReason.TIMEOUT)
    assert hunt.connected is None


def test_a_new_round_never_starts_at_the_group_timeout() -> None:
    g = HuntGroup(
        name="g",
        strategy=Strategy.LINEAR,
        members=members("1"),
        ring_time=10,
        rounds=5,
        group_timeout=20,
    )
    sim = simulation(g, book("1"))
    sim.call("g")
    sim.run()
    assert timeline(sim) == [
        (0.0, "ring 1"),
        (10.0, "stop 1"),
        (10.0, "ring 1"),
        (20.0, "stop 1"),
        (20.0, "overflow timeout -> hangup 480"),
    ]


def test_staggered_member_with_its_own_ring_time_stops_while_others_ring_on() -> None:
    g = HuntGroup(
        name="g",
        strategy=Strategy.STAGGERED,
        members=(Member("1"), Member("2", start_delay=6, ring_time=5), Member("3", start_delay=10)),
        group_timeout=30,
    )
    sim = simulation(g, book("1", "2", "3"))
    sim.call("g")
    sim.run()
    assert timeline(sim) == [
        (0.0, "ring 1"),
        (6.0, "ring 2"),
        (10.0, "ring 3"),
        (11.0, "stop 2"),
        (30.0, "stop 1"),
        (30.0, "stop 3"),
        (30.0, "overflow timeout -> hangup 480"),
    ]


def test_start_delays_count_from_the_invite_not_from_start() -> None:
    g = HuntGroup(
        name="g",
        strategy=Strategy.STAGGERED,
        members=(Member("1"), Member("2", start_delay=6)),
        group_timeout=30,
    )
    hunt = Hunt(g, book("1", "2"), seed=0, now=50.0)
    actions = hunt.start(50.2)  # the call layer started the hunt 200 ms after the INVITE
    assert StartTimer(HuntTimer.NEXT_STEP, 56.0) in actions
    assert StartTimer(HuntTimer.GROUP_TIMEOUT, 80.0) in actions


@pytest.mark.parametrize("strategy", [Strategy.LINEAR, Strategy.FIRST_AVAILABLE])
def test_serial_ring_time_counts_from_each_members_own_start(strategy: Strategy) -> None:
    g = HuntGroup(name="g", strategy=strategy, members=members("1", "2"), ring_time=10)
    sim = simulation(g, book("1", "2"), m1=Phone(fails_after=3, fail_status=480))
    sim.call("g")
    sim.run()
    assert timeline(sim)[:3] == [(0.0, "ring 1"), (3.0, "ring 2"), (13.0, "stop 2")]
    assert [e.at for e in sim.hunts[0].trace if e.outcome is Outcome.RUNG] == [0.0, 3.0]


def test_a_failure_at_the_group_timeout_ends_the_hunt_without_stopping_that_member() -> None:
    g = HuntGroup(name="g", strategy=Strategy.RING_ALL, members=members("1", "2"), group_timeout=10)
    hunt = Hunt(g, book("1", "2"), seed=0, now=0.0)
    hunt.start(0.0)
    assert hunt.member_failed("1", 480, 10.0) == [
        StopMember("2"),
        CancelTimer(HuntTimer.GROUP_TIMEOUT),
        Overflow(g.timeout, OverflowReason.TIMEOUT),
    ]
