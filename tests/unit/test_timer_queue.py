"""TimerQueue: deadlines by key, replace, lazy cancel, ties in scheduling order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from b2bua.timer_queue import TimerQueue


def test_schedule_replace_cancel_and_pop() -> None:
    q: TimerQueue[str] = TimerQueue()
    q.schedule("a", 5.0)
    q.schedule("b", 1.0)
    q.schedule("c", 1.0)
    q.schedule("a", 0.5)  # replaces a's deadline
    q.cancel("b")
    assert q.next_deadline() == 0.5
    assert len(q) == 2
    assert q.pop_due(0.4) == []
    assert q.pop_due(1.0) == ["a", "c"]
    assert q.next_deadline() is None
    assert "a" not in q


@given(st.lists(st.tuples(st.integers(0, 9), st.floats(0, 100), st.booleans()), max_size=50))
def test_pop_due_matches_a_plain_model(ops: list[tuple[int, float, bool]]) -> None:
    q: TimerQueue[int] = TimerQueue()
    model: dict[int, float] = {}
    for key, at, cancel in ops:
        if cancel:
            q.cancel(key)
            model.pop(key, None)
        else:
            q.schedule(key, at)
            model[key] = at
    assert q.next_deadline() == (min(model.values()) if model else None)
    due = q.pop_due(50.0)
    assert sorted(due) == sorted(k for k, at in model.items() if at <= 50.0)
    assert [model[k] for k in due] == sorted(model[k] for k in due)


def test_rescheduling_does_not_pile_up_stale_entries() -> None:
    q: TimerQueue[int] = TimerQueue()
    for refresh in range(200):
        for phone in range(100):
            q.schedule(phone, 3600.0 + refresh)  # each refresh moves the expiry
    assert len(q) == 100
    assert q.heap_size <= 3 * 100 + 1024 + 1
    assert q.next_deadline() == 3799.0
    assert q.pop_due(4000.0) == list(range(100))
