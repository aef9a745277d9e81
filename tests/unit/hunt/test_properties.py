"""Properties of every hunt, whatever the group, the members' states and the phones do."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from b2bua.hunt import (
    ConnectMember,
    HuntGroup,
    HuntTimer,
    Member,
    MemberBook,
    Outcome,
    Overflow,
    Phone,
    RingMember,
    Simulation,
    StartTimer,
    StopMember,
    Strategy,
)


class StrictBook(MemberBook):
    """A book that fails the test when a member who is not free is rung."""

    def ringing_started(self, number: str) -> None:
        assert self.is_free(number), f"{number} rung while {self.blocker(number)}"
        super().ringing_started(number)


STATES = ("idle", "idle", "talking", "dnd", "unregistered", "unreachable")
PHONES = st.one_of(
    st.just(Phone()),
    st.builds(
        Phone,
        answers_after=st.sampled_from([0.0, 1.0, 2.5, 9.0]),
        talks_for=st.sampled_from([None, 1.0, 4.0]),
    ),
    st.builds(
        Phone,
        fails_after=st.sampled_from([0.0, 1.0, 3.0]),
        fail_status=st.sampled_from([486, 600, 603, 480, 408, 500]),
    ),
)


@dataclass(frozen=True)
class Script:
    group: HuntGroup
    states: tuple[str, ...]
    max_calls: tuple[int, ...]
    phones: tuple[Phone, ...]
    calls: tuple[float, ...]
    frees: tuple[tuple[int, float], ...]
    hang_ups: tuple[tuple[int, float], ...]
    seed: int


@st.composite
def scripts(draw: st.DrawFn) -> Script:
    strategy = draw(st.sampled_from(list(Strategy)))
    size = draw(st.integers(1, 4))
    timeout = draw(st.sampled_from([4.0, 12.0, 30.0]))
    members = tuple(
        Member(
            str(100 + i),
            start_delay=draw(st.sampled_from([0.0, 0.5, 3.0, 7.0]))
            if strategy is Strategy.STAGGERED
            else 0.0,
            ring_time=draw(st.sampled_from([None, None, 2.0, 5.0])),
        )
        for i in range(size)
    )
    group = HuntGroup(
        name="g",
        strategy=strategy,
        members=members,
        ring_time=draw(st.sampled_from([3.0, 5.0, 10.0])),
        group_timeout=timeout,
        rounds=draw(st.integers(1, 3)),
        wave_interval=draw(st.sampled_from([1.0, 4.0, 9.0])),
        primary_first=draw(st.booleans()),
        channel_limit=draw(st.sampled_from([None, None, 1, 2])),
    )
    calls = tuple(draw(st.lists(st.sampled_from([0.0, 0.5, 2.0, 6.0]), min_size=1, max_size=3)))
    return Script(
        group=group,
        states=tuple(draw(st.sampled_from(STATES)) for _ in members),
        max_calls=tuple(draw(st.sampled_from([1, 1, 2])) for _ in members),
        phones=tuple(draw(PHONES) for _ in members),
        calls=calls,
        frees=tuple(
            draw(
                st.lists(
                    st.tuples(st.integers(0, size - 1), st.sampled_from([1.0, 3.5])), max_size=2
                )
            )
        ),
        hang_ups=tuple(
            draw(
                st.lists(
                    st.tuples(st.integers(0, len(calls) - 1), st.sampled_from([0.0, 1.5, 8.0])),
                    max_size=1,
                )
            )
        ),
        seed=draw(st.integers(0, 2**32)),
    )


def run(script: Script) -> Simulation:
    members_book = StrictBook()
    sim = Simulation({"g": script.group}, members_book)
    for member, state, max_calls, phone in zip(
        script.group.members, script.states, script.max_calls, script.phones, strict=True
    ):
        number = member.number
        members_book.add(
            number, max_calls=max_calls, dnd=state == "dnd", registered=state != "unregistered"
        )
        if state == "talking":
            for _ in range(max_calls):
                members_book.call_started(number)
        members_book.set_reachable(number, state != "unreachable")
        sim.phone(number, phone)
    for at in script.calls:
        sim.call("g", at=at, seed=script.seed)
    for index, at in script.frees:
        number = script.group.members[index].number
        if script.states[index] == "talking":
            sim.ends_call(number, at)
    for call, at in script.hang_ups:
        sim.hang_up(call, at)
    sim.run()
    return sim


@given(scripts())
def test_every_hunt_ends_by_its_group_timeout_with_every_leg_accounted_for(
    script: Script,
) -> None:
    sim = run(script)
    for call, hunt in sim.hunts.items():
        assert not hunt.is_hunting
        assert hunt.ringing == frozenset()
        kinds = Counter(type(action) for _, action in sim.actions(call))
        outcomes = Counter(entry.outcome for entry in hunt.trace)
        assert kinds[RingMember] == outcomes[Outcome.RUNG]
        assert kinds[StopMember] == outcomes[Outcome.CANCELLED]
        assert kinds[ConnectMember] == outcomes[Outcome.ANSWERED] <= 1
        assert kinds[Overflow] + kinds[ConnectMember] <= 1
        assert (hunt.connected is not None) == (kinds[ConnectMember] == 1)
        ringing: set[str] = set()
        for entry in hunt.trace:
            if entry.outcome is Outcome.RUNG:
                assert entry.member not in ringing, "rung twice at once"
                assert entry.at < hunt.deadline
                ringing.add(entry.member)
            elif entry.outcome in (Outcome.CANCELLED, Outcome.ANSWERED, Outcome.FAILED):
                ringing.remove(entry.member)
        assert ringing == set(), "a started member was neither stopped, connected nor failed"
        for at, action in sim.actions(call):
            assert at <= hunt.deadline
            if isinstance(action, StartTimer) and action.name is HuntTimer.NEXT_STEP:
                assert at < action.at < hunt.deadline


@given(scripts())
def test_a_hunt_is_replayed_exactly_from_its_script_and_seed(script: Script) -> None:
    assert run(script).timeline == run(script).timeline
