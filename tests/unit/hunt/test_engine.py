"""The Hunt engine's inputs and outputs, and the busy truth it acts on."""

from __future__ import annotations

from b2bua.hunt import (
    CancelTimer,
    ConnectMember,
    Hangup,
    Hunt,
    HuntGroup,
    HuntState,
    HuntTimer,
    Outcome,
    Overflow,
    OverflowReason,
    Phone,
    RingMember,
    StartTimer,
    StopCause,
    StopMember,
    Strategy,
    ToGroup,
    ToVoicemail,
)

from .helpers import book, lines, members, simulation, timeline


def ring_all(*numbers: str) -> HuntGroup:
    return HuntGroup(name="g", strategy=Strategy.RING_ALL, members=members(*numbers))


def test_start_arms_the_group_timeout_from_the_invite_and_rings() -> None:
    hunt = Hunt(ring_all("1", "2"), book("1", "2"), seed=0, now=100.0)
    assert hunt.start(100.5) == [
        StartTimer(HuntTimer.GROUP_TIMEOUT, 160.0),
        RingMember("1"),
        RingMember("2"),
    ]
    assert hunt.state is HuntState.HUNTING
    assert hunt.ringing == {"1", "2"}


def test_ring_all_two_answers_at_almost_the_same_moment_exactly_one_connects() -> None:
    members_book = book("1", "2")
    hunt = Hunt(ring_all("1", "2"), members_book, seed=0, now=0.0)
    hunt.start(0.0)
    assert hunt.member_answered("2", 3.0) == [
        ConnectMember("2"),
        StopMember("1"),
        CancelTimer(HuntTimer.GROUP_TIMEOUT),
    ]
    assert hunt.member_answered("1", 3.001) == []  # already stopped: the call layer ends it
    assert [(e.member, e.outcome) for e in hunt.trace[-3:]] == [
        ("2", Outcome.ANSWERED),
        ("1", Outcome.CANCELLED),
        ("1", Outcome.ANSWERED_LATE),
    ]
    assert hunt.connected == "2"


def test_486_600_603_mark_a_member_busy_for_this_call_and_count_towards_all_busy() -> None:
    g = HuntGroup(name="g", strategy=Strategy.LINEAR, members=members("1", "2", "3"), rounds=3)
    sim = simulation(
        g,
        book("1", "2", "3"),
        m1=Phone(fails_after=1, fail_status=486),
        m2=Phone(fails_after=1, fail_status=600),
        m3=Phone(fails_after=1, fail_status=603),
    )
    sim.call("g")
    sim.run()
    assert timeline(sim) == [
        (0.0, "ring 1"),
        (1.0, "ring 2"),
        (2.0, "ring 3"),
        (3.0, "overflow all_busy -> hangup 486"),
    ]
    failed = [(e.member, e.status) for e in sim.hunts[0].trace if e.outcome is Outcome.FAILED]
    assert failed == [("1", 486), ("2", 600), ("3", 603)]


def test_other_failures_count_as_no_answer_and_the_member_is_rung_again_next_round() -> None:
    g = HuntGroup(name="g", strategy=Strategy.LINEAR, members=members("1", "2"), rounds=2)
    sim = simulation(
        g, book("1", "2"), m1=Phone(fails_after=1, fail_status=480), m2=Phone(fails_after=1)
    )
    sim.call("g")
    sim.run()
    assert timeline(sim) == [
        (0.0, "ring 1"),
        (1.0, "ring 2"),  # 2 answers 486: busy for the whole call
        (2.0, "ring 1"),  # round 2: only 1 again
        (3.0, "overflow no_answer -> hangup 480"),
    ]


def test_rounds_repeat_the_pass_and_the_group_timeout_cuts_the_last() -> None:
    g = HuntGroup(
        name="g",
        strategy=Strategy.LINEAR,
        members=members("1", "2"),
        ring_time=10,
        rounds=2,
        group_timeout=35,
    )
    sim = simulation(g, book("1", "2"))
    sim.call("g")
    sim.run()
    assert timeline(sim) == [
        (0.0, "ring 1"),
        (10.0, "stop 1"),
        (10.0, "ring 2"),
        (20.0, "stop 2"),
        (20.0, "ring 1"),
        (30.0, "stop 1"),
        (30.0, "ring 2"),
        (35.0, "stop 2"),
        (35.0, "overflow timeout -> hangup 480"),
    ]
    assert [e.round for e in sim.hunts[0].trace if e.outcome is Outcome.RUNG] == [0, 0, 1, 1]


def test_a_member_at_max_calls_is_never_rung_and_ringing_counts_too() -> None:
    members_book = book("1", "2")
    members_book.add("1", max_calls=2, registered=True)
    members_book.call_started("1")  # one call: still room for one more
    members_book.ringing_started("2")  # ringing for someone else: at its maximum of 1
    hunt = Hunt(ring_all("1", "2"), members_book, seed=0, now=0.0)
    assert lines(hunt.start(0.0)) == ["ring 1"]
    assert hunt.waiting_on == {"2"}


def test_multichannel_caller_waits_for_a_member_ringing_for_another_and_gets_it() -> None:
    g = ring_all("1", "2")
    sim = simulation(g, book("1", "2"), m1=Phone(answers_after=5), m2=Phone(answers_after=9))
    sim.call("g", at=0.0)  # A: rings 1 and 2
    sim.call("g", at=1.0)  # B: both ring for A, so B waits (no overflow)
    sim.run()
    assert timeline(sim, 0) == [
        (0.0, "ring 1"),
        (0.0, "ring 2"),
        (5.0, "connect 1"),
        (5.0, "stop 2"),
    ]
    assert timeline(sim, 1) == [(5.0, "ring 2"), (14.0, "connect 2")]


def test_multichannel_waiting_caller_is_all_busy_once_the_member_starts_talking() -> None:
    g = ring_all("1")
    sim = simulation(g, book("1"), m1=Phone(answers_after=5))
    sim.call("g", at=0.0)
    sim.call("g", at=1.0)
    sim.run()
    assert timeline(sim, 1) == [(5.0, "overflow all_busy -> hangup 486")]


def test_multichannel_waiting_callers_are_served_oldest_first() -> None:
    g = HuntGroup(name="g", strategy=Strategy.LINEAR, members=members("1"), ring_time=10)
    sim = simulation(g, book("1"))
    for at in (0.0, 1.0, 2.0):
        sim.call("g", at=at)
    sim.run(until=30.0)
    assert [timeline(sim, call)[0] for call in (1, 2)] == [(10.0, "ring 1"), (20.0, "ring 1")]


def test_multichannel_waiting_ends_at_the_group_timeout() -> None:
    g = HuntGroup(name="g", strategy=Strategy.RING_ALL, members=members("1"), group_timeout=20)
    sim = simulation(g, book("1"))
    sim.call("g", at=0.0)
    sim.call("g", at=0.0)  # waits; 1 frees up at 20, just when this caller times out
    sim.call("g", at=5.0)  # waits; 1 frees up at 20 and rings for this caller until 25
    sim.run()
    assert timeline(sim, 1) == [(20.0, "overflow timeout -> hangup 480")]
    assert timeline(sim, 2) == [
        (20.0, "ring 1"),
        (25.0, "stop 1"),
        (25.0, "overflow timeout -> hangup 480"),
    ]


def test_unregistered_unreachable_and_dnd_members_are_skipped_at_once() -> None:
    g = HuntGroup(name="g", strategy=Strategy.LINEAR, members=members("1", "2", "3", "4"))
    members_book = book("1", "2", "3", "4", unregistered=["1"], unreachable=["2"], dnd=["3"])
    hunt = Hunt(g, members_book, seed=0, now=0.0)
    assert lines(hunt.start(0.0)) == ["ring 4"]
    skipped = [(e.member, e.reason) for e in hunt.trace if e.outcome is Outcome.SKIPPED]
    assert skipped == [("1", "unregistered"), ("2", "unreachable"), ("3", "dnd")]


def test_caller_gone_stops_every_member_and_every_timer() -> None:
    g = HuntGroup(
        name="g", strategy=Strategy.MEMORY_HUNT, members=members("1", "2"), wave_interval=5
    )
    hunt = Hunt(g, book("1", "2"), seed=0, now=0.0)
    hunt.start(0.0)
    assert hunt.caller_gone(2.0) == [
        StopMember("1"),
        CancelTimer(HuntTimer.GROUP_TIMEOUT),
        CancelTimer(HuntTimer.NEXT_STEP),
    ]
    assert hunt.state is HuntState.ABANDONED
    assert hunt.trace[-1].reason is StopCause.CALLER_GONE
    assert hunt.timer_fired(HuntTimer.NEXT_STEP, 5.0) == []
    assert hunt.member_answered("1", 6.0) == []


def test_a_failure_of_a_member_no_longer_ringing_is_ignored() -> None:
    hunt = Hunt(ring_all("1", "2"), book("1", "2"), seed=0, now=0.0)
    hunt.start(0.0)
    hunt.member_answered("1", 1.0)
    assert hunt.member_failed("2", 487, 1.1) == []
    assert hunt.member_failed("9", 486, 1.2) == []


def test_channel_limit_sends_the_next_caller_to_over_limit() -> None:
    g = HuntGroup(name="g", strategy=Strategy.RING_ALL, members=members("1"), channel_limit=2)
    members_book = book("1")
    members_book.channel_opened("g")
    hunt = Hunt(g, members_book, seed=0, now=0.0)
    assert lines(hunt.start(0.0)) == ["ring 1"]
    members_book.channel_opened("g")
    over = Hunt(g, members_book, seed=0, now=1.0)
    assert over.start(1.0) == [Overflow(Hangup(486), OverflowReason.OVER_LIMIT)]
    assert over.trace == []


def test_channel_limit_through_the_simulation_frees_the_channel_when_the_call_ends() -> None:
    g = HuntGroup(
        name="g", strategy=Strategy.RING_ALL, members=members("1", "2", "3"), channel_limit=1
    )
    sim = simulation(g, book("1", "2", "3"), m1=Phone(answers_after=1, talks_for=10))
    for at in (0.0, 5.0, 20.0):
        sim.call("g", at=at)
    sim.run(until=21.0)
    assert timeline(sim, 1) == [(5.0, "overflow over_limit -> hangup 486")]
    assert timeline(sim, 2)[0] == (20.0, "ring 1")


def test_overflow_to_another_group_starts_a_new_hunt_there() -> None:
    first = HuntGroup(
        name="day",
        strategy=Strategy.LINEAR,
        members=members("1"),
        ring_time=10,
        no_answer=ToGroup("night"),
    )
    second = HuntGroup(
        name="night", strategy=Strategy.LINEAR, members=members("2"), no_answer=ToVoicemail("2")
    )
    sim = simulation(first, book("1", "2"))
    sim.groups = {"day": first, "night": second}
    sim.call("day")
    sim.run()
    assert timeline(sim, 0)[-1] == (10.0, "overflow no_answer -> group:night")
    assert timeline(sim, 1) == [
        (10.0, "ring 2"),
        (30.0, "stop 2"),
        (30.0, "overflow no_answer -> voicemail:2"),
    ]


def test_member_ringing_is_traced_and_record_has_relative_times() -> None:
    hunt = Hunt(ring_all("1"), book("1"), seed=42, now=1000.0)
    hunt.start(1000.0)
    hunt.member_ringing("1", 1000.25)
    hunt.member_answered("1", 1003.5)
    record = hunt.record()
    assert record["seed"] == 42
    assert record["result"] == "connected"
    assert record["members"] == [
        {"t": 0.0, "member": "1", "outcome": "rung", "round": 0},
        {"t": 0.25, "member": "1", "outcome": "alerting", "round": 0},
        {"t": 3.5, "member": "1", "outcome": "answered", "round": 0},
    ]


def test_the_same_member_skipped_again_for_the_same_reason_is_traced_once() -> None:
    g = HuntGroup(name="g", strategy=Strategy.FIRST_AVAILABLE, members=members("1", "2", "3"))
    hunt = Hunt(g, book("1", "2", "3", talking=["1"]), seed=0, now=0.0)
    hunt.start(0.0)
    hunt.member_failed("2", 480, 1.0)
    assert [(e.member, e.outcome) for e in hunt.trace].count(("1", Outcome.SKIPPED)) == 1
