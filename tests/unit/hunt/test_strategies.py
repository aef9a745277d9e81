"""Every strategy on a virtual clock, asserting exact times."""

from __future__ import annotations

import pytest

from b2bua.hunt import STRATEGIES, HuntGroup, Member, Outcome, Phone, Strategy

from .helpers import book, members, simulation, timeline


def rings(sim_timeline: list[tuple[float, str]]) -> list[tuple[float, str]]:
    return [(at, text) for at, text in sim_timeline if text.startswith("ring")]


def test_every_strategy_has_a_function() -> None:
    assert set(STRATEGIES) == set(Strategy)


def test_ring_all_rings_every_free_member_at_once_until_the_group_timeout() -> None:
    g = HuntGroup(name="g", strategy=Strategy.RING_ALL, members=members("1", "2", "3"))
    sim = simulation(g, book("1", "2", "3", talking=["2"]))
    sim.call("g")
    sim.run()
    assert timeline(sim) == [
        (0.0, "ring 1"),
        (0.0, "ring 3"),
        (60.0, "stop 1"),
        (60.0, "stop 3"),
        (60.0, "overflow timeout -> hangup 480"),
    ]


def test_ring_all_offers_the_call_to_a_member_who_frees_up_meanwhile() -> None:
    g = HuntGroup(name="g", strategy=Strategy.RING_ALL, members=members("1", "2"))
    sim = simulation(g, book("1", "2", talking=["2"]), m2=Phone(answers_after=1))
    sim.ends_call("2", at=7.0)
    sim.call("g")
    sim.run()
    assert timeline(sim) == [(0.0, "ring 1"), (7.0, "ring 2"), (8.0, "connect 2"), (8.0, "stop 1")]


def test_ring_all_member_with_its_own_ring_time_stops_alone() -> None:
    g = HuntGroup(
        name="g", strategy=Strategy.RING_ALL, members=(Member("1", ring_time=5), Member("2"))
    )
    sim = simulation(g, book("1", "2"), m2=Phone(answers_after=9))
    sim.call("g")
    sim.run()
    assert timeline(sim) == [
        (0.0, "ring 1"),
        (0.0, "ring 2"),
        (5.0, "stop 1"),
        (9.0, "connect 2"),
    ]


def test_linear_rings_each_member_for_its_ring_time_then_moves_on() -> None:
    g = HuntGroup(
        name="g",
        strategy=Strategy.LINEAR,
        members=(Member("1"), Member("2", ring_time=7), Member("3")),
        ring_time=10,
    )
    sim = simulation(g, book("1", "2", "3"), m3=Phone(answers_after=4))
    sim.call("g")
    sim.run()
    assert timeline(sim) == [
        (0.0, "ring 1"),
        (10.0, "stop 1"),
        (10.0, "ring 2"),
        (17.0, "stop 2"),
        (17.0, "ring 3"),
        (21.0, "connect 3"),
    ]


def test_memory_hunt_adds_a_member_every_wave_and_earlier_ones_keep_ringing() -> None:
    g = HuntGroup(
        name="g",
        strategy=Strategy.MEMORY_HUNT,
        members=members("1", "2", "3", "4"),
        wave_interval=5,
        group_timeout=30,
    )
    sim = simulation(g, book("1", "2", "3", "4"), m1=Phone(answers_after=17))
    sim.call("g")
    sim.run()
    assert timeline(sim) == [
        (0.0, "ring 1"),
        (5.0, "ring 2"),
        (10.0, "ring 3"),
        (15.0, "ring 4"),
        (17.0, "connect 1"),
        (17.0, "stop 2"),
        (17.0, "stop 3"),
        (17.0, "stop 4"),
    ]


def test_memory_hunt_wave_skips_a_busy_member_and_takes_the_next() -> None:
    g = HuntGroup(
        name="g",
        strategy=Strategy.MEMORY_HUNT,
        members=members("1", "2", "3", "4"),
        wave_interval=5,
        group_timeout=30,
    )
    sim = simulation(g, book("1", "2", "3", "4", talking=["2"]))
    sim.call("g")
    sim.run()
    assert rings(timeline(sim)) == [(0.0, "ring 1"), (5.0, "ring 3"), (10.0, "ring 4")]
    assert timeline(sim)[-1] == (30.0, "overflow timeout -> hangup 480")


def test_first_available_skips_a_member_on_a_call_without_ringing_it() -> None:
    g = HuntGroup(name="g", strategy=Strategy.FIRST_AVAILABLE, members=members("1", "2", "3"))
    sim = simulation(g, book("1", "2", "3", talking=["1"]), m2=Phone(answers_after=3))
    sim.call("g")
    sim.run()
    assert timeline(sim) == [(0.0, "ring 2"), (3.0, "connect 2")]
    assert [e.outcome for e in sim.hunts[0].trace if e.member == "1"] == [Outcome.SKIPPED]


@pytest.mark.parametrize(
    ("strategy", "third"),
    [(Strategy.FIRST_AVAILABLE, "ring 1"), (Strategy.LINEAR, "ring 3")],
)
def test_first_available_goes_back_to_a_member_who_freed_up_linear_does_not(
    strategy: Strategy, third: str
) -> None:
    g = HuntGroup(name="g", strategy=strategy, members=members("1", "2", "3"), ring_time=20)
    sim = simulation(g, book("1", "2", "3", talking=["1"]))
    sim.ends_call("1", at=5.0)
    sim.call("g")
    sim.run()
    assert rings(timeline(sim))[:2] == [(0.0, "ring 2"), (20.0, third)]


def random_order(seed: int) -> list[str]:
    g = HuntGroup(
        name="g", strategy=Strategy.RANDOM, members=members("1", "2", "3", "4", "5"), ring_time=10
    )
    sim = simulation(g, book("1", "2", "3", "4", "5"))
    sim.call("g", seed=seed)
    sim.run()
    return [text.split()[1] for _, text in rings(timeline(sim))]


def test_random_is_replayed_by_its_seed_and_rings_each_member_once() -> None:
    assert random_order(7) == random_order(7)
    assert sorted(random_order(7)) == ["1", "2", "3", "4", "5"]
    assert len({tuple(random_order(seed)) for seed in range(10)}) > 1


def test_random_picks_only_among_free_members_and_logs_its_seed() -> None:
    g = HuntGroup(name="g", strategy=Strategy.RANDOM, members=members("1", "2", "3"))
    sim = simulation(g, book("1", "2", "3", talking=["1", "3"]))
    sim.call("g", seed=1234)
    sim.run()
    assert rings(timeline(sim)) == [(0.0, "ring 2")]
    assert sim.hunts[0].record()["seed"] == 1234


def test_round_robin_continues_after_the_last_member_who_answered() -> None:
    g = HuntGroup(
        name="rr", strategy=Strategy.ROUND_ROBIN, members=members("1", "2", "3"), ring_time=10
    )
    members_book = book("1", "2", "3")
    sim = simulation(g, members_book, m2=Phone(answers_after=1, talks_for=5))
    sim.call("rr", at=0.0)  # 1 rings out, 2 answers at 11 and talks until 16
    sim.call("rr", at=20.0)  # starts after 2: 3, then 1, then 2
    sim.run()
    assert timeline(sim, 0) == [
        (0.0, "ring 1"),
        (10.0, "stop 1"),
        (10.0, "ring 2"),
        (11.0, "connect 2"),
    ]
    assert rings(timeline(sim, 1)) == [(20.0, "ring 3"), (30.0, "ring 1"), (40.0, "ring 2")]
    assert members_book.last_answerer("rr") == "2"


def test_longest_idle_rings_the_member_idle_longest_first() -> None:
    g = HuntGroup(
        name="g", strategy=Strategy.LONGEST_IDLE, members=members("1", "2", "3"), ring_time=10
    )
    members_book = book("1", "2", "3", talking=["1", "2"])
    members_book.call_ended("1", 50.0)
    members_book.call_ended("2", 10.0)  # 3 never had a call: idle the longest
    sim = simulation(g, members_book)
    sim.call("g", at=100.0)
    sim.run()
    assert rings(timeline(sim)) == [(100.0, "ring 3"), (110.0, "ring 2"), (120.0, "ring 1")]


def test_fewest_calls_rings_the_member_who_answered_the_fewest_first() -> None:
    g = HuntGroup(
        name="g", strategy=Strategy.FEWEST_CALLS, members=members("1", "2", "3"), ring_time=10
    )
    members_book = book("1", "2", "3")
    for number, count in (("1", 3), ("2", 1), ("3", 2)):
        for _ in range(count):
            members_book.ringing_started(number)
            members_book.call_answered(number, 0.0)
            members_book.call_ended(number, 1.0)
    sim = simulation(g, members_book)
    sim.call("g", at=5.0)
    sim.run()
    assert rings(timeline(sim)) == [(5.0, "ring 2"), (15.0, "ring 3"), (25.0, "ring 1")]


@pytest.mark.parametrize("strategy", list(Strategy))
@pytest.mark.parametrize("state", ["talking", "dnd"])
def test_primary_first_rings_nobody_when_the_first_member_is_busy_or_dnd(
    strategy: Strategy, state: str
) -> None:
    g = HuntGroup(name="g", strategy=strategy, members=members("1", "2"), primary_first=True)
    members_book = (
        book("1", "2", talking=["1"]) if state == "talking" else book("1", "2", dnd=["1"])
    )
    sim = simulation(g, members_book)
    sim.call("g")
    sim.run()
    assert timeline(sim) == [(0.0, "overflow all_busy -> hangup 486")]
    assert [(e.member, e.outcome, e.reason) for e in sim.hunts[0].trace] == [
        ("1", Outcome.SKIPPED, state)
    ]


def test_primary_first_hunts_normally_when_the_first_member_is_free_or_unregistered() -> None:
    g = HuntGroup(name="g", strategy=Strategy.LINEAR, members=members("1", "2"), primary_first=True)
    free = simulation(g, book("1", "2"))
    free.call("g")
    free.run(until=0.0)
    assert timeline(free) == [(0.0, "ring 1")]
    away = simulation(g, book("1", "2", unregistered=["1"]))
    away.call("g")
    away.run(until=0.0)
    assert timeline(away) == [(0.0, "ring 2")]


def test_primary_first_with_the_primary_ringing_for_another_caller() -> None:
    g = HuntGroup(
        name="g", strategy=Strategy.RING_ALL, members=members("1", "2"), primary_first=True
    )
    sim = simulation(g, book("1", "2"))
    sim.call("g", at=0.0)
    sim.call("g", at=1.0)
    sim.run(until=1.0)
    assert timeline(sim, 1) == [(1.0, "overflow all_busy -> hangup 486")]
