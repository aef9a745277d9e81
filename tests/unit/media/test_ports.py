"""PortPool: even RTP ports with RTCP on port + 1, exhaustion, release errors,
least-recently-released order, quarantine on the caller's clock, and a model check."""

from __future__ import annotations

import random
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from media.ports import PortPool, PortsExhausted


def take_all(pool: PortPool, now: float = 0.0) -> list[int]:
    ports = []
    while True:
        try:
            ports.append(pool.allocate(now))
        except PortsExhausted:
            return ports


def test_hands_out_even_ports_whose_rtcp_port_is_in_the_range() -> None:
    pool = PortPool(30000, 30009)
    assert take_all(pool) == [30000, 30002, 30004, 30006, 30008]
    assert pool.capacity == 5
    assert pool.in_use == 5


def test_odd_bounds_keep_every_pair_inside() -> None:
    pool = PortPool(30001, 30008)  # 30008 has no 30009 inside the range
    assert take_all(pool) == [30002, 30004, 30006]


def test_the_smallest_range_is_one_pair() -> None:
    pool = PortPool(65534, 65535)
    assert take_all(pool) == [65534]


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (1023, 2000),  # well-known ports
        (30000, 65536),
        (30010, 30000),  # reversed
        (30000, 30000),  # an even port, but its RTCP port is outside
        (30001, 30002),  # no even port with port + 1 inside
    ],
)
def test_invalid_ranges_are_refused(first: int, last: int) -> None:
    with pytest.raises(ValueError, match=f"{first}-{last}"):
        PortPool(first, last)


def test_negative_cooldown_is_refused() -> None:
    with pytest.raises(ValueError, match="busy_cooldown"):
        PortPool(30000, 30009, busy_cooldown=-1)


def test_exhaustion_raises_with_a_503_hint() -> None:
    pool = PortPool(30000, 30003)
    take_all(pool)
    with pytest.raises(PortsExhausted, match="2 in use, 0 quarantined") as caught:
        pool.allocate(0.0)
    assert caught.value.status_hint == 503
    assert caught.value.next_free_at is None


def test_release_of_a_port_not_allocated_is_a_bug() -> None:
    pool = PortPool(30000, 30009)
    with pytest.raises(ValueError, match="30000 released but not allocated"):
        pool.release(30000)
    port = pool.allocate(0.0)
    pool.release(port)
    with pytest.raises(ValueError, match="not allocated"):
        pool.release(port)  # twice
    with pytest.raises(ValueError, match="not allocated"):
        pool.release(12345)  # never ours
    port = pool.allocate(0.0)
    pool.reserve(port, now=0.0)
    with pytest.raises(ValueError, match="quarantined"):
        pool.release(port)


def test_a_released_port_is_not_reused_while_others_are_free() -> None:
    pool = PortPool(30000, 30007)  # 4 pairs
    seen = []
    for _ in range(8):
        port = pool.allocate(0.0)
        seen.append(port)
        pool.release(port)
    assert seen == [30000, 30002, 30004, 30006] * 2


def test_least_recently_released_goes_first() -> None:
    pool = PortPool(30000, 30007)
    a, _, c, _ = take_all(pool)
    pool.release(c)
    pool.release(a)
    assert pool.allocate(0.0) == c
    assert pool.allocate(0.0) == a


def test_a_busy_port_comes_back_after_the_cooldown() -> None:
    pool = PortPool(30000, 30003, busy_cooldown=30.0)
    busy = pool.allocate(10.0)
    pool.reserve(busy, now=10.0)  # the host could not bind it
    assert pool.in_use == 0
    assert pool.quarantined == 1
    other = pool.allocate(10.0)
    assert other != busy
    with pytest.raises(PortsExhausted) as caught:
        pool.allocate(39.9)
    assert caught.value.next_free_at == 40.0
    assert pool.allocate(40.0) == busy
    assert pool.quarantined == 0


def test_quarantine_of_a_free_port_and_extension() -> None:
    pool = PortPool(30000, 30003)
    pool.quarantine(30000, until=5.0)
    pool.quarantine(30000, until=8.0)
    pool.quarantine(30000, until=6.0)  # earlier: the later time stands
    assert pool.allocate(0.0) == 30002
    with pytest.raises(PortsExhausted):
        pool.allocate(7.9)
    assert pool.allocate(8.0) == 30000


@pytest.mark.parametrize("port", [29998, 30001, 30004, 30003])
def test_quarantine_of_a_port_outside_the_pool_is_a_bug(port: int) -> None:
    pool = PortPool(30000, 30003)
    with pytest.raises(ValueError, match="not an RTP port"):
        pool.quarantine(port, until=1.0)


def test_no_leak_after_many_cycles() -> None:
    pool = PortPool(40000, 40199)
    rng = random.Random(7)
    held: list[int] = []
    for step in range(20_000):
        if held and (rng.random() < 0.5 or pool.in_use == pool.capacity):
            pool.release(held.pop(rng.randrange(len(held))))
        else:
            held.append(pool.allocate(float(step)))
        assert len(set(held)) == len(held)
    for port in held:
        pool.release(port)
    assert pool.in_use == 0
    assert pool.capacity == 100
    assert sorted(take_all(pool)) == list(range(40000, 40200, 2))


class PoolModel(RuleBasedStateMachine):
    """The pool against a plain model: a FIFO of free ports, a set in use, and a dict of
    quarantine times, on a clock that only moves forward."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = PortPool(50000, 50011, busy_cooldown=5.0)  # 6 pairs
        self.free: deque[int] = deque(range(50000, 50011, 2))
        self.in_use: set[int] = set()
        self.quarantined: dict[int, float] = {}
        self.now = 0.0

    def thaw(self) -> None:
        for port, until in sorted(self.quarantined.items(), key=lambda item: (item[1], item[0])):
            if until <= self.now:
                del self.quarantined[port]
                self.free.append(port)

    @rule(seconds=st.sampled_from([0.0, 0.5, 1.0, 5.0]))
    def tick(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def allocate(self) -> None:
        self.thaw()
        if not self.free:
            with pytest.raises(PortsExhausted):
                self.pool.allocate(self.now)
            return
        port = self.pool.allocate(self.now)
        assert port == self.free.popleft()
        self.in_use.add(port)

    @precondition(lambda self: self.in_use)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        port = data.draw(st.sampled_from(sorted(self.in_use)))
        self.pool.release(port)
        self.in_use.remove(port)
        self.free.append(port)

    @rule(port=st.sampled_from(range(50000, 50011, 2)))
    def release_unallocated(self, port: int) -> None:
        if port in self.in_use:
            return
        with pytest.raises(ValueError, match="not allocated"):
            self.pool.release(port)

    @rule(port=st.sampled_from(range(50000, 50011, 2)))
    def reserve(self, port: int) -> None:
        self.pool.reserve(port, self.now)
        until = self.now + 5.0
        if port in self.in_use:
            self.in_use.remove(port)
        elif port in self.quarantined:
            until = max(until, self.quarantined[port])
        else:
            self.free.remove(port)
        self.quarantined[port] = until

    @invariant()
    def counts_agree(self) -> None:
        assert self.pool.in_use == len(self.in_use)
        assert self.pool.quarantined == len(self.quarantined)
        assert self.pool.capacity == 6
        assert all(self.pool.is_allocated(port) for port in self.in_use)


TestPoolModel = PoolModel.TestCase
TestPoolModel.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)


@given(st.integers(1024, 65535), st.integers(0, 200))
def test_every_valid_range_yields_only_whole_pairs(first: int, width: int) -> None:
    last = min(first + width, 65535)
    try:
        pool = PortPool(first, last)
    except ValueError:
        assert not any(p % 2 == 0 and p + 1 <= last for p in range(first, last + 1))
        return
    ports = take_all(pool)
    assert ports == [p for p in range(first, last + 1) if p % 2 == 0 and p + 1 <= last]
