"""MemberBook: the busy truth hunts read."""

from __future__ import annotations

import math

from b2bua.hunt import MemberBook, MemberState


def test_an_unknown_or_unregistered_member_reads_as_unregistered() -> None:
    book = MemberBook()
    assert book.state("101") is MemberState.UNREGISTERED
    assert book.blocker("101") is MemberState.UNREGISTERED
    book.add("101")
    assert not book.is_free("101")
    book.set_registered("101", True)
    assert book.state("101") is MemberState.IDLE
    assert book.is_free("101")


def test_states_in_order_of_precedence() -> None:
    book = MemberBook()
    book.add("101", registered=True)
    book.call_started("101")
    assert book.state("101") is MemberState.TALKING
    book.set_dnd("101", True)
    assert book.state("101") is MemberState.DND
    book.set_reachable("101", False)
    assert book.state("101") is MemberState.UNREACHABLE
    book.set_registered("101", False)
    assert book.state("101") is MemberState.UNREGISTERED


def test_ringing_counts_against_max_calls_and_a_ringing_blocker_may_free_up() -> None:
    book = MemberBook()
    book.add("101", max_calls=2, registered=True)
    book.ringing_started("101")
    assert book.state("101") is MemberState.RINGING
    assert book.is_free("101")  # one more call fits
    book.call_started("101")
    assert book.blocker("101") is MemberState.RINGING  # at its maximum, one still ringing
    book.ringing_stopped("101")
    assert book.is_free("101")
    book.call_started("101")
    assert book.blocker("101") is MemberState.TALKING


def test_answers_update_counts_idle_time_and_round_robin_memory() -> None:
    book = MemberBook()
    book.add("101", registered=True)
    assert book.idle_since("101") == -math.inf
    book.ringing_started("101")
    book.call_answered("101", 12.0, group="sales")
    assert book.state("101") is MemberState.TALKING
    assert (book.answered_count("101"), book.last_answered("101")) == (1, 12.0)
    assert book.last_answerer("sales") == "101"
    book.call_ended("101", 40.0)
    assert book.idle_since("101") == 40.0
    assert book.is_free("101")


def test_counts_never_go_below_zero_and_a_reload_keeps_calls() -> None:
    book = MemberBook()
    book.add("101", registered=True)
    book.ringing_stopped("101")
    book.call_ended("101", 1.0)
    book.call_started("101")
    book.add("101", max_calls=2)  # config reloaded: the call in progress stays
    assert book.state("101") is MemberState.TALKING
    assert book.is_free("101")


def test_channels_per_group() -> None:
    book = MemberBook()
    book.channel_opened("g")
    book.channel_opened("g")
    book.channel_closed("g")
    book.channel_closed("h")
    assert (book.channels("g"), book.channels("h")) == (1, 0)
