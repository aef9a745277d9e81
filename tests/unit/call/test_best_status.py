"""best_final_status: which final response the caller gets when every callee failed
(RFC 3261 section 16.7 item 6, as a B2BUA reads it)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from b2bua.call.legs import best_final_status


@pytest.mark.parametrize(
    ("statuses", "best"),
    [
        ([], 480),  # nobody tried, or only provisional answers: temporarily unavailable
        ([180, 183], 480),
        ([486], 486),
        ([486, 408], 486),  # a timeout loses to a response a callee chose
        ([408, 486], 486),
        ([487, 486], 486),
        ([408, 487], 408),  # both only say "no answer": the lowest first
        ([487, 408], 487),
        ([603, 486], 603),  # a 6xx wins over everything
        ([486, 603], 603),
        ([404, 486], 404),  # the same class: the first
        ([486, 404], 486),
        ([500, 486], 486),  # the lowest class
        ([302, 486], 302),
        ([503], 500),  # a callee's 503 is not the switch's overload
        ([503, 502], 500),
        ([600, 603], 600),  # the first 6xx
        ([408], 408),
        ([408, 503], 408),
    ],
)
def test_best_final_status(statuses: list[int], best: int) -> None:
    assert best_final_status(statuses) == best


@given(st.lists(st.integers(min_value=100, max_value=699), max_size=6))
def test_the_answer_is_a_final_failure_status_and_a_6xx_always_wins(statuses: list[int]) -> None:
    best = best_final_status(statuses)
    assert 300 <= best < 700
    assert best != 503
    six = [s for s in statuses if s >= 600]
    if six:
        assert best == six[0]
    finals = [s for s in statuses if s >= 300]
    if finals and not six:
        assert best // 100 == min(s // 100 for s in finals)
